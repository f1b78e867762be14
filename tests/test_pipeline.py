import json

import pytest
import torch
import yaml
from huggingface_hub import ModelCard

from optimum_bengali import ModelError, apply_recipe


@pytest.mark.slow
def test_output_folder_has_card_report_and_recipe(tiny_teacher_dir, small_data, tmp_path):
    out = tmp_path / "dyn"
    result = apply_recipe(tiny_teacher_dir, "quant-dynamic-int8", small_data, out, progress=False)
    card = (out / "README.md").read_text(encoding="utf-8")
    front = yaml.safe_load(card.split("---")[1])
    assert front["language"] == ["bn"] and front["pipeline_tag"] == "text-classification"
    assert "optimum-bengali" in front["tags"]
    assert front["model-index"][0]["name"] == "dyn" and "\n# dyn\n" in card
    index = front["model-index"][0]["results"][0]
    metric_values = [m["value"] for m in index["metrics"]]
    assert round(result.metrics["macro_f1"], 4) in metric_values
    # the Hub's model index needs the data set; the card names sources by name, never by a local path
    assert index["dataset"]["name"] == small_data.name and index["dataset"]["split"] == "test"
    assert str(tmp_path) not in card and str(tiny_teacher_dir) not in card
    assert f"compressed from `{tiny_teacher_dir.name}`" in card and "base_model" not in front
    loaded = ModelCard.load(out / "README.md").data.eval_results  # what the Hub reads
    assert [r.metric_name for r in loaded] == ["accuracy", "macro F1", "weighted F1"]
    assert loaded[1].metric_value == round(result.metrics["macro_f1"], 4)
    m = result.metrics
    for key in ("accuracy", "macro_f1", "weighted_f1", "parameters", "nonzero_parameters", "bytes_on_disk",
                "peak_rss_bytes", "model_memory_bytes", "runtime", "latency_method"):
        assert key in m, key
    for bs in (1, 8):
        lat = m[f"latency_bs{bs}"]
        assert 0 < lat["steady_p50_ms"] <= lat["steady_p95_ms"] and lat["steady_throughput"] > 0
        assert lat["first_call_mean_ms"] > 0 and lat["first_call_shapes"] >= 1 and lat["timed_passes"] >= 2
        assert lat["end_to_end_p50_ms"] > 0
    assert m["peak_rss_bytes"] > 50e6
    # the model's own memory excludes the runtime's import floor: far below the whole process's peak
    assert 0 < m["model_memory_bytes"] < m["peak_rss_bytes"] / 2
    assert m["runtime"]["engine"] == "pytorch" and m["runtime"]["threads"] >= 1 and m["runtime"]["cpu"]
    assert "steady-state latency p50 / p95, batch 1" in card and "first call of a new input shape" in card
    assert "speedup_bs1" in m["vs_baseline"]
    assert json.loads((out / "compression_report.json").read_text())["labels"][0] == "anger"
    # validation quality of the result and of the input model, for choosing (test figures only report)
    for measured in (m, result.baseline):
        assert measured["validation"]["n_eval"] == 60 and 0 <= measured["validation"]["macro_f1"] <= 1


def test_existing_output_is_not_overwritten(tiny_teacher_dir, small_data, tmp_path):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="overwrite"):
        apply_recipe(tiny_teacher_dir, "quant-dynamic-int8", small_data, out, progress=False)
    assert (out / "keep.txt").read_text() == "mine"


@pytest.mark.slow
def test_failed_run_leaves_no_half_written_folder(tiny_teacher_dir, small_data, tmp_path, monkeypatch):
    from optimum_bengali.formats.torch_int8 import save_int8
    from optimum_bengali.quantization.step import QuantizeStep

    def boom(step, state):
        save_int8(state.model, state.work_dir / "partial")  # something is already written ...
        raise RuntimeError("interrupted")  # ... when the run fails

    monkeypatch.setattr(QuantizeStep, "apply", boom)
    with pytest.raises(RuntimeError, match="interrupted"):
        apply_recipe(tiny_teacher_dir, "quant-dynamic-int8", small_data, tmp_path / "out", progress=False)
    assert list(tmp_path.iterdir()) == [], "no output and no temporary folders may remain"


