"""Post-training quantization backends: OpenVINO/NNCF (default), torch dynamic int8, Neural Compressor."""

from .torch_dynamic import TorchInt8ModelForSequenceClassification

__all__ = ["TorchInt8ModelForSequenceClassification"]
