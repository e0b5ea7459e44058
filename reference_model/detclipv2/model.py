"""DetCLIPv2: a dual-stream ATSS detector whose classifier is region–text similarity [P].

``forward(batch)`` returns the losses of the batch's data kind (Eq. 6): detection = focal
alignment + GIoU + centerness; grounding = alignment only; image-text = λ·contrastive over
word-region scores; classification = λ·cross-entropy of the top-1 proposal. ``predict`` is the
:class:`detclip_bench.adapters.Detector` interface used by every benchmark suite.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext

import torch
from torch import nn

from detclip_bench.adapters import Prediction
from detclip_bench.phrases import clean_phrase, phrase_variants
from detclip_bench.provenance import weights_fingerprint
from detclip_bench.schema import DataKind
from reference_model.detclipv2.alignment import (
    classification_loss,
    contrastive_loss,
    max_cosine,
    select_proposals,
    word_region_scores,
)
from reference_model.detclipv2.atss_head import ATSSHead, HeadOutputs
from reference_model.detclipv2.backbone import TimmBackbone
from reference_model.detclipv2.batching import TrainBatch
from reference_model.detclipv2.box_coder import DeltaBoxCoder, anchors_inside, make_anchors
from reference_model.detclipv2.checkpoint import load_pretrained, save_pretrained
from reference_model.detclipv2.config import DetCLIPv2Config
from reference_model.detclipv2.decode import (
    INFERENCE_REVISION,
    ImageTransform,
    InferenceSettings,
    PreparedImage,
    PreparedInputs,
    run_dense_prepared,
    score_outputs,
)
from reference_model.detclipv2.distributed import encode_once, gather_named_strings, gather_with_grad
from reference_model.detclipv2.fpn import FPN
from reference_model.detclipv2.pretrained import CLIP_TEXT_HUB, RANDOM
from reference_model.detclipv2.text_encoder import TextEncoder, build_text_model, rebuild_text_model

__all__ = ["DetCLIPv2"]


def _clean_name_set(name: str) -> frozenset[str]:
    return frozenset({clean_phrase(name)})


class DetCLIPv2(PreparedInputs, nn.Module):
    """DetCLIPv2: backbone → FPN → ATSS head whose classifier is region–text cosine similarity.

    The behaviour of the model differs between training and inference.

    Training, ``forward(batch)``: ``batch`` is a :class:`~reference_model.detclipv2.batching.TrainBatch`
    of a single data kind, built by :func:`~reference_model.detclipv2.batching.collate_train`:
    ``images`` ``(B, 3, H, W)`` normalised and zero-padded, ``image_sizes`` the valid ``(h, w)`` of
    each, ``concepts`` the batch's unique prompt strings, and per kind

    - detection / grounding: ``boxes`` ``(N_i, 4)`` xyxy in batch pixels and ``labels`` ``(N_i,)``
      indexing ``concepts`` (plus ``verified_negatives`` for federated LVIS images);
    - image-text: ``caption_concepts``, per image the ``concepts`` indices of its noun phrases and caption;
    - classification: ``caption_concepts``, per image ``[class index]`` into ``concepts``.

    It returns a dict of 0-dim tensors: the kind's losses (detection: ``loss_align``,
    ``loss_giou``, ``loss_center``; grounding: ``loss_align``, and ``loss_center`` when
    ``config.grounding_center_loss``; image-text: ``loss_contrastive``; classification:
    ``loss_classification``), ``loss`` (their sum weighted by ``config.loss_*``, the one to
    backpropagate), and facts about the step for the log, without gradient: ``concepts_per_image``,
    ``definition_share`` (when the batch records them) and, for image-text,
    ``contrastive_captions`` / ``contrastive_images``. Under ``torch.distributed`` the
    detection/grounding concepts and the image-text regions are gathered from every rank
    (collectives), so all ranks run ``forward`` on the same data kind at the same step.

    Inference, :meth:`predict` (the :class:`detclip_bench.adapters.Detector` interface): a list of
    RGB ``PIL.Image`` of any sizes and a list of prompt strings in; one
    :class:`~detclip_bench.adapters.Prediction` per image out, with ``boxes`` ``(N, 4)`` float32
    xyxy in original image pixels (clipped to the image), ``scores`` ``(N,)`` =
    sigmoid(logit) × sigmoid(centerness), ``labels`` ``(N,)`` int64 indices into the prompts;
    ``N`` <= ``max_dets_per_image``. Images are resized to ``config.test_size`` keeping their aspect.

    Args:
        config: the architecture, initialisation, loss weights and inference settings
            (:class:`~reference_model.detclipv2.config.DetCLIPv2Config`; named variants via
            :func:`~reference_model.detclipv2.variants.get_config`).
        text_source: a checkpoint's text folder; rebuilds the text tower's architecture and
            tokenizer from it instead of initialising from ``config`` (weights then come from
            the checkpoint, see :meth:`from_pretrained`).

    Example::

        >>> from reference_model.detclipv2 import DetCLIPv2, get_config
        >>> model = DetCLIPv2(get_config("detclipv2-mini"))
        >>> losses = model(batch)  # batch = collate_train(samples, spec, rng=rng)
        >>> losses["loss"].backward()
        >>> preds = model.predict([image], ["cat", "dog"], score_thresh=0.05)
        >>> preds[0].boxes, preds[0].scores, preds[0].labels
    """

    #: scores per column chunk of the alignment loss (2^24 fp32 = 64 MiB per intermediate): bounds its memory
    #: whatever the global batch's concept count; the value and gradient do not depend on it
    loss_chunk_elements: int = 1 << 24

    def __init__(self, config: DetCLIPv2Config, *, text_source: str | None = None) -> None:
        """``text_source`` rebuilds the text tower from a checkpoint's text folder (no weights).

        Without it the towers start from ``config.backbone_init`` / ``config.text_init`` (docs/inits.md);
        with it nothing is fetched: every weight comes from the checkpoint.
        """
        super().__init__()
        cfg = self.config = config
        self.name = cfg.name
        self.backbone = TimmBackbone(
            cfg.backbone,
            cfg.backbone_out_indices,
            init=cfg.backbone_init if text_source is None else RANDOM,
            drop_path=cfg.drop_path,
            freeze_bn=cfg.freeze_backbone_bn,
            size_divisor=cfg.size_divisor,
            stage_norm=cfg.backbone_stage_norm,
            extra_kwargs=cfg.backbone_kwargs,
        )
        self.fpn = FPN(self.backbone.out_channels, cfg.fpn_channels, cfg.num_levels)
        self.head = ATSSHead(
            cfg.fpn_channels,
            cfg.num_levels,
            cfg.embed_dim,
            num_convs=cfg.head_convs,
            gn_groups=cfg.gn_groups,
            deformable=cfg.deformable,
            logit_scale_init=cfg.logit_scale_init,
            logit_bias_prior=cfg.logit_bias_prior,
            normalize=cfg.normalize_embeddings,
        )
        if text_source is None:
            text_model, tokenizer, text_pretrained = build_text_model(
                cfg.text_init,
                tokenizer=cfg.text_tokenizer,
                width=cfg.text_width,
                layers=cfg.text_layers,
                heads=cfg.text_heads,
            )
        else:  # a saved checkpoint: its tower has been trained, so it counts as pretrained
            (text_model, tokenizer), text_pretrained = rebuild_text_model(text_source), True
        self.text_encoder = TextEncoder(
            text_model,
            tokenizer,
            cfg.embed_dim,
            max_tokens=cfg.max_text_tokens,
            pooling=cfg.text_pooling,
            trainable=cfg.text_trainable,
            pretrained=text_pretrained,
        )
        self.coder = DeltaBoxCoder(cfg.box_coder_weights)
        if cfg.grad_checkpointing:
            self.set_grad_checkpointing(True)
        self._identity: tuple[tuple, str] | None = None

    # ----------------------------------------------------------------- dense forward
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.backbone.set_grad_checkpointing(enable)
        tower = self.text_encoder.model
        if self.config.text_trainable and getattr(tower, "supports_gradient_checkpointing", False):
            on = getattr(tower, "activation_checkpointing_enable", None) or tower.gradient_checkpointing_enable
            off = getattr(tower, "activation_checkpointing_disable", None) or tower.gradient_checkpointing_disable
            on() if enable else off()

    def dense(self, images: torch.Tensor) -> tuple[HeadOutputs, list[torch.Tensor]]:
        """Head outputs for a padded image batch plus the matching per-level anchors."""
        outputs = self.head(self.fpn(self.backbone(images)))
        anchors = make_anchors(
            outputs.level_sizes,
            self.config.strides,
            self.config.anchor_scale,
            self.config.anchor_center_offset,
            device=images.device,
        )
        return outputs, anchors

    # ----------------------------------------------------------------- training
    def forward(self, batch: TrainBatch) -> dict[str, torch.Tensor]:
        outputs, anchors = self.dense(batch.images)
        kind = DataKind(batch.kind)
        facts: dict[str, float] = {}
        if kind in (DataKind.DETECTION, DataKind.GROUNDING):
            losses = self._box_supervised_losses(batch, outputs, anchors, kind)
        elif kind is DataKind.IMAGE_TEXT:
            loss, facts = self._image_text_loss(batch, outputs, anchors)
            losses = {"loss_contrastive": loss}
        else:
            losses = {"loss_classification": self._classification_loss(batch, outputs, anchors)}
        weights = {
            "loss_align": self.config.loss_align,
            "loss_giou": self.config.loss_giou,
            "loss_center": self.config.loss_center,
            "loss_contrastive": self.config.loss_contrastive,
            "loss_classification": self.config.loss_classification,
        }
        total = sum(weights[k] * v for k, v in losses.items())
        if kind in (DataKind.DETECTION, DataKind.GROUNDING):
            # grounding leaves the box branch unsupervised: it joins the graph with weight 0, so its
            # AdamW moments keep stepping it as on detection steps (one optimizer for both kinds)
            total = total + 0.0 * (outputs.deltas.sum() + outputs.centerness.sum())
        # image-text and classification leave the box branches and head.logits (scale, bias) with no
        # gradient at all (None), so AdamW does not step them on those steps; wrap_ddp keeps
        # find_unused_parameters on for them
        losses["loss"] = total
        # what the step trained on, beside the losses in the metrics log: M per image, the share of
        # concepts with a definition, and for image-text how many images each caption was scored against
        if batch.concepts_per_image:
            facts["concepts_per_image"] = sum(batch.concepts_per_image) / len(batch.concepts_per_image)
        if batch.defined_per_image:
            facts["definition_share"] = sum(batch.defined_per_image) / max(1, sum(batch.concepts_per_image))
        losses.update({k: torch.tensor(float(v)) for k, v in facts.items()})
        return losses

    def loss_weight(self, kind: DataKind) -> float:
        """The weight of a box-free kind's loss in Eq. 6 (λ); the trainer skips a folded step whose weight is 0."""
        kind = DataKind(kind)
        if kind is DataKind.IMAGE_TEXT:
            return float(self.config.loss_contrastive)
        if kind is DataKind.CLASSIFICATION:
            return float(self.config.loss_classification)
        return 1.0

    def _box_supervised_losses(self, batch, outputs, anchors, kind) -> dict[str, torch.Tensor]:
        names = batch.concept_names or [""] * len(batch.concepts)
        concepts, names = gather_named_strings(batch.concepts, names)  # global batch, de-duplicated [P]
        column = {c: i for i, c in enumerate(concepts)}
        remap = torch.tensor([column[c] for c in batch.concepts], dtype=torch.long, device=batch.images.device)
        texts = encode_once(self.text_encoder, concepts)  # each unique concept once per step, across ranks
        labels = [remap[lab] for lab in batch.labels]
        is_det = kind is DataKind.DETECTION
        # the (B, K, M_B) scores are computed and differentiated in column chunks, never whole
        return self.head.compute_loss(
            outputs,
            None,
            anchors,
            batch.boxes,
            labels,
            self.coder,
            topk=self.config.atss_topk,
            focal_alpha=self.config.focal_alpha,
            focal_gamma=self.config.focal_gamma,
            box_loss=is_det,
            center_loss=is_det or self.config.grounding_center_loss,
            image_sizes=batch.image_sizes,
            negative_mask=self._negative_mask(batch, concepts, names, labels, variants=not is_det),
            texts=texts,
            max_elements=self.loss_chunk_elements,
        )

    @staticmethod
    def _negative_mask(
        batch: TrainBatch,
        concepts: list[str],
        names: list[str] | None = None,
        labels: list[torch.Tensor] | None = None,
        *,
        variants: bool = True,
    ) -> torch.Tensor | None:
        """(B, M_B) over the *gathered* concept list: may image b's unmatched anchors be negatives for
        column m? None when every entry may.

        Two rules. Federated (LVIS) images restrict negatives to their verified concepts. And no image
        takes another surface form of its own positives as a negative, wherever in the global batch that
        column came from: for detection a column with the same clean name (:func:`clean_phrase`), for
        grounding (``variants``) any column sharing a :func:`phrase_variants` form with a positive
        ("dogs", "the dog" and "brown dog" for "a dog"; "men" for "the man in a blue shirt").
        ``names`` (parallel to ``concepts``) and ``labels`` (per image, indices into ``concepts``) enable
        the second rule.
        """
        rows = torch.ones((len(batch), len(concepts)), dtype=torch.bool)
        for b, v in enumerate(batch.verified_negatives):
            if v is not None:
                rows[b] = torch.tensor([c in v for c in concepts], dtype=torch.bool)
        if names is not None and labels is not None:
            forms = phrase_variants if variants else _clean_name_set
            by_form: dict[str, list[int]] = {}
            for m, name in enumerate(names):
                for f in forms(name) if name else ():
                    by_form.setdefault(f, []).append(m)
            for b, lab in enumerate(labels):
                positive = set(lab.tolist())
                mine = set().union(*(forms(names[m]) for m in positive if names[m]))
                hidden = {m for f in mine for m in by_form.get(f, ())} - positive
                if hidden:
                    rows[b, sorted(hidden)] = False
        return None if bool(rows.all()) else rows.to(batch.images.device)

    def _objectness(self, batch, outputs, anchors, texts) -> tuple[torch.Tensor, torch.Tensor]:
        """Batch-wise max concept similarity per anchor [P]; anchors centred in padding get -inf."""
        anchor_cat = torch.cat(anchors)
        with torch.no_grad():
            obj = max_cosine(outputs.embeddings.detach(), texts.detach())
            obj = obj.masked_fill(~anchors_inside(anchor_cat, batch.image_sizes), float("-inf"))
            boxes = self.coder.decode(outputs.deltas.detach(), anchor_cat[None])
        return obj, boxes

    def image_text_regions(self, batch, outputs, anchors, texts) -> tuple[torch.Tensor, torch.Tensor]:
        """The word-region alignment's proposals per image: ``(B, top_k, D)`` region embeddings and their
        ``(B, top_k)`` validity mask, chosen by objectness, NMS and top-k [P]."""
        # objectness = max similarity to the concepts of the local (per-GPU) batch [P], so the
        # proposals, unlike the loss's gradient, depend on how the global batch is split
        obj, boxes = self._objectness(batch, outputs, anchors, texts)
        index, valid = select_proposals(
            boxes,
            obj,
            top_k=self.config.proposal_topk,
            nms_iou=self.config.proposal_nms_iou,
            pre_nms=self.config.pre_nms_topk,
        )
        regions = outputs.embeddings.gather(1, index[..., None].expand(-1, -1, outputs.embeddings.shape[-1]))
        return regions, valid

    def _image_text_loss(self, batch, outputs, anchors) -> tuple[torch.Tensor, dict[str, float]]:
        texts = self.text_encoder(batch.concepts)
        regions, valid = self.image_text_regions(batch, outputs, anchors, texts)
        all_regions, offset = gather_with_grad(regions)  # every rank's images are negatives [P]
        all_valid, _ = gather_with_grad(valid)
        scores = word_region_scores(texts, batch.caption_concepts, all_regions, all_valid)
        targets = torch.arange(len(batch), device=scores.device) + offset
        loss = contrastive_loss(
            scores, targets, tau=self.config.contrastive_tau, label_smoothing=self.config.label_smoothing
        )
        return loss, {"contrastive_captions": len(batch), "contrastive_images": all_regions.shape[0]}

    def _classification_loss(self, batch, outputs, anchors) -> torch.Tensor:
        texts = self.text_encoder(batch.concepts)
        classes = sorted({c for rows in batch.caption_concepts for c in rows})
        obj, _ = self._objectness(batch, outputs, anchors, texts[classes])
        top1 = obj.argmax(dim=1)  # one main object per image [A]
        region = outputs.embeddings[torch.arange(len(batch), device=top1.device), top1]
        targets = torch.tensor([rows[0] for rows in batch.caption_concepts], device=region.device)
        return classification_loss(
            region, texts, targets, tau=self.config.contrastive_tau, label_smoothing=self.config.label_smoothing
        )

    # ----------------------------------------------------------------- inference
    def _autocast(self, device: torch.device):
        if not (self.config.autocast and device.type == "cuda"):
            return nullcontext()
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)

    @property
    def device(self) -> torch.device:
        """Where the weights are (the prediction loop starts DataLoader workers for a model on CUDA)."""
        return next(self.parameters()).device

    def input_transform(self) -> ImageTransform:
        """What the evaluation loop runs on each image in its DataLoader workers: resize, normalise, pad as if
        alone (:func:`~reference_model.detclipv2.decode.prepare_image`); :meth:`predict_inputs` takes the result."""
        return ImageTransform(InferenceSettings.from_config(self.config))

    @torch.no_grad()
    def predict_inputs(
        self,
        inputs: Sequence[PreparedImage],
        prompts: Sequence[str],
        *,
        max_dets_per_image: int | None = None,
        score_thresh: float | None = None,
    ) -> list[Prediction]:
        """Detections for prepared images; the prompts are encoded once per (vocabulary, weights) and cached.

        Scoring follows mmdetection's ATSS (and GLIP): the threshold and the per-level
        ``pre_nms_topk`` apply to the class probability sigmoid(logit); the kept candidates are
        then multiplied by sigmoid(centerness) and go through class-wise NMS. ``score_thresh``
        (default ``config.score_thresh``) is what a suite lowers for LVIS (1e-4), so Fixed AP's
        per-class pool of 10,000 is not starved. On CUDA each batch is stacked in page-locked memory and copied
        without blocking, and the dense forward runs under bf16/fp16 autocast (``config.autocast``).
        """
        cfg = self.config
        max_dets = cfg.max_dets_per_image if max_dets_per_image is None else max_dets_per_image
        thresh = cfg.score_thresh if score_thresh is None else score_thresh
        was_training = self.training
        self.eval()
        device = self.device
        texts = self.text_encoder.encode_cached(list(prompts))

        def forward(batch: torch.Tensor):
            with self._autocast(device):
                outputs, anchors = self.dense(batch.to(device, non_blocking=True))
            return (*score_outputs(self.head, outputs, texts), anchors)

        # the same pre/post-processing as an exported graph (reference_model/detclipv2/export.py)
        results = run_dense_prepared(
            forward,
            inputs,
            InferenceSettings.from_config(cfg),
            thresh=thresh,
            max_dets=max_dets,
            coder=self.coder,
            pin=device.type == "cuda",
        )
        self.train(was_training)
        return results

    # ----------------------------------------------------------------- identity / checkpoints
    def init_summary(self) -> dict[str, object]:
        """Where each tower started, so a number from a random start is never mistaken for the paper's setup."""
        cfg = self.config
        random = [part for part, init in (("backbone", cfg.backbone_init), ("text", cfg.text_init)) if init == RANDOM]
        summary: dict[str, object] = {"backbone": cfg.backbone_init, "text": cfg.text_init, "random": random}
        if cfg.text_init == RANDOM:
            summary["text_tokenizer"] = cfg.text_tokenizer or CLIP_TEXT_HUB
        return summary

    def provenance(self) -> dict[str, object]:
        """Facts that suites copy into results.json (``model_provenance``) and that key the prediction cache:
        the weights' origin and the revision of the inference code."""
        return {"init": self.init_summary(), "inference": INFERENCE_REVISION}

    def identity(self) -> str:
        """The first 16 hex digits of ``weights_fingerprint`` (config and every weight), recomputed only when a
        tensor changed."""
        state = self.state_dict()
        fingerprint = tuple(t._version for t in state.values()) + tuple(t.data_ptr() for t in state.values())
        if self._identity is not None and self._identity[0] == fingerprint:
            return self._identity[1]
        digest = weights_fingerprint(state, self.config.to_dict())[:16]
        self._identity = (fingerprint, digest)
        return digest

    def save_pretrained(self, directory) -> None:
        save_pretrained(self, directory)  # the module-level function from .checkpoint

    @classmethod
    def from_pretrained(cls, path_or_hub_id: str, **overrides) -> DetCLIPv2:
        return load_pretrained(cls, path_or_hub_id, **overrides)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def extra_repr(self) -> str:
        return f"name={self.name!r}, levels={self.config.num_levels}, D={self.config.embed_dim}"
