"""Intel Neural Compressor backend (extra ``[inc]``): PT2E int8 through ``neural_compressor.torch``.

The classifier is exported with ``torch.export`` (dynamic batch size and sequence length) and quantized
with ``DynamicQuantConfig`` (int8 weights, activations quantized per call), ``INT8StaticQuantConfig``
(``prepare``, one calibration pass over training sentences, ``convert``) or by ``autotune``, which tries
static then dynamic int8 and keeps the first whose validation macro-F1 is within ``max_macro_f1_drop``.

The on-disk format and its loader are :mod:`optimum_bengali.formats.inc`. The saved graph runs the int8
ops in PT2E's reference form unless it is compiled with ``torch.compile``: it is a portable int8 model,
not the fast CPU path (that is the OpenVINO backend).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, List, Optional, Tuple

import torch
from transformers import PreTrainedModel

from ..errors import ModelError
from ..formats.inc import (IncInt8ModelForSequenceClassification, positional_inputs, require_inc, input_names,
                           save_inc)
from .backends import QUANTIZATION_BACKENDS

if TYPE_CHECKING:  # pragma: no cover
    from ..state import CompressionState
    from .step import QuantizeStep


class _LogitsOnly(torch.nn.Module):
    """Positional inputs in, logits out: the form ``torch.export`` wants."""

    def __init__(self, model: PreTrainedModel, names: List[str]) -> None:
        super().__init__()
        self.model, self.names = model, names

    def forward(self, input_ids: torch.Tensor, attention_mask: Optional[torch.Tensor] = None,
                token_type_ids: Optional[torch.Tensor] = None) -> torch.Tensor:
        given = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
        return self.model(**{n: given[n] for n in self.names}).logits


def _batches(tokenizer: Any, texts: List[str], names: List[str], max_length: int,
             batch_size: int = 8) -> List[Tuple[torch.Tensor, ...]]:
    out = []
    for i in range(0, len(texts), batch_size):
        enc = tokenizer(texts[i:i + batch_size], padding=True, truncation=True, max_length=max_length,
                        return_tensors="pt")
        out.append(positional_inputs(dict(enc), names))
    return out


def _example(tokenizer: Any, texts: List[str], names: List[str], max_length: int) -> Tuple[torch.Tensor, ...]:
    """Two sentences of different lengths: sizes of 1 would be specialised by ``torch.export``."""
    texts = sorted(texts, key=len)
    return _batches(tokenizer, [texts[0], texts[-1]], names, max_length, batch_size=2)[0]


def export_classifier(model: PreTrainedModel, example: Tuple[torch.Tensor, ...], names: List[str],
                      max_length: int) -> Any:
    """``torch.export`` the classifier with a dynamic batch size and sequence length (INC's exporter)."""
    from neural_compressor.torch.export import export

    batch = torch.export.Dim("batch", max=4096)
    seq = torch.export.Dim("seq", max=max(max_length, int(example[0].shape[1])))
    shapes = {name: {0: batch, 1: seq} for name in names}
    exported = export(_LogitsOnly(model.eval(), names), example, dynamic_shapes=shapes)
    if exported is None:
        raise ModelError(f"torch.export could not trace {type(model).__name__}; use backend 'openvino' "
                         "or 'torch' for this architecture")
    return exported


def _macro_f1(module: Any, batches: List[Tuple[torch.Tensor, ...]], labels: List[int], num_labels: int) -> float:
    from ..evaluation import classification_metrics

    preds: List[int] = []
    with torch.no_grad():
        for args in batches:
            preds.extend(module(*args).argmax(-1).tolist())
    return classification_metrics(labels, preds, num_labels=num_labels)["macro_f1"]


def quantize_classifier(model: PreTrainedModel, tokenizer: Any, mode: str, calibration: List[str],
                        max_length: int = 128, validation: Optional[Tuple[List[str], List[int]]] = None,
                        max_macro_f1_drop: float = 0.01) -> Tuple[Any, Tuple[torch.Tensor, ...], str]:
    """Export and int8-quantize ``model`` with INC. Returns (quantized graph, example inputs, mode used)."""
    require_inc()
    from neural_compressor.torch.quantization import (DynamicQuantConfig, INT8StaticQuantConfig, TuningConfig,
                                                      autotune, convert, prepare)

    names = input_names(model)
    example = _example(tokenizer, calibration, names, max_length)
    calib = _batches(tokenizer, calibration, names, max_length)

    def calibrate(prepared: Any) -> None:
        with torch.no_grad():
            for args in calib:
                prepared(*args)

    exported = export_classifier(model, example, names, max_length)
    if mode in ("dynamic", "static"):
        # dynamic mode needs the pass too: PT2E observes the *weights* during it, and without one every
        # weight is quantized with default parameters (scale 1), which zeroes a BERT classifier's logits
        prepared = prepare(exported, DynamicQuantConfig() if mode == "dynamic" else INT8StaticQuantConfig())
        calibrate(prepared)
        return convert(prepared), example, mode
    if validation is None:
        raise ValueError("autotune needs validation texts and labels")
    val = _batches(tokenizer, validation[0], names, max_length, batch_size=32)
    eval_fn: Callable[[Any], float] = lambda m: _macro_f1(m, val, validation[1], model.config.num_labels)  # noqa: E731
    baseline = eval_fn(exported)
    # INC's tolerance is relative to the FP32 score; the recipe gives an absolute macro-F1 drop
    tolerance = max_macro_f1_drop / max(baseline, 1e-6)
    configs = [INT8StaticQuantConfig(), DynamicQuantConfig()]
    tuned = autotune(exported, TuningConfig(config_set=configs, tolerable_loss=tolerance, max_trials=2),
                     eval_fn=eval_fn, run_fn=calibrate, example_inputs=example)
    used = "static" if tuned.qconfig and any(c.name == INT8StaticQuantConfig.name
                                             for c in tuned.qconfig.values()) else "dynamic"
    return tuned, example, used


@QUANTIZATION_BACKENDS.register("inc", modes=("dynamic", "static", "autotune"), package="neural_compressor",
                               extra="inc")
def quantize(step: "QuantizeStep", state: "CompressionState") -> None:
    """Run the INC mode of ``step``; the graph is written (INC's save needs the export's example inputs) to
    a work folder and loaded back from it, and the pipeline saves that in the inc format."""
    calibration = step.calibration_texts(state)
    validation = (state.data.texts("validation"), state.data.labels("validation")) \
        if step.mode == "autotune" else None
    quantized, example, used = quantize_classifier(
        state.model, state.tokenizer, step.mode, calibration, max_length=step.max_length,
        validation=validation, max_macro_f1_drop=step.max_macro_f1_drop)
    folder = state.work_dir / "inc-int8"
    save_inc(quantized, example, state.model.config, folder, input_names(state.model), used)
    state.model = IncInt8ModelForSequenceClassification.from_pretrained(folder)
    state.format = "inc"
    state.note(inc_mode=used)
