"""detclip-bench: open-vocabulary detection data, benchmarks and a DetCLIPv2 reference model."""

from detclip_bench.errors import DataError, SkipLog
from detclip_bench.schema import Concept, DataKind, ImageRef, Sample

__all__ = ["Concept", "DataError", "DataKind", "ImageRef", "Sample", "SkipLog"]
__version__ = "0.1.0"
