"""Quantization-aware training (the ``qat`` step): int8 ops in the IR, quantizers that really train, soft targets
from the model before quantization, and a folder plain optimum-intel loads."""

from collections import Counter

import numpy as np
import pytest
import torch

from optimum_bengali import RecipeError, apply_recipe, load_model, load_recipe, load_tokenizer
from optimum_bengali.evaluation import predict_logits
from optimum_bengali.quantization import qat

from test_quantization import _agreement, _correlation, assert_tracks


def _quantizer_params(model):
    return {n: p.detach().clone() for n, p in model.named_parameters() if "nncf" in n and "scale" in n}


def _ir_facts(xml):
    import openvino as ov

    model = ov.Core().read_model(str(xml))
    consts = Counter(op.get_output_element_type(0).get_type_name() for op in model.get_ops()
                     if op.get_type_name() == "Constant")
    return qat.fake_quantize_ops(model), consts["i8"]


def _tensors_quantized_twice(xml):
    """How many tensors of an IR feed more than one ``FakeQuantize`` op."""
    import openvino as ov

    sources = Counter(op.input_value(0).get_node().get_friendly_name()
                      for op in ov.Core().read_model(str(xml)).get_ops() if op.get_type_name() == "FakeQuantize")
    return sum(n > 1 for n in sources.values())


@pytest.mark.slow
def test_fake_quantized_model_exports_int8_ops_that_track_it(varied_teacher_dir, data, tmp_path):
    from optimum.intel import OVModelForSequenceClassification

    model, tok = load_model(varied_teacher_dir), load_tokenizer(varied_teacher_dir)
    texts = data.texts("test")[:64]
    fp32 = predict_logits(model, tok, texts)
    quantized = qat.fake_quantize(model, tok, data.texts("train")[:16], 128)
    assert _quantizer_params(quantized), "no trainable quantizer was inserted"
    q_torch = predict_logits(quantized, tok, texts)
    assert not np.allclose(q_torch, fp32, atol=1e-5)  # the fake quantizers are active
    qat.save_openvino(quantized, tok, qat.padded_example(tok, texts), 128, tmp_path)
    fq_ops, int8_weights = _ir_facts(tmp_path / "openvino_model.xml")
    assert fq_ops > 0 and int8_weights > 0, (fq_ops, int8_weights)
    tok.save_pretrained(tmp_path)
    ir = predict_logits(OVModelForSequenceClassification.from_pretrained(tmp_path), tok, texts)
    # the random tiny teacher's logits are close together, so int8 kernels against fake quantization flip some
    # near ties: 0.86-0.875 agreement was seen on some draws; the correlation carries the check
    assert_tracks(ir, q_torch, min_correlation=0.99, min_agreement=0.8)


@pytest.mark.slow
def test_qat_trains_the_quantizers_on_the_unquantized_models_logits(varied_teacher_dir, small_data, data,
                                                                    tmp_path, monkeypatch):
    from optimum.intel import OVModelForSequenceClassification

    seen = {}
    real_train = qat.train_classifier

    def spy(model, tokenizer, data_, *args, **kwargs):
        seen["before"] = _quantizer_params(model)
        seen["teacher_logits"] = kwargs["train_extra"]["teacher_logits"]
        seen["train_texts"] = data_.texts("train")
        seen["model"] = real_train(model, tokenizer, data_, *args, **kwargs)
        return seen["model"]

    monkeypatch.setattr(qat, "train_classifier", spy)
    recipe = {"name": "qat", "steps": [{"type": "qat", "num_samples": 16, "max_steps": 4, "batch_size": 8,
                                        "learning_rate": 1e-4}]}
    out = tmp_path / "qat"
    result = apply_recipe(varied_teacher_dir, recipe, small_data, out, measure_memory=False, progress=False)

    assert seen["before"], "training got a model without fake quantizers (quantize first, then train)"
    after = _quantizer_params(seen["model"])
    assert any(not torch.equal(seen["before"][n], after[n]) for n in seen["before"]), "quantizers did not train"
    teacher = load_model(varied_teacher_dir)
    fp32_train = predict_logits(teacher, load_tokenizer(varied_teacher_dir), seen["train_texts"])
    np.testing.assert_allclose(seen["teacher_logits"], fp32_train, atol=1e-4)  # soft targets: FP32, not int8

    fq_ops, int8_weights = _ir_facts(out / "openvino_model.xml")
    assert fq_ops > 0 and int8_weights > 0
    # the input of query, key and value is one tensor: after training it is still quantized once, not three
    # times with ranges that drifted apart (which the CPU plugin cannot fuse)
    assert result.steps[0]["quantizers_shared"] >= 2
    assert _tensors_quantized_twice(out / "openvino_model.xml") == 0
    reloaded = OVModelForSequenceClassification.from_pretrained(out)  # plain optimum-intel, no package code
    texts = data.texts("test")[:64]
    tok = load_tokenizer(out)
    ir = predict_logits(reloaded, tok, texts)
    trained = predict_logits(seen["model"], tok, texts)
    assert _correlation(ir, trained) >= 0.99 and _agreement(ir, trained) >= 0.9
    assert result.metrics["format"] == "openvino"
    runtime = result.metrics["runtime"]  # what runs, from the graph; the hint covers the rest
    assert runtime["precision"] == f"int8 MatMuls, {runtime['inference_precision']} rest"
    assert result.metrics["weight_bytes"] < 0.45 * result.baseline["weight_bytes"]
    step = result.steps[0]
    assert step["type"] == "qat" and step["fake_quantize_ops"] == fq_ops and step["training_minutes"] > 0
    assert load_recipe(out / "recipe.yaml").steps[0].type_name == "qat"


