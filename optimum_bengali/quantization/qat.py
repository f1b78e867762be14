"""The ``qat`` recipe step: quantization-aware training with distillation (NNCF PyTorch), saved as OpenVINO int8.

Calibrated like static int8 (NNCF's transformer preset: symmetric per-channel int8 weights, int8 activations,
Smooth Quant and bias correction), then the fake-quantized model is fine-tuned with the stock ``Trainer`` on the
labels plus a soft loss against the logits of the model as it was *before* quantization (cached on disk like
black-box distillation's), and the epoch with the best validation macro-F1 is kept. The quantizers NNCF inserts
for one tensor (the shared input of query, key and value) are made one module first, so they train as one and
export as one ``FakeQuantize``. The trained model is
converted with ``openvino.convert_model``: weights are stored as int8 constants and the activation quantizers
stay as ``FakeQuantize`` ops, which the OpenVINO CPU plugin runs as int8. The folder loads with plain
``OVModelForSequenceClassification.from_pretrained``.
"""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Literal, Optional, Union

from ..distillation.cache import cached_teacher_logits
from ..distillation.trainer import DistillationTrainer
from ..export.static_lengths import check_lengths_setting, use_static_lengths
from ..interrupts import deferred
from ..registry import register_step
from ..steps import MAX_EPOCHS, Step, setting
from ..training.trainer import step_training_settings, train_classifier
from .openvino import compress_float_embeddings, float_embeddings, model_inputs
from .step import calibration_texts

if TYPE_CHECKING:  # pragma: no cover
    from ..state import CompressionState

#: NNCF compiles a C++ extension on first use; its 60 s default load timeout is too short on a busy CPU
EXTENSION_TIMEOUT_S = "600"
#: the inputs a BERT-family classifier's IR takes (``token_type_ids`` zeros where the tokenizer has none)
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")


def _torch_inputs(model: Any, tokenizer: Any, texts: List[str], max_length: int) -> Dict[str, Any]:
    """One padded batch of exactly the inputs the model and its IR take (:func:`.openvino.model_inputs`)."""
    import inspect

    import torch

    accepted = inspect.signature(model.forward).parameters
    names = [n for n in INPUT_NAMES if n in accepted]
    enc = model_inputs(tokenizer, texts, max_length, names, return_tensors="pt", padding=True)
    return {n: v.to(torch.int64) for n, v in enc.items()}


def padded_example(tokenizer: Any, texts: List[str]) -> List[str]:
    """The shortest and the longest of ``texts`` (by token count): a batch that has padding."""
    by_length = sorted(texts, key=lambda t: len(tokenizer(t)["input_ids"]))
    return [by_length[0], by_length[-1]]


def fake_quantize(model: Any, tokenizer: Any, texts: List[str], max_length: int) -> Any:
    """``model`` with NNCF int8 fake quantizers inserted and calibrated on ``texts`` (one sentence a sample).
    The result is the same class, trainable: its quantizer scales are parameters."""
    os.environ.setdefault("NNCF_EXTENSION_LOAD_TIMEOUT", EXTENSION_TIMEOUT_S)
    import nncf

    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, OverflowFix

    model.eval()
    dataset = nncf.Dataset(texts, lambda t: _torch_inputs(model, tokenizer, [t], max_length))
    # Weights on half the int8 range: CPUs without VNNI (AVX2 only) multiply u8 activations by s8 weights
    # with 16-bit sums that saturate on full-range weights, and the IR then computes something else than
    # the model that was trained (measured: logit correlation 0.69 without, 0.999 with, on a 4-layer BERT).
    params = AdvancedQuantizationParameters(overflow_fix=OverflowFix.ENABLE)
    return nncf.quantize(model, dataset, model_type=nncf.ModelType.TRANSFORMER, subset_size=len(texts),
                         advanced_parameters=params)


def share_quantizers_of_one_tensor(model: Any, inputs: Dict[str, Any]) -> int:
    """Make the activation quantizers that quantize one tensor a single, shared module; returns how many
    quantizers were replaced by a shared one.

    NNCF's PyTorch backend gives every consumer of a tensor its own quantizer (the input of a layer's query,
    key and value projections gets three), calibrated alike. Trained apart, they drift to slightly different
    ranges, and the exported IR then quantizes that tensor three times with ``FakeQuantize`` ops the OpenVINO
    CPU plugin cannot fuse into the MatMuls (measured on a 12-layer e5-small: 37 standalone ``FakeQuantize``
    nodes in the compiled graph against 1 for static int8). Shared, they train as one and export as one, as
    in OpenVINO's own static int8. Quantizers are grouped when they see equal tensors in one forward pass of
    ``inputs`` and hold equal calibrated parameters."""
    import torch
    from nncf.torch.quantization.layers import BaseQuantizer

    slots = [(parent, name, child) for parent in model.modules() for name, child in parent._modules.items()
             if isinstance(child, BaseQuantizer)]
    seen: Dict[int, Any] = {}
    model.eval()  # dropout would make the copies of one tensor differ, and nothing would be shared
    hooks = [q.register_forward_pre_hook(lambda mod, args: seen.setdefault(id(mod), args[0].detach().clone()))
             for _, _, q in slots]
    try:
        with torch.no_grad():
            model(**inputs)
    finally:
        for hook in hooks:
            hook.remove()

    def same(a: Any, b: Any) -> bool:
        x, y = seen.get(id(a)), seen.get(id(b))
        if type(a) is not type(b) or x is None or y is None or x.shape != y.shape or not torch.equal(x, y):
            return False
        sa, sb = a.state_dict(), b.state_dict()
        return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)

    firsts: List[Any] = []
    shared = 0
    for parent, name, quantizer in slots:
        first = next((f for f in firsts if f is not quantizer and same(f, quantizer)), None)
        if first is None:
            firsts.append(quantizer)
        else:
            parent._modules[name] = first
            shared += 1
    return shared


