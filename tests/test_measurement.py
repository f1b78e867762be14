"""The measurement method: steady state vs first call, metrics over every class, runtime settings."""

import time

import numpy as np
import pytest
import torch

from optimum_bengali.evaluation import TIMED_PASSES


class _Output:
    def __init__(self, logits):
        self.logits = logits


class ShapeCompilingModel:
    """Like OpenVINO with dynamic shapes: the first call of every new input shape is slow (kernels are
    built), later calls of a known shape are fast."""

    def __init__(self, first_call_s=0.03, call_s=0.0005):
        self.first_call_s, self.call_s, self.seen = first_call_s, call_s, set()

    def __call__(self, **enc):
        shape = tuple(enc["input_ids"].shape)
        time.sleep(self.first_call_s if shape not in self.seen else self.call_s)
        self.seen.add(shape)
        return _Output(torch.zeros(shape[0], 6))


def test_first_calls_do_not_leak_into_steady_state(data, tiny_teacher):
    from optimum_bengali.evaluation import measure_latency

    _, tokenizer = tiny_teacher
    texts = data.texts("test")[:40]
    lat = measure_latency(ShapeCompilingModel(), tokenizer, texts, batch_size=1, max_batches=40)
    # most of the 40 sentences have a length not seen before: a method that times first calls would report
    # a p50 near 30 ms; the steady state is the fast call
    assert lat["first_call_shapes"] >= 10
    assert lat["steady_p50_ms"] < 5 and lat["steady_p95_ms"] < 10
    assert lat["first_call_mean_ms"] > 25
    assert lat["end_to_end_p50_ms"] >= lat["steady_p50_ms"]
    assert lat["timed_passes"] == TIMED_PASSES and lat["batches"] == 40


class OnePassDisturbedModel:
    """Every call takes 2 ms, except during one timed pass, when another process takes the cores (12 ms)."""

    def __init__(self, n_batches, disturbed_pass=2):
        self.calls, self.lo, self.hi = 0, n_batches * disturbed_pass, n_batches * (disturbed_pass + 1)

    def __call__(self, **enc):
        self.calls += 1
        time.sleep(0.012 if self.lo <= self.calls - 1 < self.hi else 0.002)
        return _Output(torch.zeros(enc["input_ids"].shape[0], 6))


def test_noise_is_told_apart_from_length(data, tiny_teacher):
    from optimum_bengali.evaluation import measure_latency

    texts = data.texts("test")[:12]
    steady = measure_latency(OnePassDisturbedModel(12, disturbed_pass=99), tiny_teacher[1], texts, max_batches=12)
    disturbed = measure_latency(OnePassDisturbedModel(12), tiny_teacher[1], texts, max_batches=12)
    # pass 0 is the untimed one, so pass 2 is the second timed pass: its calls are 6x their batch's median
    assert steady["steady_noise_p95"] < 2.0
    assert disturbed["steady_noise_p95"] > 3.0


def test_steady_state_needs_two_passes(data, tiny_teacher):
    from optimum_bengali.evaluation import measure_latency

    with pytest.raises(ValueError, match="timed_passes"):
        measure_latency(ShapeCompilingModel(), tiny_teacher[1], data.texts("test")[:4], timed_passes=1)


def test_macro_f1_averages_over_every_class():
    from optimum_bengali.evaluation import classification_metrics

    gold, pred = [0, 0, 1, 1], [0, 0, 1, 1]
    assert classification_metrics(gold, pred)["macro_f1"] == 1.0
    # six classes, two seen: the four unseen ones count (F1 0), so splits and models compare on one footing
    assert classification_metrics(gold, pred, num_labels=6)["macro_f1"] == pytest.approx(2 / 6)


