"""Samples → one training batch of a single data kind (the unified triplet [P]).

Concepts are de-duplicated across the batch by their prompt string ("name, definition"), so
the label indices of every image point into one shared list; the model then unions the lists
of all ranks. Negatives are sampled per image from ``vocabulary`` (a dataset's categories for
detection, a concept dictionary for grounding, the class list for classification), never
repeating a positive's name.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from PIL import Image

from detclip_bench.errors import DataError
from detclip_bench.phrases import swap_left_right
from detclip_bench.schema import Concept, DataKind, Sample
from reference_model.detclipv2.concept_dictionary import ConceptDictionary, concept_variants
from reference_model.detclipv2.noun_phrases import NounPhraseExtractor, caption_concepts

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "InputSpec",
    "TrainBatch",
    "collate_train",
    "image_batch",
    "pad_stack",
    "resize_scale",
    "to_tensor",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class InputSpec:
    """How images of one data kind are resized and how many concepts each image carries.

    ``size`` = (max long side, short side) for detection/grounding (1333, 800), (S, S) for
    image-text/classification (aspect kept, padded [I]). ``concepts_per_image`` is M: 150 for
    detection, 100 for grounding [A]; for classification it bounds the class names scored by CE.
    """

    kind: DataKind
    size: tuple[int, int]
    multiscale_short: tuple[int, ...] = ()
    flip: bool = True
    concepts_per_image: int = 150
    size_divisor: int = 32
    # federated (LVIS) images: True fills up to ``concepts_per_image`` with categories sampled from the whole
    # vocabulary after the verified-absent ones (appendix Table 2's M = 150); False samples only the
    # verified-absent ones. Either way only verified columns are negatives (the federated mask)
    federated_fill: bool = True


@dataclass
class TrainBatch:
    kind: DataKind
    images: torch.Tensor  # (B, 3, H, W) normalised, zero-padded
    image_sizes: list[tuple[int, int]]  # (h, w) of the valid region of each image
    concepts: list[str]  # unique prompts of the batch
    # the name part of each prompt (parallel to ``concepts``; "" where unknown): the batch-level
    # false-negative mask compares names, not prompts (DetCLIPv2._negative_mask)
    concept_names: list[str] = field(default_factory=list)
    boxes: list[torch.Tensor] = field(default_factory=list)  # (N_i, 4) xyxy in batch pixels
    labels: list[torch.Tensor] = field(default_factory=list)  # (N_i,) indices into concepts
    caption_concepts: list[list[int]] = field(default_factory=list)  # image-text / classification
    record_ids: list[str] = field(default_factory=list)
    # per image: prompts whose unmatched anchors are focal negatives (federated LVIS labels);
    # None (or an empty list) = every column, i.e. exhaustively annotated data such as O365
    verified_negatives: list[frozenset[str] | None] = field(default_factory=list)
    concepts_per_image: list[int] = field(default_factory=list)  # M of each image (logged per step)
    defined_per_image: list[int] = field(default_factory=list)  # how many of them carry a definition

    def to(self, device: torch.device | str) -> TrainBatch:
        return replace(
            self,
            images=self.images.to(device, non_blocking=True),
            boxes=[b.to(device) for b in self.boxes],
            labels=[lab.to(device) for lab in self.labels],
        )

    def __len__(self) -> int:
        return len(self.image_sizes)


def resize_scale(width: int, height: int, size: tuple[int, int]) -> float:
    """Largest scale with short side ≤ size[1] and long side ≤ size[0] (mmdetection keep-ratio)."""
    long_max, short = size
    return min(short / min(width, height), long_max / max(width, height))


def load_for_resize(sample: Sample, size: tuple[int, int], draft: bool) -> tuple[Image.Image, tuple[int, int]]:
    """The decoded image and its stored ``(width, height)``, before the keep-ratio resize to ``size``.

    With ``draft`` a JPEG is decoded by DCT scaling at 1/2, 1/4 or 1/8 of its stored size, the
    smallest of those still at least the resize target (PIL's draft never goes below the size it
    is asked for), so resizing it gives the same target size as the full decode. The returned
    size is always the stored one: the target and the box scaling are computed from it.
    """
    header: list[tuple[int, int]] = []

    def target(w0: int, h0: int) -> tuple[int, int]:
        header.append((w0, h0))
        scale = resize_scale(w0, h0, size)
        return max(1, round(w0 * scale)), max(1, round(h0 * scale))

    img = sample.load_image(draft=target if draft else None)
    return img, (header[0] if header else img.size)


def to_tensor(
    img: Image.Image, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD
) -> torch.Tensor:
    """An RGB image → its normalised (3, h, w) float32 tensor, ``(x / 255 - mean) / std`` bit for bit."""
    out = torch.empty(3, img.height, img.width, dtype=torch.float32)
    return _normalise_into(out, img, _channels(mean), _channels(std))


def _channels(values: Sequence[float]) -> torch.Tensor:
    return torch.tensor(values)[:, None, None]


def _normalise_into(out: torch.Tensor, img: Image.Image, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Write ``img``'s normalised pixels into ``out`` (3, h, w), which may be a view into a batch.

    numpy converts the uint8 HWC pixels straight into ``out`` (exact), then the same float32 operations as
    ``(x / 255 - mean) / std`` run in place: no intermediate tensor, no second copy into the batch."""
    out.numpy()[...] = np.asarray(img).transpose(2, 0, 1)
    return out.div_(255.0).sub_(mean).div_(std)