@pytest.mark.slow
def test_failure_after_training_keeps_the_model_and_the_old_output(tiny_teacher_dir, small_data, tmp_path,
                                                                   monkeypatch):
    from optimum_bengali import pipeline
    from optimum_bengali import load_model

    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("the earlier result")

    def card_fails(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pipeline, "write_model_card", card_fails)
    with pytest.raises(OSError, match="disk full"):
        apply_recipe(tiny_teacher_dir, "quant-dynamic-int8", small_data, out, overwrite=True, progress=False,
                     measure_memory=False)
    assert (out / "keep.txt").read_text() == "the earlier result", "overwrite=True must not lose the old output"
    kept = tmp_path / "out.unmeasured"
    assert load_model(kept).config.num_labels == 6, "the finished model is kept, whole and loadable"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "out.unmeasured"]


def test_model_that_is_not_a_sequence_classifier(tiny_teacher_dir, small_data, tmp_path):
    from transformers import BertConfig, BertModel

    cfg = BertConfig.from_pretrained(tiny_teacher_dir)
    BertModel(cfg).save_pretrained(tmp_path / "encoder")
    with pytest.raises(ModelError, match="not a sequence classifier"):
        apply_recipe(tmp_path / "encoder", "quant-dynamic-int8", small_data, tmp_path / "o", progress=False)


def _two_label_data(folder, labels):
    import pandas as pd

    frame = pd.DataFrame({"text": ["আমি খুব খুশি", "খুব খারাপ"], "label": labels})
    for s in ("train", "val", "test"):
        frame.to_csv(folder / f"{s}.csv", index=False)
    return folder


def test_data_labels_the_model_does_not_know(tiny_teacher_dir, tmp_path):
    from optimum_bengali import DataError

    data = _two_label_data(tmp_path, ["happy", "sad"])
    with pytest.raises(DataError, match="does not know: happy, sad"):
        apply_recipe(tiny_teacher_dir, "quant-dynamic-int8", data, tmp_path / "o", progress=False)


def test_label_count_mismatch_for_model_without_label_names(tiny_teacher_dir, tmp_path):
    from transformers import BertConfig, BertForSequenceClassification
    from optimum_bengali.modeling import load_tokenizer

    cfg = BertConfig.from_pretrained(tiny_teacher_dir)
    cfg.id2label, cfg.label2id = {i: f"LABEL_{i}" for i in range(6)}, {f"LABEL_{i}": i for i in range(6)}
    BertForSequenceClassification(cfg).save_pretrained(tmp_path / "m")
    load_tokenizer(tiny_teacher_dir).save_pretrained(tmp_path / "m")
    (tmp_path / "d").mkdir()
    data = _two_label_data(tmp_path / "d", ["happy", "sad"])
    with pytest.raises(ModelError, match="6 output labels but the data has 2"):
        apply_recipe(tmp_path / "m", "quant-dynamic-int8", data, tmp_path / "o", progress=False)


def test_leftovers_of_a_killed_run_are_removed_and_a_live_runs_are_not(tiny_teacher_dir, small_data, tmp_path):
    import os
    import subprocess

    dead = subprocess.Popen(["true"])
    dead.wait()
    left = tmp_path / f".out.work-{dead.pid}-abc"
    (left / "checkpoint").mkdir(parents=True)
    (left / "checkpoint" / "weights").write_bytes(b"0" * 1000)
    live = tmp_path / f".out.tmp-{os.getpid()}-xyz"
    live.mkdir()
    apply_recipe(tiny_teacher_dir, "quant-dynamic-int8", small_data, tmp_path / "out", progress=False,
                 measure_memory=False, measure_baseline=False)
    assert not left.exists() and live.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [live.name, "out"]