def test_runtime_settings_are_read_back(tiny_teacher_dir):
    from optimum_bengali import load_model
    from optimum_bengali.runtime import describe, runtime_settings, set_threads

    before = torch.get_num_threads()
    try:
        assert set_threads(1) == 1
        settings = runtime_settings(load_model(tiny_teacher_dir))
        assert settings["engine"] == "pytorch" and settings["threads"] == 1 and settings["precision"] == "float32"
        assert describe(settings).startswith("pytorch float32, 1 threads")
        from optimum_bengali.formats.torch_int8 import quantize_linear_int8

        int8 = runtime_settings(quantize_linear_int8(load_model(tiny_teacher_dir)))
        assert int8["precision"] == "int8 dynamic Linear (torch.ao), float32 rest"
    finally:
        set_threads(before)


@pytest.mark.slow
def test_apply_recipe_threads_reach_pytorch_and_openvino_alike(tiny_teacher_dir, small_data, tmp_path):
    """``threads=`` from Python sets what ``--threads`` sets: the same count for the PyTorch baseline and the
    OpenVINO result (without it each runtime would pick its own)."""
    from optimum_bengali import apply_recipe
    from optimum_bengali.runtime import set_threads

    before = torch.get_num_threads()
    try:
        set_threads(2)
        result = apply_recipe(tiny_teacher_dir, {"name": "q", "steps": [{"type": "quantize", "num_samples": 8}]},
                              small_data, tmp_path / "q", measure_memory=False, progress=False,
                              max_latency_batches=5, threads=1)
        assert result.baseline["runtime"]["engine"] == "pytorch" and result.baseline["runtime"]["threads"] == 1
        assert result.metrics["runtime"]["engine"] == "openvino" and result.metrics["runtime"]["threads"] == 1
    finally:
        set_threads(before)


@pytest.mark.slow
def test_openvino_export_is_fp32_and_records_its_precision(tiny_teacher_dir, small_data, data, tmp_path):
    import json

    from optimum_bengali import apply_recipe
    from optimum_bengali.evaluation import predict_logits
    from optimum_bengali import load_model, load_tokenizer

    out = tmp_path / "ov"
    result = apply_recipe(tiny_teacher_dir, "openvino-export", small_data, out, measure_memory=False,
                          progress=False)
    assert json.loads((out / "openvino_runtime.json").read_text()) == {"INFERENCE_PRECISION_HINT": "f32"}
    runtime = result.metrics["runtime"]
    assert runtime["engine"] == "openvino" and runtime["precision"] == "f32"
    assert runtime["performance_hint"] == "LATENCY" and runtime["streams"] >= 1
    texts = data.texts("test")[:32]
    ov = predict_logits(load_model(out), load_tokenizer(out), texts)
    ref = predict_logits(load_model(tiny_teacher_dir), load_tokenizer(tiny_teacher_dir), texts)
    np.testing.assert_allclose(ov, ref, atol=1e-4)  # the same FP32 model, another runtime
    # weights stay FP32: the IR is about as large as the safetensors file
    assert result.metrics["weight_bytes"] > 0.9 * result.baseline["weight_bytes"]
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "ov_config={'INFERENCE_PRECISION_HINT': 'f32'}" in card