def _padded_hw(sizes: Sequence[tuple[int, int]], divisor: int, min_hw: tuple[int, int]) -> tuple[int, int]:
    """The batch's (H, W) for images of ``sizes`` (h, w): at least ``min_hw``, a multiple of ``divisor``."""
    h = max(min_hw[0], *(s[0] for s in sizes))
    w = max(min_hw[1], *(s[1] for s in sizes))
    return -(-h // divisor) * divisor, -(-w // divisor) * divisor


def _valid_region(slot: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Zero a batch slot (3, H, W) outside its top-left h×w region and return that region (a view)."""
    slot[:, :h, w:] = 0
    slot[:, h:, :] = 0
    return slot[:, :h, :w]


def pad_stack(tensors: list[torch.Tensor], divisor: int, min_hw: tuple[int, int] = (0, 0)) -> torch.Tensor:
    """Zero-pad (after normalisation) to a common size: at least ``min_hw``, a multiple of ``divisor``."""
    out = _batch_buffer((len(tensors), 3, *_padded_hw([t.shape[1:] for t in tensors], divisor, min_hw)))
    for i, t in enumerate(tensors):
        _valid_region(out[i], t.shape[1], t.shape[2]).copy_(t)
    return out


def image_batch(
    images: Sequence[Image.Image],
    divisor: int,
    min_hw: tuple[int, int] = (0, 0),
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> torch.Tensor:
    """RGB images → the normalised, zero-padded batch, value for value ``pad_stack([to_tensor(im) ...])``; each
    image is normalised in its place in the batch, so there is no per-image tensor to allocate and copy."""
    out = _batch_buffer((len(images), 3, *_padded_hw([(im.height, im.width) for im in images], divisor, min_hw)))
    mean_t, std_t = _channels(mean), _channels(std)
    for i, img in enumerate(images):
        _normalise_into(_valid_region(out[i], img.height, img.width), img, mean_t, std_t)
    return out


def _batch_buffer(shape: tuple[int, ...]) -> torch.Tensor:
    """An uninitialised float tensor; in a DataLoader worker it lives in shared memory from the start,
    so handing the batch to the main process does not copy it once more (torch's default_collate
    does the same)."""
    if torch.utils.data.get_worker_info() is None:
        return torch.empty(shape)
    storage = torch.UntypedStorage._new_shared(math.prod(shape) * 4)
    return torch.empty(0).set_(storage, 0, shape)


class _ConceptTable:
    """Ordered unique prompts of a batch, with the name each prompt was first added under."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.names: dict[str, str] = {}

    def add(self, prompt: str, name: str | None = None) -> int:
        self.names.setdefault(prompt, prompt if name is None else name)
        return self.index.setdefault(prompt, len(self.index))

    def add_concept(self, concept: Concept) -> int:
        return self.add(concept.prompt(), concept.name)


def _sample_negatives(
    vocabulary: Sequence[Concept],
    positives: Sequence[Concept],
    count: int,
    rng: np.random.Generator,
    exclude_variants: bool = False,
) -> list[Concept]:
    """Up to ``count`` concepts of ``vocabulary`` in random order, never a positive's name or prompt.

    ``exclude_variants`` (grounding, negatives from a concept dictionary): also never a plural/singular
    or article variant of a positive phrase, nor anything sharing its head noun ("dog", "brown dogs"
    for the positive "a red dog"), since those are likely present in the image.
    """
    if count <= 0 or not vocabulary:
        return []
    taken = {c.name.lower() for c in positives} | {c.prompt() for c in positives}
    variants = frozenset().union(*(concept_variants(c.name) for c in positives)) if exclude_variants else None
    order = rng.permutation(len(vocabulary))
    out: list[Concept] = []
    for i in order:
        c = vocabulary[int(i)]
        if (
            c.name.lower() not in taken
            and c.prompt() not in taken
            and (variants is None or not variants & concept_variants(c.name))
        ):
            out.append(c)
            if len(out) == count:
                break
    return out


FEDERATED_META = "neg_category_ids"  # LVIS-style samples carry it (and not_exhaustive_category_ids)


def _federated_labels(sample: Sample, vocabulary: Sequence[Concept]) -> tuple[list[Concept], frozenset[str]]:
    """An LVIS image's verified-absent concepts (its ``neg_category_ids``, the only negatives it
    samples) and the prompts whose unmatched anchors may be focal negatives: those plus its
    positives, except positives in ``not_exhaustive_category_ids`` (other instances may be
    unlabelled). Categories the image was never checked for are neither. Our choice, after the
    federated protocol's intent; see docs/distributed_and_losses.md."""
    by_id = {c.category_id: c for c in vocabulary if c.category_id is not None}
    negatives = [by_id[int(i)] for i in sample.meta.get(FEDERATED_META, ()) if int(i) in by_id]
    not_exhaustive = {int(i) for i in sample.meta.get("not_exhaustive_category_ids", ())}
    counted = {c.prompt() for c in negatives}
    counted |= {c.prompt() for c in sample.concepts if c.category_id is None or c.category_id not in not_exhaustive}
    return negatives, frozenset(counted)


@dataclass
class _Targets:
    """The per-image targets of a batch being collated; one ``_*_targets`` helper per data kind fills them."""

    table: _ConceptTable = field(default_factory=_ConceptTable)
    boxes: list[torch.Tensor] = field(default_factory=list)
    labels: list[torch.Tensor] = field(default_factory=list)
    caption_concepts: list[list[int]] = field(default_factory=list)
    verified: list[frozenset[str] | None] = field(default_factory=list)
    # M of each image: positives + sampled negatives (caption: its concepts)
    image_concepts: list[int] = field(default_factory=list)
    # of those, how many carry a definition (box-supervised and classification kinds)
    defined: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class _Placement:
    """How a sample's image was placed in the batch: stored size, resized size, horizontal flip."""

    w0: int
    h0: int
    w: int
    h: int
    flip: bool


def _box_targets(
    t: _Targets,
    s: Sample,
    p: _Placement,
    spec: InputSpec,
    vocabulary: Sequence[Concept],
    rng: np.random.Generator,
    *,
    exclude_variants: bool,
) -> None:
    """Boxes mapped to batch pixels (degenerate and ``iscrowd`` ones dropped), labels, and sampled negatives.

    Shared by detection and grounding. An LVIS-style sample (federated meta) takes its verified-absent
    categories first, then (``spec.federated_fill``) other categories up to M, and records which prompts
    may be focal negatives: positives and verified-absent ones only.
    """
    b = torch.from_numpy(s.boxes.copy()) * torch.tensor([p.w / p.w0, p.h / p.h0, p.w / p.w0, p.h / p.h0])
    if p.flip:
        b = torch.stack([p.w - b[:, 2], b[:, 1], p.w - b[:, 0], b[:, 3]], dim=1)
    b[:, 0::2] = b[:, 0::2].clamp(0, p.w)
    b[:, 1::2] = b[:, 1::2].clamp(0, p.h)
    keep = ((b[:, 2] - b[:, 0]) >= 1) & ((b[:, 3] - b[:, 1]) >= 1)
    crowd = s.meta.get("iscrowd")
    if crowd is not None and len(crowd) == len(keep):  # COCO crowd regions are no instances (mmdetection)
        keep &= torch.as_tensor(np.asarray(crowd) == 0)
    local = [t.table.add_concept(c) for c in s.concepts]
    lab = torch.tensor([local[i] for i in s.labels.tolist()], dtype=torch.long)
    present = list(s.concepts)
    federated = _federated_labels(s, vocabulary) if FEDERATED_META in s.meta else None
    pool = vocabulary if federated is None else federated[0]  # LVIS: verified-absent first
    count = spec.concepts_per_image - len(present)
    negatives = _sample_negatives(pool, present, count, rng, exclude_variants=exclude_variants)
    if federated is not None and spec.federated_fill and len(negatives) < count:
        # up to M with other categories: prompts of the batch, masked for this image (never verified here)
        negatives += _sample_negatives(vocabulary, [*present, *negatives], count - len(negatives), rng)
    for neg in negatives:
        t.table.add_concept(neg)
    t.image_concepts.append(len(present) + len(negatives))
    t.defined.append(sum(bool(c.definition) for c in (*present, *negatives)))
    t.verified.append(None if federated is None else federated[1])
    t.boxes.append(b[keep].float())
    t.labels.append(lab[keep])


def _detection_targets(
    t: _Targets,
    s: Sample,
    p: _Placement,
    spec: InputSpec,
    vocabulary: Sequence[Concept],
    rng: np.random.Generator,
) -> None:
    """Detection: box targets; negatives are any other category of the vocabulary."""
    _box_targets(t, s, p, spec, vocabulary, rng, exclude_variants=False)


def _grounding_targets(
    t: _Targets,
    s: Sample,
    p: _Placement,
    spec: InputSpec,
    vocabulary: Sequence[Concept],
    rng: np.random.Generator,
) -> None:
    """Grounding: box targets; negatives skip variants of the positive phrases (likely in the image)."""
    _box_targets(t, s, p, spec, vocabulary, rng, exclude_variants=True)


def _image_text_targets(t: _Targets, s: Sample, noun_phrases, dictionary: ConceptDictionary | None) -> None:
    """Image-text: the caption's noun phrases that the dictionary knows (:func:`caption_concepts`), as
    "phrase, definition" prompts, then the caption itself [P]."""
    phrases = caption_concepts(s.caption, noun_phrases, dictionary)
    if dictionary is not None:
        phrases = [dictionary.phrase_prompt(p) for p in phrases]
    phrases = [*phrases, s.caption]
    t.caption_concepts.append(list(dict.fromkeys(t.table.add(p) for p in phrases)))
    t.image_concepts.append(len(t.caption_concepts[-1]))


def _classification_targets(
    t: _Targets,
    s: Sample,
    spec: InputSpec,
    vocabulary: Sequence[Concept],
    rng: np.random.Generator,
) -> None:
    """Classification: the class, then sampled other classes for the CE denominator."""
    (concept,) = s.concepts
    t.caption_concepts.append([t.table.add_concept(concept)])
    negatives = _sample_negatives(vocabulary, [concept], spec.concepts_per_image - 1, rng)
    for neg in negatives:
        t.table.add_concept(neg)
    t.image_concepts.append(1 + len(negatives))
    t.defined.append(sum(bool(c.definition) for c in (concept, *negatives)))


def collate_train(
    samples: Sequence[Sample],
    spec: InputSpec,
    *,
    vocabulary: Sequence[Concept] = (),
    rng: np.random.Generator,
    noun_phrases=None,
    dictionary: ConceptDictionary | None = None,
) -> TrainBatch:
    """Load, augment (multi-scale resize, flip), normalise and pad; build the batch concepts.

    The targets of each image are built by the helper of the batch's data kind
    (``_detection_targets``, ``_grounding_targets``, ``_image_text_targets``,
    ``_classification_targets``). ``noun_phrases`` is a :class:`NounPhraseExtractor` for
    image-text captions (default model when omitted). ``dictionary`` fills in definitions
    (concept enrichment) for concepts, negatives and caption noun phrases that come without one.
    """
    if not samples:
        raise ValueError("collate_train needs at least one sample")
    kind = DataKind(spec.kind)
    square = kind in (DataKind.IMAGE_TEXT, DataKind.CLASSIFICATION)
    targets = _Targets()
    images, sizes = [], []
    if kind is DataKind.IMAGE_TEXT and noun_phrases is None:
        noun_phrases = NounPhraseExtractor()
    if dictionary is not None:
        vocabulary = dictionary.enrich_all(vocabulary)
    for s in samples:
        if dictionary is not None and s.concepts:
            s = replace(s, concepts=dictionary.enrich_all(s.concepts))
        if s.kind is not kind:
            raise DataError(s.source, s.record_id, f"{s.kind.value} sample in a {kind.value} batch")
        short = int(rng.choice(spec.multiscale_short)) if spec.multiscale_short else spec.size[1]
        # image-text / classification: decode JPEGs at a reduced (draft) size, never below the target
        img, (w0, h0) = load_for_resize(s, (spec.size[0], short), draft=square)
        scale = resize_scale(w0, h0, (spec.size[0], short))
        w, h = max(1, round(w0 * scale)), max(1, round(h0 * scale))
        img = img.resize((w, h), Image.BILINEAR)
        flip = bool(spec.flip and rng.random() < 0.5)
        if flip:
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
            if kind is DataKind.GROUNDING:  # "the cup on the left" is on the right now (as MDETR/GLIP do)
                s = replace(s, concepts=tuple(replace(c, name=swap_left_right(c.name)) for c in s.concepts))
        images.append(img)
        sizes.append((h, w))
        placement = _Placement(w0, h0, w, h, flip)

        if kind is DataKind.DETECTION:
            _detection_targets(targets, s, placement, spec, vocabulary, rng)
        elif kind is DataKind.GROUNDING:
            _grounding_targets(targets, s, placement, spec, vocabulary, rng)
        elif kind is DataKind.IMAGE_TEXT:
            _image_text_targets(targets, s, noun_phrases, dictionary)
        else:
            _classification_targets(targets, s, spec, vocabulary, rng)
    return TrainBatch(
        kind=kind,
        # image-text / classification inputs are fixed S×S squares [P] (aspect kept, padded [I])
        images=image_batch(images, spec.size_divisor, (spec.size[1], spec.size[0]) if square else (0, 0)),
        image_sizes=sizes,
        concepts=list(targets.table.index),
        concept_names=[targets.table.names[p] for p in targets.table.index],
        boxes=targets.boxes,
        labels=targets.labels,
        caption_concepts=targets.caption_concepts,
        record_ids=[s.record_id for s in samples],
        verified_negatives=targets.verified,
        concepts_per_image=targets.image_concepts,
        defined_per_image=targets.defined,
    )
