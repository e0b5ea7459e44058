"""DetCLIPv2: a dual-stream ATSS detector whose classifier is region–text similarity [P].

``forward(batch)`` returns the losses of the batch's data kind (Eq. 6): detection = focal
alignment + GIoU + centerness; grounding = alignment only; image-text = λ·contrastive over
word-region scores; classification = λ·cross-entropy of the top-1 proposal. ``predict`` is the
:class:`detclip_bench.adapters.Detector` interface used by every benchmark suite.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from contextlib import nullcontext

import torch
from torch import nn
from torchvision.ops import batched_nms

from detclip_bench.adapters import Prediction
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
from reference_model.detclipv2.batching import TrainBatch, pad_stack, resize_scale, to_tensor
from reference_model.detclipv2.box_coder import DeltaBoxCoder, anchors_inside, make_anchors
from reference_model.detclipv2.config import DetCLIPv2Config
from reference_model.detclipv2.distributed import gather_strings, gather_with_grad
from reference_model.detclipv2.fpn import FPN
from reference_model.detclipv2.pretrained import CLIP_TEXT_HUB, RANDOM
from reference_model.detclipv2.text_encoder import TextEncoder, build_text_model, rebuild_text_model

__all__ = ["DetCLIPv2"]


class DetCLIPv2(nn.Module):
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
        # branches a kind does not supervise join the graph with weight 0, so DDP needs no
        # find_unused_parameters (grounding/image-text leave the box and centerness convs idle)
        losses["loss"] = total + 0.0 * (outputs.deltas.sum() + outputs.centerness.sum())
        # what the step trained on, beside the losses in the metrics log: M per image, the share of
        # concepts with a definition, and for image-text how many images each caption was scored against
        if batch.concepts_per_image:
            facts["concepts_per_image"] = sum(batch.concepts_per_image) / len(batch.concepts_per_image)
        if batch.defined_per_image:
            facts["definition_share"] = sum(batch.defined_per_image) / max(1, sum(batch.concepts_per_image))
        losses.update({k: torch.tensor(float(v)) for k, v in facts.items()})
        return losses

    def _box_supervised_losses(self, batch, outputs, anchors, kind) -> dict[str, torch.Tensor]:
        concepts = gather_strings(batch.concepts)  # global batch, de-duplicated [P]
        column = {c: i for i, c in enumerate(concepts)}
        remap = torch.tensor([column[c] for c in batch.concepts], dtype=torch.long, device=batch.images.device)
        texts = self.text_encoder(concepts)
        logits = self.head.logits(outputs.embeddings, texts)  # (B, K, M_B)
        is_det = kind is DataKind.DETECTION
        return self.head.compute_loss(
            outputs,
            logits,
            anchors,
            batch.boxes,
            [remap[lab] for lab in batch.labels],
            self.coder,
            topk=self.config.atss_topk,
            focal_alpha=self.config.focal_alpha,
            focal_gamma=self.config.focal_gamma,
            box_loss=is_det,
            center_loss=is_det or self.config.grounding_center_loss,
            image_sizes=batch.image_sizes,
            negative_mask=self._negative_mask(batch, concepts),
        )

    @staticmethod
    def _negative_mask(batch: TrainBatch, concepts: list[str]) -> torch.Tensor | None:
        """(B, M_B) over the *gathered* concept list: may image b's unmatched anchors be negatives
        for concept m? Only federated (LVIS) images restrict it, to their verified concepts."""
        verified = batch.verified_negatives
        if not any(v is not None for v in verified):
            return None
        rows = [[v is None or c in v for c in concepts] for v in verified]
        return torch.tensor(rows, dtype=torch.bool, device=batch.images.device)

    def _objectness(self, batch, outputs, anchors, texts) -> tuple[torch.Tensor, torch.Tensor]:
        """Batch-wise max concept similarity per anchor [P]; anchors centred in padding get -inf."""
        anchor_cat = torch.cat(anchors)
        with torch.no_grad():
            obj = max_cosine(outputs.embeddings.detach(), texts.detach())
            obj = obj.masked_fill(~anchors_inside(anchor_cat, batch.image_sizes), float("-inf"))
            boxes = self.coder.decode(outputs.deltas.detach(), anchor_cat[None])
        return obj, boxes

    def _image_text_loss(self, batch, outputs, anchors) -> tuple[torch.Tensor, dict[str, float]]:
        texts = self.text_encoder(batch.concepts)
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

    @torch.no_grad()
    def predict(
        self,
        images: Sequence,
        prompts: Sequence[str],
        *,
        max_dets_per_image: int | None = None,
        score_thresh: float | None = None,
    ) -> list[Prediction]:
        """Detections in original image pixels; labels index ``prompts`` (each encoded once, cached).

        Scoring follows mmdetection's ATSS (and GLIP): the threshold and the per-level
        ``pre_nms_topk`` apply to the class probability sigmoid(logit); the kept candidates are
        then multiplied by sigmoid(centerness) and go through class-wise NMS. ``score_thresh``
        (default ``config.score_thresh``) is what a suite lowers for LVIS (1e-4), so Fixed AP's
        per-class pool of 10,000 is not starved.
        """
        cfg = self.config
        max_dets = cfg.max_dets_per_image if max_dets_per_image is None else max_dets_per_image
        thresh = cfg.score_thresh if score_thresh is None else score_thresh
        was_training = self.training
        self.eval()
        device = next(self.parameters()).device
        texts = self.text_encoder.encode_cached(list(prompts))
        results: list[Prediction] = []
        for start in range(0, len(images), cfg.predict_batch_size):
            chunk = images[start : start + cfg.predict_batch_size]
            scales = [resize_scale(*im.size, cfg.test_size) for im in chunk]
            tensors = [
                to_tensor(
                    im.resize((max(1, round(im.width * s)), max(1, round(im.height * s)))),
                    cfg.pixel_mean,
                    cfg.pixel_std,
                )
                for im, s in zip(chunk, scales, strict=True)
            ]
            batch = pad_stack(tensors, cfg.size_divisor).to(device)
            with self._autocast(device):
                outputs, anchors = self.dense(batch)
            class_prob = self.head.logits(outputs.embeddings.float(), texts.float()).sigmoid()
            centerness = outputs.centerness.float().sigmoid()
            for i, (im, s) in enumerate(zip(chunk, scales, strict=True)):
                results.append(
                    self._postprocess(
                        class_prob[i], centerness[i], outputs.deltas[i].float(), anchors, thresh, max_dets, s, im.size
                    )
                )
        self.train(was_training)
        return results

    def _postprocess(self, class_prob, centerness, deltas, anchors, thresh, max_dets, scale, orig_size) -> Prediction:
        """Per level: (anchor, class) pairs with class probability > ``thresh``, the top
        ``pre_nms_topk`` of them by class probability; score = probability × centerness; class-wise NMS."""
        num_classes = class_prob.shape[1]
        all_boxes, all_scores, all_labels, start = [], [], [], 0
        for level in anchors:
            s = class_prob[start : start + len(level)].flatten()
            keep = torch.nonzero(s > thresh).squeeze(1)
            s = s[keep]
            if len(s) > self.config.pre_nms_topk:
                s, top = s.topk(self.config.pre_nms_topk)
                keep = keep[top]
            anchor_idx, label = keep // num_classes, keep % num_classes
            all_boxes.append(self.coder.decode(deltas[start + anchor_idx], level[anchor_idx]))
            all_scores.append(s * centerness[start + anchor_idx])
            all_labels.append(label)
            start += len(level)
        boxes, sc, labels = torch.cat(all_boxes), torch.cat(all_scores), torch.cat(all_labels)
        keep = batched_nms(boxes, sc, labels, self.config.nms_iou)[:max_dets]
        w, h = orig_size
        boxes = boxes[keep] / scale
        boxes[:, 0::2] = boxes[:, 0::2].clamp(0, w)
        boxes[:, 1::2] = boxes[:, 1::2].clamp(0, h)
        return Prediction(boxes=boxes.cpu().numpy(), scores=sc[keep].cpu().numpy(), labels=labels[keep].cpu().numpy())

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
        """Facts about the weights' origin that suites copy into results.json (``model_provenance``)."""
        return {"init": self.init_summary()}

    def identity(self) -> str:
        """sha256 of the config and every weight, recomputed only when a tensor changed."""
        state = self.state_dict()
        fingerprint = tuple(t._version for t in state.values()) + tuple(t.data_ptr() for t in state.values())
        if self._identity is not None and self._identity[0] == fingerprint:
            return self._identity[1]
        h = hashlib.sha256(json.dumps(self.config.to_dict(), sort_keys=True).encode())
        for key, tensor in state.items():
            h.update(key.encode())
            h.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
        digest = h.hexdigest()[:16]
        self._identity = (fingerprint, digest)
        return digest

    def save_pretrained(self, directory) -> None:
        from reference_model.detclipv2.checkpoint import save_pretrained

        save_pretrained(self, directory)

    @classmethod
    def from_pretrained(cls, path_or_hub_id: str, **overrides) -> DetCLIPv2:
        from reference_model.detclipv2.checkpoint import load_pretrained

        return load_pretrained(cls, path_or_hub_id, **overrides)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def extra_repr(self) -> str:
        return f"name={self.name!r}, levels={self.config.num_levels}, D={self.config.embed_dim}"