@pytest.mark.slow
def test_sigterm_ends_a_run_like_ctrl_c(tiny_teacher_dir, small_data, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    recipe = tmp_path / "long.yaml"  # distillation long enough to be inside it when the signal comes
    recipe.write_text(yaml.safe_dump({"name": "long", "steps": [{"type": "distil", "num_layers": 2,
                                                                 "epochs": 50.0}]}), encoding="utf-8")
    out = run_dir / "out"
    proc = subprocess.Popen([sys.executable, "-m", "optimum_bengali.cli", "compress", "--model",
                             str(tiny_teacher_dir), "--recipe", str(recipe), "--data", str(small_data), "--output",
                             str(out), "--no-memory"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not any(p.name.startswith(".out.work-") for p in run_dir.iterdir()):
        time.sleep(0.2)
    time.sleep(3)  # inside the run
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    # "interrupted" (it may follow an unfinished progress bar, and a bar may be redrawn after it at exit)
    assert any(line.rstrip().endswith("interrupted") for line in err.splitlines()) and "Traceback" not in err
    assert list(run_dir.iterdir()) == [], "no output and no temporary folders may remain"


@pytest.mark.slow
def test_labels_follow_the_models_names_not_the_datas_order(tiny_teacher_dir, small_data, tmp_path):
    """A teacher whose labels are in another order than the data's sorted names keeps its own order."""
    import json

    from transformers import AutoModelForSequenceClassification

    from optimum_bengali.data import load_data
    from optimum_bengali.modeling import load_tokenizer

    model = AutoModelForSequenceClassification.from_pretrained(tiny_teacher_dir)
    names = [model.config.id2label[i] for i in range(6)]
    reversed_names = names[::-1]
    model.config.id2label = dict(enumerate(reversed_names))
    model.config.label2id = {n: i for i, n in enumerate(reversed_names)}
    before = {k: v.clone() for k, v in model.state_dict().items()}
    data = load_data(small_data)  # a LabelledData in sorted-name order, not the model's
    assert data.label_names == names
    out = tmp_path / "out"
    apply_recipe(model, "quant-dynamic-int8", data, out, tokenizer=load_tokenizer(tiny_teacher_dir),
                 progress=False, measure_memory=False, measure_baseline=False)
    saved = json.loads((out / "config.json").read_text())
    assert [saved["id2label"][str(i)] for i in range(6)] == reversed_names
    report = json.loads((out / "compression_report.json").read_text())
    assert report["labels"] == reversed_names and "by name" in report["labels_from"]
    # the caller's model object is left untouched
    assert model.config.id2label[0] == reversed_names[0]
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_data_with_other_label_names_than_the_model_lists_both(tiny_teacher_dir, small_data):
    from optimum_bengali import DataError
    from optimum_bengali.data import load_data

    data = load_data(small_data)
    with pytest.raises(DataError, match=r"the data's labels \(anger, .*\) are not the model's \(a, b"):
        data.aligned_to(["a", "b", "c", "d", "e", "f"])


def test_digit_string_labels_sort_as_numbers_and_classlabel_names_are_kept():
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

    from optimum_bengali.data import load_data

    rows = {"text": ["ক", "খ", "গ"], "label": ["10", "2", "1"]}
    dd = DatasetDict({s: Dataset.from_dict(rows) for s in ("train", "validation", "test")})
    data = load_data(dd)
    assert data.label_names == ["1", "2", "10"] and data.labels("train") == [2, 1, 0]
    feats = Features({"text": Value("string"), "label": ClassLabel(names=["sad", "happy"])})
    dd = DatasetDict({s: Dataset.from_dict({"text": ["ক", "খ"], "label": [1, 0]}, features=feats)
                      for s in ("train", "validation", "test")})
    data = load_data(dd)
    assert data.label_names == ["sad", "happy"] and data.labels("test") == [1, 0]
    # mapped by name onto a model that orders them the other way
    assert load_data(dd, label_names=["happy", "sad"]).labels("test") == [0, 1]


def _placeholder_teacher(tiny_teacher_dir, folder):
    """The tiny teacher with its label names replaced by ``LABEL_0..LABEL_5`` (its outputs stay as they are)."""
    import json
    import shutil

    shutil.copytree(tiny_teacher_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    names = [config["id2label"][str(i)] for i in range(6)]
    config["id2label"] = {str(i): f"LABEL_{i}" for i in range(6)}
    config["label2id"] = {f"LABEL_{i}": i for i in range(6)}
    (folder / "config.json").write_text(json.dumps(config))
    return folder, names


def test_placeholder_labels_take_the_order_the_user_gives(tiny_teacher_dir, small_data, tmp_path):
    """Output i gets the i-th given name, whatever the data's own order; each test sentence's gold label is
    mapped to it by name."""
    import json

    teacher, names = _placeholder_teacher(tiny_teacher_dir, tmp_path / "teacher")
    given = [names[i] for i in (3, 0, 5, 1, 4, 2)]
    with pytest.raises(ModelError, match=r"names its outputs only LABEL_0..LABEL_5, so which output is which"):
        apply_recipe(teacher, "quant-dynamic-int8", small_data, tmp_path / "refused", progress=False)
    result = apply_recipe(teacher, "quant-dynamic-int8", small_data, tmp_path / "out", labels=given,
                          progress=False, measure_memory=False, measure_baseline=False)
    saved = json.loads((tmp_path / "out" / "config.json").read_text())
    assert [saved["id2label"][str(i)] for i in range(6)] == given
    report = json.loads((tmp_path / "out" / "compression_report.json").read_text())
    assert report["labels"] == given and "the labels given in output order" in report["labels_from"]
    gold = [given.index(name) for name in pd_labels(small_data / "test.csv")]
    assert len(result.predictions) == len(gold)
    correct = sum(p == g for p, g in zip(result.predictions, gold))
    assert result.metrics["accuracy"] == pytest.approx(correct / len(gold))


def pd_labels(path):
    import pandas as pd

    return list(pd.read_csv(path).label)


@pytest.mark.slow
def test_placeholder_labels_with_integer_data_labels_are_output_i_is_label_i(tiny_teacher_dir, small_data,
                                                                             tmp_path):
    import json

    import pandas as pd

    teacher, names = _placeholder_teacher(tiny_teacher_dir, tmp_path / "teacher")
    data = tmp_path / "ints"
    data.mkdir()
    for split in ("train", "val", "test"):
        df = pd.read_csv(small_data / f"{split}.csv")
        df.assign(label=[names.index(v) for v in df.label]).to_csv(data / f"{split}.csv", index=False)
    apply_recipe(teacher, "quant-dynamic-int8", data, tmp_path / "out", progress=False, measure_memory=False,
                 measure_baseline=False)
    report = json.loads((tmp_path / "out" / "compression_report.json").read_text())
    assert report["labels"] == [str(i) for i in range(6)] and "output i is label i" in report["labels_from"]


def test_labels_given_must_agree_with_a_model_that_names_its_outputs(tiny_teacher_dir, small_data, tmp_path):
    from optimum_bengali.modeling import load_config

    names = [load_config(tiny_teacher_dir).id2label[i] for i in range(6)]
    with pytest.raises(ModelError, match=r"names its outputs anger, .* \(config id2label\) but the labels given"):
        apply_recipe(tiny_teacher_dir, "quant-dynamic-int8", small_data, tmp_path / "o", labels=names[::-1],
                     progress=False)
    with pytest.raises(ModelError, match="name one label twice"):
        apply_recipe(tiny_teacher_dir, "quant-dynamic-int8", small_data, tmp_path / "o", labels=names[:5] + names[:1],
                     progress=False)


def test_compare_by_hand():
    """Speedup is the input model's time over the compressed one's; size ratios likewise; quality in points."""
    from optimum_bengali.pipeline import compare

    base = {"latency_bs1": {"steady_p50_ms": 10.0, "end_to_end_p50_ms": 12.0},
            "latency_bs8": {"steady_p50_ms": 40.0, "end_to_end_p50_ms": 50.0},
            "bytes_on_disk": 400, "weight_bytes": 300, "parameters": 1000,
            "accuracy": 0.5, "macro_f1": 0.4, "weighted_f1": 0.45}
    model = {"latency_bs1": {"steady_p50_ms": 2.0, "end_to_end_p50_ms": 4.0},
             "latency_bs8": {"steady_p50_ms": 5.0, "end_to_end_p50_ms": 10.0},
             "bytes_on_disk": 100, "weight_bytes": 75, "parameters": 500,
             "accuracy": 0.52, "macro_f1": 0.37, "weighted_f1": 0.45}
    out = compare(base, model)
    assert out["speedup_bs1"] == pytest.approx(5.0) and out["speedup_bs8"] == pytest.approx(8.0)
    assert out["end_to_end_speedup_bs1"] == pytest.approx(3.0) and out["end_to_end_speedup_bs8"] == pytest.approx(5.0)
    assert out["bytes_on_disk_ratio"] == pytest.approx(4.0) and out["weight_bytes_ratio"] == pytest.approx(4.0)
    assert out["parameters_ratio"] == pytest.approx(2.0)
    assert out["accuracy_change_points"] == pytest.approx(2.0)
    assert out["macro_f1_change_points"] == pytest.approx(-3.0)
    assert out["weighted_f1_change_points"] == pytest.approx(0.0)
    # a figure only one side has (latency not timed, bytes not counted) gives no ratio
    untimed = {k: v for k, v in model.items() if k not in ("latency_bs8", "weight_bytes")}
    partial = compare({k: v for k, v in base.items() if k != "parameters"}, untimed)
    assert "speedup_bs8" not in partial and "weight_bytes_ratio" not in partial and "parameters_ratio" not in partial
    assert partial["speedup_bs1"] == pytest.approx(5.0) and partial["bytes_on_disk_ratio"] == pytest.approx(4.0)
