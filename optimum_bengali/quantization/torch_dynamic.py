"""PyTorch backend: dynamic int8 quantization of Linear layers (per-channel weights, ``torch.ao``).

The on-disk format (and its loader) is :mod:`optimum_bengali.formats.torch_int8`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..formats.torch_int8 import quantize_linear_int8
from .backends import QUANTIZATION_BACKENDS

if TYPE_CHECKING:  # pragma: no cover
    from ..state import CompressionState
    from .step import QuantizeStep


@QUANTIZATION_BACKENDS.register("torch", modes=("dynamic",))
def quantize(step: "QuantizeStep", state: "CompressionState") -> None:
    """Dynamic int8 for every Linear (in place); the pipeline saves it in the torch-int8 format."""
    state.model = quantize_linear_int8(state.model)
    state.format = "torch-int8"
