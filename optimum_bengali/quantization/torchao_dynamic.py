"""torchao backend: int8 dynamic activations and int8 per-row weights for every Linear
(``quantize_(model, Int8DynamicActivationInt8WeightConfig())``), torchao being the successor of ``torch.ao``'s
dynamic quantization. The saved folder (:mod:`optimum_bengali.formats.torchao`) loads with plain
``AutoModelForSequenceClassification.from_pretrained``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ModelError
from .backends import QUANTIZATION_BACKENDS

if TYPE_CHECKING:  # pragma: no cover
    from ..state import CompressionState
    from .step import QuantizeStep


@QUANTIZATION_BACKENDS.register("torchao", modes=("dynamic",), package="torchao", extra="torchao")
def quantize(step: "QuantizeStep", state: "CompressionState") -> None:
    """Quantize every Linear in place and attach the ``TorchAoConfig`` that ``save_pretrained`` writes."""
    try:
        from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_
    except ImportError as exc:
        raise ModelError("backend 'torchao' needs torchao: pip install 'optimum-bengali[torchao]'; "
                         f"import failed: {exc}") from None
    from transformers import TorchAoConfig
    from transformers.quantizers.auto import AutoHfQuantizer

    method = Int8DynamicActivationInt8WeightConfig()
    model = state.model.eval()
    quantize_(model, method)
    # what from_pretrained(..., quantization_config=TorchAoConfig(...)) leaves on a model loaded that way:
    # save_pretrained then flattens torchao's tensors for safetensors and records the config that was applied
    config = TorchAoConfig(method)
    model.config.quantization_config = config
    model.hf_quantizer = AutoHfQuantizer.from_config(config)
    state.format = "torchao"
