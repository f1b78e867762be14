"""Export to an inference runtime without changing the weights (the FP32 peer of every quantized model)."""

from .step import ExportStep

__all__ = ["ExportStep"]