@pytest.mark.parametrize("field, value", [("backend", "torch"), ("mode", "static"), ("static_lengths", [0]),
                                          ("alpha", 2.0)])
def test_qat_rejects_fields_it_does_not_have_or_bad_values(field, value):
    with pytest.raises(RecipeError) as err:
        load_recipe({"name": "x", "steps": [{"type": "qat", field: value}]})
    assert f"'{field}'" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.slow
def test_qat_composes_with_a_trimmed_distilled_head_pruned_student(varied_teacher_dir, small_data, data, tmp_path,
                                                                   monkeypatch):
    """QAT as the last step of a flagship-like recipe: its input is a student with a trimmed vocabulary, fewer
    layers, and attention heads and FFN neurons removed (the ``pruned-heads`` format, custom modeling code).
    The IR it writes must hold int8 ops and compute what the trained fake-quantized student computes."""
    from optimum.intel import OVModelForSequenceClassification

    seen = {}
    real_train = qat.train_classifier

    def spy(model, tokenizer, data_, *args, **kwargs):
        seen["input_heads"] = getattr(model.config, "attention_heads_per_layer", None)
        seen["model"] = real_train(model, tokenizer, data_, *args, **kwargs)
        return seen["model"]

    monkeypatch.setattr(qat, "train_classifier", spy)
    recipe = {"name": "flagship-qat", "steps": [
        {"type": "trim_vocab"},
        {"type": "distil", "student": "cut", "num_layers": 2, "mode": "white_box", "max_steps": 2, "batch_size": 8},
        {"type": "prune", "method": "structured", "ffn_keep": 0.5, "heads_keep": 0.5, "scope": "local",
         "importance_samples": 16, "max_steps": 2, "batch_size": 8},
        {"type": "qat", "num_samples": 16, "max_steps": 2, "batch_size": 8, "learning_rate": 1e-4}]}
    out = tmp_path / "flagship-qat"
    result = apply_recipe(varied_teacher_dir, recipe, small_data, out, measure_memory=False, progress=False)

    assert [s["type"] for s in result.steps] == ["trim_vocab", "distil", "prune", "qat"]
    teacher_config = load_model(varied_teacher_dir).config
    heads = seen["input_heads"]  # QAT trained the pruned student, not a fresh copy of the teacher
    assert heads is not None and len(heads) == 2 and sum(heads) < 2 * teacher_config.num_attention_heads
    fq_ops, int8_weights = _ir_facts(out / "openvino_model.xml")
    assert fq_ops > 0 and int8_weights > 0
    tok = load_tokenizer(out)
    assert len(tok) < len(load_tokenizer(varied_teacher_dir))  # the trimmed vocabulary travels with the model
    reloaded = OVModelForSequenceClassification.from_pretrained(out)  # plain optimum-intel, no package code
    texts = data.texts("test")[:64]
    ir, trained = predict_logits(reloaded, tok, texts), predict_logits(seen["model"], tok, texts)
    assert _correlation(ir, trained) >= 0.99 and _agreement(ir, trained) >= 0.9


@pytest.mark.slow
def test_shipped_bengali_accurate_ends_in_qat_run_with_length_buckets(varied_teacher_dir, small_data, data,
                                                                      tmp_path, shortened_recipe):
    """The shipped ``bengali-accurate`` (shortened): trim, white-box distil, then QAT with static-shape length
    buckets. The folder holds int8 ops, loads in this package as the bucketed runtime, and the buckets compute
    what plain optimum-intel computes on the same IR with dynamic shapes."""
    from optimum.intel import OVModelForSequenceClassification

    from optimum_bengali.formats.openvino_static import StaticLengthsModel

    shipped = load_recipe("bengali-accurate")
    assert [s.type_name for s in shipped.steps] == ["trim_vocab", "distil", "qat"]
    out = tmp_path / "accurate"
    result = apply_recipe(varied_teacher_dir, shortened_recipe("bengali-accurate"), small_data, out,
                          measure_memory=False, progress=False)
    assert result.metrics["runtime"]["static_lengths"] == [16, 32, 48, 64, 96, 128]
    fq_ops, int8_weights = _ir_facts(out / "openvino_model.xml")
    assert fq_ops > 0 and int8_weights > 0
    model, tok = load_model(out), load_tokenizer(out)
    assert isinstance(model, StaticLengthsModel)
    texts = data.texts("test")[:24]
    bucketed = predict_logits(model, tok, texts, batch_size=4)
    assert model.compiled_shapes()  # the buckets ran
    plain = predict_logits(OVModelForSequenceClassification.from_pretrained(out), tok, texts, batch_size=4)
    assert _correlation(bucketed, plain) >= 0.99 and _agreement(bucketed, plain) >= 0.9
