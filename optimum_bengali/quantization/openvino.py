"""OpenVINO backend: export with optimum-intel, int8 PTQ with NNCF. Output loads with
``OVModelForSequenceClassification.from_pretrained``."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, List

import numpy as np

from .backends import QUANTIZATION_BACKENDS

if TYPE_CHECKING:  # pragma: no cover
    from ..state import CompressionState
    from .step import QuantizeStep

logger = logging.getLogger(__name__)


def export(model: Any, tokenizer: Any, folder: Path) -> Any:
    """Save the PyTorch model to ``folder`` and export it to an (uncompiled) OpenVINO model."""
    import torch
    from optimum.intel import OVModelForSequenceClassification

    from ..formats.pruned_heads import is_head_pruned, save_pruned_heads
    from ..formats.pytorch import save_pytorch

    head_pruned = is_head_pruned(model)  # its folder carries its modeling file; the IR needs no custom code
    (save_pruned_heads if head_pruned else save_pytorch)(model, folder)
    tokenizer.save_pretrained(folder)
    with warnings.catch_warnings():  # tracing warns about Python branches a classifier never takes
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        return OVModelForSequenceClassification.from_pretrained(str(folder), export=True, compile=False,
                                                                load_in_8bit=False, trust_remote_code=head_pruned)


def model_inputs(tokenizer: Any, texts: List[str], max_length: int, input_names: List[str],
                 return_tensors: Any = None, padding: bool = False) -> dict:
    """Tokenize for the exported model: exactly its inputs. ``token_type_ids`` is all zeros when the model
    takes it but the tokenizer does not produce it (XLM-R / e5 tokenizers with a BERT encoder)."""
    enc = tokenizer(texts, truncation=True, max_length=max_length, padding=padding, return_tensors=return_tensors)
    out = {name: enc[name] for name in input_names if name in enc}
    if "token_type_ids" in input_names and "token_type_ids" not in enc:
        ids = enc["input_ids"]
        out["token_type_ids"] = (np.zeros_like(ids) if return_tensors == "np" else ids.new_zeros(ids.shape)
                                 if return_tensors == "pt" else [[0] * len(x) for x in ids])
    return out


def _input_names(ov_model: Any) -> List[str]:
    return [inp.get_any_name() for inp in ov_model.model.inputs]


def _encoded(tokenizer: Any, texts: List[str], max_length: int, input_names: List[str]) -> Any:
    from datasets import Dataset

    return Dataset.from_dict({"text": texts}).map(
        lambda b: model_inputs(tokenizer, b["text"], max_length, input_names), batched=True,
        remove_columns=["text"])


def float_embeddings(model: Any) -> List[str]:
    """Embedding lookups (``Gather`` on a constant table) whose table is still floating point."""
    names = []
    for op in model.get_ops():
        if op.get_type_name() != "Gather":
            continue
        src = op.input_value(0).get_node()
        if src.get_type_name() == "Constant" and src.get_output_element_type(0).is_real():
            names.append(op.get_friendly_name())
    return names


def compress_float_embeddings(model: Any) -> Any:
    """Int8 (asymmetric, per-row) weight compression of embedding tables left in floating point."""
    import nncf

    names = float_embeddings(model)
    if not names:
        return model
    others = [op.get_friendly_name() for op in model.get_ops() if op.get_type_name() == "MatMul"]
    return nncf.compress_weights(model, mode=nncf.CompressWeightsMode.INT8_ASYM,
                                 ignored_scope=nncf.IgnoredScope(names=others, validate=False))


#: NNCF's accuracy control measures every model it compares with FP32 inference (no bf16, whatever the CPU);
#: an accuracy-controlled model is saved with this setting, so that it runs as its drop was checked
ACCURACY_CONTROL_CONFIG = {"INFERENCE_PRECISION_HINT": "f32"}


def _accuracy_controlled(step: "QuantizeStep", state: "CompressionState", ov_model: Any, out: Path) -> None:
    import nncf
    import openvino as ov

    from ..evaluation import classification_metrics

    names = _input_names(ov_model)

    def to_inputs(texts: List[str]) -> dict:
        enc = model_inputs(state.tokenizer, texts, step.max_length, names, return_tensors="np")
        return {n: v.astype(np.int64) for n, v in enc.items()}

    calib = nncf.Dataset(step.calibration_texts(state), lambda t: to_inputs([t]))
    val_texts, val_labels = state.data.texts("validation"), state.data.labels("validation")
    val = nncf.Dataset(list(zip(val_texts, val_labels)), lambda item: item)

    def validate(compiled: Any, items: Any) -> float:
        preds, gold = [], []
        for text, label in items:
            logits = compiled(to_inputs([text]))[compiled.outputs[0]]
            preds.append(int(np.argmax(logits, -1)[0]))
            gold.append(label)
        return classification_metrics(gold, preds, num_labels=state.model.config.num_labels)["macro_f1"]

    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, OverflowFix

    quantized = nncf.quantize_with_accuracy_control(
        ov_model.model, calibration_dataset=calib, validation_dataset=val, validation_fn=validate,
        max_drop=step.max_macro_f1_drop, drop_type=nncf.DropType.ABSOLUTE, model_type=nncf.ModelType.TRANSFORMER,
        subset_size=min(step.num_samples, 300),  # overflow fix as in static int8 (CPUs without VNNI)
        advanced_quantization_parameters=AdvancedQuantizationParameters(overflow_fix=OverflowFix.ENABLE))
    if step.compress_embeddings:
        def f1(model: Any) -> float:
            return validate(ov.Core().compile_model(model, "CPU", ACCURACY_CONTROL_CONFIG), val.get_data())

        quantized = embeddings_compressed_within(quantized, ov_model.model, f1, step.max_macro_f1_drop, state)
    out.mkdir(parents=True, exist_ok=True)
    ov.save_model(quantized, str(out / "openvino_model.xml"), compress_to_fp16=False)
    ov_model.config.save_pretrained(out)


def embeddings_compressed_within(quantized: Any, reference: Any, f1: Any, max_drop: float,
                                  state: "CompressionState") -> Any:
    """``quantized`` with its floating-point embedding tables int8-compressed, when the validation macro-F1
    (``f1`` of a model) of the result stays within ``max_drop`` of the FP32 ``reference``'s, as NNCF's accuracy
    control kept the rest; otherwise ``quantized`` as NNCF returned it, and the report says so."""
    if not float_embeddings(quantized):
        return quantized
    compressed = compress_float_embeddings(quantized.clone())
    drop = f1(reference) - f1(compressed)
    if drop <= max_drop:
        return compressed
    logger.warning("int8 embedding tables would lower validation macro-F1 by %.4f (> max_macro_f1_drop %.4f): "
                   "they stay in floating point", drop, max_drop)
    state.note(embeddings_compressed=False, embeddings_drop=round(drop, 6))
    return quantized


@QUANTIZATION_BACKENDS.register("openvino", modes=("static", "weight_only", "accuracy_control"))
def quantize(step: "QuantizeStep", state: "CompressionState") -> None:
    """Run the OpenVINO quantization mode of ``step``; the IR is written to a work folder (NNCF and the
    embedding compression work on files) and loaded back; the pipeline saves it in the openvino format."""
    from optimum.intel import (OVConfig, OVModelForSequenceClassification, OVQuantizationConfig, OVQuantizer,
                               OVWeightQuantizationConfig)

    ov_model = export(state.model, state.tokenizer, state.work_dir / "openvino_fp32")
    out = state.work_dir / "openvino-int8"
    if step.mode == "accuracy_control":
        _accuracy_controlled(step, state, ov_model, out)
    else:
        quantizer = OVQuantizer.from_pretrained(ov_model)
        if step.mode == "weight_only":
            config, dataset = OVWeightQuantizationConfig(bits=8), None
        else:
            # static int8 PTQ; optimum-intel stores the embedding tables as int8 weights too. (A mixed
            # weight-only + static config was measured 2x slower on the CPU: it is not used.)
            # overflow fix (weights on half the int8 range): optimum-intel's default "disable" saturates the
            # int8 MatMuls of CPUs without VNNI (AVX2 only), whose logits then follow the FP32 model's poorly
            config = OVQuantizationConfig(num_samples=step.num_samples, model_type="transformer",
                                          overflow_fix="enable")
            dataset = _encoded(state.tokenizer, step.calibration_texts(state), step.max_length,
                               _input_names(ov_model))
        quantizer.quantize(calibration_dataset=dataset, ov_config=OVConfig(quantization_config=config),
                           save_directory=str(out))
        if step.mode == "static" and step.compress_embeddings:
            import openvino as ov

            model = ov.Core().read_model(str(out / "openvino_model.xml"))
            if float_embeddings(model):
                ov.save_model(compress_float_embeddings(model), str(out / "openvino_model.tmp.xml"),
                              compress_to_fp16=False)
                for ext in ("xml", "bin"):
                    (out / f"openvino_model.tmp.{ext}").replace(out / f"openvino_model.{ext}")
    # an accuracy-controlled model keeps the precision its drop was checked in (saved in openvino_runtime.json)
    settings = ACCURACY_CONTROL_CONFIG if step.mode == "accuracy_control" else None
    state.model = OVModelForSequenceClassification.from_pretrained(str(out), ov_config=settings)
    state.format = "openvino"
