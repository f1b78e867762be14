"""PyTorch backend: dynamic int8 quantization of Linear layers (per-channel weights, ``torch.ao``).

The on-disk format (and its loader) is :mod:`optimum_bengali.formats.torch_int8`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..formats.torch_int8 import quantize_linear_int8, save_int8

if TYPE_CHECKING:  # pragma: no cover
    from ..state import CompressionState
    from .step import QuantizeStep


def quantize(step: "QuantizeStep", state: "CompressionState") -> None:
    """Dynamic int8 for every Linear; writes the int8 folder into the staging folder."""
    model = quantize_linear_int8(state.model)
    save_int8(model, state.staging_dir)
    state.tokenizer.save_pretrained(state.staging_dir)
    state.model = model
    state.format, state.saved = "torch-int8", True
