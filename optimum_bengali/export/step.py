"""The ``export`` recipe step: the model as OpenVINO IR with FP32 weights, no quantization.

It is the peer that separates the runtime's gain from quantization's: PyTorch FP32 -> OpenVINO FP32
(``export``) -> OpenVINO int8 (``quantize``). ``precision`` chooses what OpenVINO's CPU plugin runs the
model in, and is stored with the model (``openvino_runtime.json``, applied by ``load_model`` and shown in
the model card), because on CPUs with native bfloat16 (AVX512-BF16, AMX) the plugin's default is bf16.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, List, Literal, Union

from .static_lengths import check_lengths_setting, use_static_lengths
from ..registry import register_step
from ..steps import Step, setting

if TYPE_CHECKING:  # pragma: no cover
    from ..state import CompressionState

#: precision setting -> OpenVINO's INFERENCE_PRECISION_HINT (None: leave the plugin's default)
PRECISION_HINTS = {"f32": "f32", "bf16": "bf16", "default": None}


@register_step("export")
@dataclass
class ExportStep(Step):
    """Convert the PyTorch model to OpenVINO IR with FP32 weights (no quantization).

    ``precision``: ``f32`` (run everything in FP32, the exact peer of the PyTorch model), ``bf16``
    (bfloat16 inference; emulated and slow on CPUs without native bf16), or ``default`` (the CPU plugin's
    own choice: bf16 where the CPU has it, else f32). The precision in effect is read back and reported.
    ``static_lengths``: as for ``quantize``, the saved folder runs each batch padded to the next of these
    token counts with a model compiled for that static shape (:mod:`optimum_bengali.formats.openvino_static`).
    """

    produces_final = True

    backend: Literal["openvino"] = "openvino"
    precision: Literal["f32", "bf16", "default"] = "f32"
    static_lengths: Union[List[int], Literal["auto"], None] = setting(
        None, help="run each batch padded to the next of these lengths, one static-shape model each; "
                   "auto: lengths from the training split's token counts")
    max_length: int = setting(128, min=8, help="static_lengths auto: the longest length counted")

    def check(self) -> None:
        check_lengths_setting(self.static_lengths)

    def apply(self, state: "CompressionState") -> None:
        from ..quantization.openvino import export
        from ..runtime import ov_config

        state.torch_model("export")
        ov_model = export(state.model, state.tokenizer, state.work_dir / "openvino_fp32")
        hint = PRECISION_HINTS[self.precision]
        # the precision travels with the model; the openvino format's save writes it to openvino_runtime.json
        ov_model.ov_config = {**ov_config(state.work_dir / "openvino_fp32"),
                              **({"INFERENCE_PRECISION_HINT": hint} if hint else {})}
        ov_model.compile()
        state.model = ov_model
        use_static_lengths(state, self.static_lengths, self.max_length)
        state.format = "openvino"
        state.note(backend=self.backend, precision=self.precision, format=state.format)