def fake_quantize_ops(ov_model: Any) -> int:
    """How many ``FakeQuantize`` ops an OpenVINO model holds (activation quantizers of a QAT model)."""
    return sum(op.get_type_name() == "FakeQuantize" for op in ov_model.get_ops())


def save_openvino(model: Any, tokenizer: Any, example_texts: List[str], max_length: int, folder: Path) -> Any:
    """Convert a fake-quantized PyTorch classifier to OpenVINO and save it in ``folder`` (IR + config):
    ``save_model`` folds each weight quantizer into int8 constants; embedding tables left in floating
    point are compressed to int8 like static int8's. Returns the saved ``openvino.Model``.

    ``example_texts`` are traced as one padded batch: sentences of different lengths, so the traced graph
    keeps the attention-mask path (an all-ones example lets transformers drop the mask, and the IR would
    then ignore padding)."""
    import openvino as ov
    import torch

    model.eval()
    example = _torch_inputs(model, tokenizer, example_texts, max_length)
    if bool(example["attention_mask"].all()):
        raise ValueError("trace with sentences of different token counts, so that the batch has padding")
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracing warns about branches a classifier never takes
        ov_model = ov.convert_model(model, example_input=example)
    ov_model.outputs[0].get_tensor().set_names({"logits"})
    if float_embeddings(ov_model):
        ov_model = compress_float_embeddings(ov_model)
    folder.mkdir(parents=True, exist_ok=True)
    ov.save_model(ov_model, str(folder / "openvino_model.xml"), compress_to_fp16=False)
    model.config.save_pretrained(folder)
    return ov_model


@register_step("qat")
@dataclass
class QATStep(Step):
    """Quantization-aware training with distillation; the result is an OpenVINO int8 model. Must be last.

    ``num_samples`` training sentences calibrate the quantizers (as in static int8); then ``epochs`` of
    training at ``learning_rate`` on the cross-entropy plus, with weight ``alpha``, the KL at ``temperature``
    against the logits of the model before quantization (``alpha: 0``: labels only). The best validation
    macro-F1 evaluation is kept. ``static_lengths`` as in the ``quantize`` step.
    """

    produces_final = True
    trains = True

    num_samples: int = setting(300, min=1, help="calibration sentences drawn from the train split")
    epochs: float = setting(1.0, min=0, min_exclusive=True, max=MAX_EPOCHS)
    learning_rate: float = setting(1e-5, min=0, min_exclusive=True)
    batch_size: int = setting(16, min=1)
    temperature: float = setting(2.0, min=0, min_exclusive=True)
    alpha: float = setting(0.5, min=0, max=1, help="weight of the soft loss against the unquantized model")
    warmup_ratio: float = setting(0.1, min=0, max=1)
    max_steps: int = -1
    early_stopping_patience: Optional[int] = None
    max_length: int = setting(128, min=8)
    static_lengths: Union[List[int], Literal["auto"], None] = setting(
        None, help="run each batch padded to the next of these lengths (see the quantize step)")
    seed: Optional[int] = None
    cache_dir: Optional[str] = None

    def check(self) -> None:
        check_lengths_setting(self.static_lengths)

    def apply(self, state: "CompressionState") -> None:
        from optimum.intel import OVModelForSequenceClassification

        model = state.torch_model("qat")
        extra, info = None, {}
        if self.alpha > 0:  # the soft targets are the model's own logits before quantization
            logits, hit = cached_teacher_logits(model, state.tokenizer, state.data.texts("train"),
                                                state.data.fingerprint("train"), self.max_length, self.cache_dir,
                                                progress=state.progress)
            extra, info["teacher_logits_cache_hit"] = {"teacher_logits": logits}, hit
        texts = calibration_texts(state, self.num_samples)
        t0 = time.perf_counter()
        with deferred():  # NNCF's calibration: native code an interrupt must not unwind
            quantized = fake_quantize(model, state.tokenizer, texts, self.max_length)
        info["quantizers_shared"] = share_quantizers_of_one_tensor(
            quantized, _torch_inputs(quantized, state.tokenizer, texts[:8], self.max_length))
        info["calibration_seconds"] = round(time.perf_counter() - t0, 1)
        t0 = time.perf_counter()
        trained = train_classifier(quantized, state.tokenizer, state.data, state.work_dir / "qat",
                                   trainer_class=DistillationTrainer, train_extra=extra,
                                   trainer_kwargs={"temperature": self.temperature, "alpha": self.alpha},
                                   record=info, **step_training_settings(self, state))
        info["training_minutes"] = round((time.perf_counter() - t0) / 60, 2)
        out = state.work_dir / "openvino-qat"
        with deferred():  # OpenVINO's conversion, likewise
            ov_model = save_openvino(trained, state.tokenizer, padded_example(state.tokenizer, texts),
                                     self.max_length, out)
        info["fake_quantize_ops"] = fake_quantize_ops(ov_model)
        state.model = OVModelForSequenceClassification.from_pretrained(str(out))
        state.format = "openvino"
        use_static_lengths(state, self.static_lengths, self.max_length)
        state.note(format=state.format, **info)
