"""The ``quantize`` recipe step. Each backend lives in its own module and registers itself in :mod:`.backends`."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Dict, List, Literal, Union

from ..export.static_lengths import check_lengths_setting, use_static_lengths
from ..errors import ModelError
from ..registry import register_step
from ..steps import SettingError, Step, only_for, setting
from .backends import QUANTIZATION_BACKENDS

if TYPE_CHECKING:  # pragma: no cover
    from ..state import CompressionState, ModelFacts


def calibration_texts(state: "CompressionState", num_samples: int) -> List[str]:
    """``num_samples`` training sentences (all of them when there are fewer), drawn with the recipe seed."""
    texts = state.data.texts("train")
    return random.Random(state.seed).sample(texts, min(num_samples, len(texts)))


#: the settings each mode reads (max_length and static_lengths: every mode that runs a model on sentences)
_MODE_FIELDS = {"static": ("num_samples", "compress_embeddings"), "accuracy_control": ("num_samples",
                "compress_embeddings", "max_macro_f1_drop"), "autotune": ("num_samples", "max_macro_f1_drop"),
                "dynamic": (), "weight_only": ()}


@register_step("quantize")
@dataclass
class QuantizeStep(Step):
    """Post-training int8 quantization. Must be the last step that changes weights.

    backend ``openvino``: ``static`` (NNCF int8 PTQ, calibrated on the train split; the embedding tables
    are stored as int8 weights too, and ``compress_embeddings`` compresses any that were left in floating
    point), ``weight_only``
    (int8 weights, FP32 activations) or ``accuracy_control`` (NNCF keeps layers in FP32 until the
    validation macro-F1 drop is at most ``max_macro_f1_drop``; NNCF measures with FP32 inference, so the saved
    folder runs its floating-point parts in FP32 too, and its embedding tables become int8 only when the drop
    still holds).
    backend ``torch``: ``dynamic`` int8 of every Linear layer (per-channel weights, ``torch.ao``).
    backend ``torchao``: ``dynamic`` int8 of every Linear layer with torchao (per-row weights, per-token
    activations); the folder loads with plain ``AutoModelForSequenceClassification``.
    backend ``inc`` (extra ``[inc]``): Intel Neural Compressor PT2E int8, ``dynamic``, ``static``
    (calibrated) or ``autotune`` (static, else dynamic, within ``max_macro_f1_drop`` on validation).
    ``static_lengths`` (openvino): the saved folder runs each batch padded to the next of these token counts
    with a model compiled for that static shape (see :mod:`optimum_bengali.formats.openvino_static`).
    """

    produces_final = True

    backend: Literal["openvino", "torch", "torchao", "inc"] = "openvino"
    mode: Literal["static", "dynamic", "weight_only", "accuracy_control", "autotune"] = "static"
    num_samples: int = setting(300, min=1, help="calibration sentences drawn from the train split")
    compress_embeddings: bool = True
    max_macro_f1_drop: float = setting(0.01, min=0, max=1, help="accuracy_control/autotune: absolute drop")
    max_length: int = setting(128, min=8)
    static_lengths: Union[List[int], Literal["auto"], None] = setting(
        None, help="openvino: run each batch padded to the next of these lengths, one static-shape model each; "
                   "auto: lengths from the training split's token counts")

    def not_applicable(self) -> Dict[str, str]:
        out = only_for("mode", self.mode, _MODE_FIELDS)
        out.update(only_for("backend", self.backend, {"openvino": ("static_lengths", "compress_embeddings"),
                                                      "torch": (), "torchao": (), "inc": ()}))
        return out

    def check(self) -> None:
        modes = QUANTIZATION_BACKENDS.info(self.backend)["modes"]
        if self.mode not in modes:
            raise SettingError("mode", f"backend {self.backend!r} supports {', '.join(modes)}; "
                                       f"got {self.mode!r}")
        check_lengths_setting(self.static_lengths)  # another backend's static_lengths: refused by not_applicable

    def calibration_texts(self, state: "CompressionState") -> List[str]:
        """``num_samples`` training sentences, drawn with the recipe seed."""
        return calibration_texts(state, self.num_samples)

    def preflight(self, facts: "ModelFacts") -> None:
        """The backend's library is installed."""
        import importlib.util

        info = QUANTIZATION_BACKENDS.info(self.backend)
        if info.get("package") and importlib.util.find_spec(info["package"]) is None:
            raise ModelError(f"backend {self.backend!r} needs {info['package']}: pip install "
                             f"'optimum-bengali[{info['extra']}]'")

    def apply(self, state: "CompressionState") -> None:
        state.torch_model("quantize")
        QUANTIZATION_BACKENDS[self.backend](self, state)
        use_static_lengths(state, self.static_lengths, self.max_length)
        state.note(backend=self.backend, mode=self.mode, format=state.format)