@pytest.mark.slow
def test_openvino_export_with_static_lengths_keeps_fp32_and_caps_compiled_copies(varied_teacher_dir, small_data,
                                                                                data, tmp_path):
    import json

    import pytest

    from optimum_bengali import apply_recipe, load_model, load_recipe, load_tokenizer
    from optimum_bengali.data import load_data
    from optimum_bengali.evaluation import predict_logits
    from optimum_bengali.formats.openvino_static import StaticLengthsModel

    recipe = {"name": "ov-static", "steps": [{"type": "export", "static_lengths": [64, 16, 32]}]}
    out = tmp_path / "ovs"
    result = apply_recipe(varied_teacher_dir, recipe, small_data, out, measure_memory=False, measure_baseline=False,
                          progress=False)
    assert json.loads((out / "openvino_runtime.json").read_text()) == {
        "INFERENCE_PRECISION_HINT": "f32", "static_lengths": [16, 32, 64]}
    assert result.metrics["runtime"]["static_lengths"] == [16, 32, 64]
    model = load_model(out)
    assert isinstance(model, StaticLengthsModel)
    tok = load_tokenizer(out)
    texts = [t for t in data.texts("test")[:64] if len(tok(t)["input_ids"]) <= 64][:24]  # within the buckets
    ref = predict_logits(load_model(varied_teacher_dir), load_tokenizer(varied_teacher_dir), texts, batch_size=4)
    got = predict_logits(model, tok, texts, batch_size=4)
    assert model.compiled_shapes() and {b for b, _ in model.compiled_shapes()} == {4}  # the buckets ran
    np.testing.assert_allclose(got, ref, atol=1e-5)  # padded to a bucket, masked: the unpadded logits
    # at most max_shapes compiled copies are kept, least recently used dropped first
    capped = StaticLengthsModel(model._inner, [16, 32, 64], max_shapes=2)
    tok = load_tokenizer(out)
    for batch in ([texts[0]], texts[:2], texts[:3], [texts[0]]):
        capped(**tok(batch, padding="max_length", max_length=16, truncation=True, return_tensors="pt"))
    assert capped.compiled_shapes() == [(1, 16), (3, 16)]
    with pytest.raises(ValueError, match="positive"):
        load_recipe({"name": "x", "steps": [{"type": "export", "static_lengths": [-4]}]})
    # auto: the lengths follow the training split's token counts, and every training sentence fits one
    auto = {"name": "ov-auto", "steps": [{"type": "export", "static_lengths": "auto", "max_length": 64}]}
    result = apply_recipe(varied_teacher_dir, auto, small_data, tmp_path / "ova", measure_memory=False,
                          measure_baseline=False, progress=False)
    lengths = result.metrics["runtime"]["static_lengths"]
    train = load_data(small_data).texts("train")
    counts = [len(x) for x in tok(train, truncation=True, max_length=64)["input_ids"]]
    assert lengths == sorted(lengths) and all(n % 8 == 0 or n == 64 for n in lengths) and len(lengths) >= 2
    assert lengths[-1] >= max(counts) and lengths[-1] <= 64
    assert json.loads((tmp_path / "ova" / "openvino_runtime.json").read_text())["static_lengths"] == lengths


def test_lengths_from_counts_rounds_quantiles_up_and_covers_the_longest():
    import pytest

    from optimum_bengali.export.static_lengths import lengths_from_counts

    counts = list(range(1, 101))  # quartiles 25.75 / 50.5 / 75.25, 90th 90.1, 99th 99.01, longest 100
    assert lengths_from_counts(counts, max_length=128) == [32, 56, 80, 96, 104]
    assert lengths_from_counts(counts, max_length=64) == [32, 56, 64]
    assert lengths_from_counts([7] * 10, max_length=128) == [8]
    with pytest.raises(ValueError, match="empty"):
        lengths_from_counts([], max_length=128)
    from optimum_bengali.formats.openvino_static import StaticLengthsModel

    with pytest.raises(ValueError, match="resolve 'auto' first"):
        StaticLengthsModel(object(), "auto")


def test_macro_f1_difference_ci_is_paired_and_reproducible():
    import pytest

    from optimum_bengali.evaluation import classification_metrics, macro_f1_difference_ci

    rng = np.random.default_rng(3)
    labels = rng.integers(0, 4, 400)
    good = np.where(rng.random(400) < 0.8, labels, rng.integers(0, 4, 400))
    worse = np.where(rng.random(400) < 0.9, good, rng.integers(0, 4, 400))  # good with 10% of it re-drawn
    assert macro_f1_difference_ci(labels, good, good) == (0.0, 0.0)
    lo, hi = macro_f1_difference_ci(labels, worse, good, num_labels=4)
    observed = 100 * (classification_metrics(labels, worse, 4)["macro_f1"] - classification_metrics(labels, good, 4)["macro_f1"])
    assert lo < observed < hi and hi - lo < 10
    assert macro_f1_difference_ci(labels, worse, good, num_labels=4) == (lo, hi)  # seeded
    wide = macro_f1_difference_ci(labels, worse, good, num_labels=4, level=0.99)
    assert wide[0] <= lo and wide[1] >= hi
    with pytest.raises(ValueError, match="equal"):
        macro_f1_difference_ci(labels, good[:10], good)
