"""DetCLIPv2 reference model (Yao et al., CVPR 2023), built on timm + transformers + torchvision.ops."""

from reference_model.detclipv2.batching import InputSpec, TrainBatch, collate_train
from reference_model.detclipv2.config import DetCLIPv2Config
from reference_model.detclipv2.model import DetCLIPv2
from reference_model.detclipv2.variants import create_model, get_config, list_variants

__all__ = [
    "DetCLIPv2",
    "DetCLIPv2Config",
    "InputSpec",
    "TrainBatch",
    "collate_train",
    "create_model",
    "get_config",
    "list_variants",
]
