import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))


@pytest.mark.slow
def test_quick_benchmark_writes_table_and_plots(bemoc_dir, tmp_path):
    import run

    from optimum_bengali.runtime import openvino_cpu_capabilities

    out = tmp_path / "bench"
    base = ["--quick", "--data", str(bemoc_dir), "--output", str(out), "--no-memory", "--threads", "1"]
    assert run.main(base + ["--recipes", "distil-6l-prune-structured-quant-static"]) == 0
    results = json.loads((out / "results.json").read_text())
    rows = {r["recipe"]: r for r in results["rows"]}
    has_bf16 = "BF16" in openvino_cpu_capabilities()
    # the peers come first, measured in the same run as the teacher and the recipe asked for
    peers = ["openvino-export"] + (["openvino-export-bf16"] if has_bf16 else []) + [
        "quant-static-int8", "quant-dynamic-int8"]
    assert list(rows) == ["teacher", *peers, "distil-6l-prune-structured-quant-static"]
    teacher = rows["teacher"]
    assert teacher["speedup_bs1"] == 1.0 and teacher["disk_ratio"] == 1.0
    for r in results["rows"]:
        assert r["steady_p50_ms_bs1"] > 0 and r["speedup_bs1"] > 0 and 0 <= r["macro_f1"] <= 1
        assert r["first_call_mean_ms_bs1"] > 0 and r["end_to_end_p50_ms_bs1"] > 0
        assert r["teacher_fingerprint"] == results["teacher_fingerprint"]
        # runtime settings read back from the runtime, one thread count for both engines
        assert r["runtime_settings"]["threads"] == 1 and r["runtime_settings"]["cpu"]
    assert rows["teacher"]["runtime_settings"]["engine"] == "pytorch"
    ov = rows["openvino-export"]["runtime_settings"]
    assert ov["engine"] == "openvino" and ov["precision"] == "f32" and ov["streams"] >= 1
    assert rows["quant-static-int8"]["runtime_settings"]["engine"] == "openvino"
    assert rows["distil-6l-prune-structured-quant-static"]["parameters"] < teacher["parameters"]
    # a recipe's row keeps what each step chose (student layers, pruned sizes, ...), as its report has it
    steps = rows["distil-6l-prune-structured-quant-static"]["steps"]
    assert [s["type"] for s in steps] == ["distil", "prune", "quantize"]
    assert steps[0]["student_layers"] == 6 and steps[0]["teacher_layers"] == 12
    assert results["machine"]["cores"] and results["machine"]["versions"]["torch"]
    assert (out / "pareto.png").stat().st_size > 1000 and (out / "size.png").stat().st_size > 1000
    md = (out / "results.md").read_text()
    assert "| quant-dynamic-int8 |" in md and "steady state" in md and "openvino f32, 1 threads" in md
    assert f"Machine: {results['machine']['cpu']}, " in md and "{" not in md  # the notes are filled in
    assert "| recipe min |" in md
    # rows were timed in this run, so the teacher is timed again at its end and the note says how far it moved
    again = results["teacher_timed_again"]
    assert again["steady_p50_ms_bs1"] > 0 and again["steady_p50_ms_bs8"] > 0
    assert f"batch 1 {again['steady_p50_ms_bs1']:.2f} ms (first {teacher['steady_p50_ms_bs1']:.2f} ms)" in md
    assert ("No OpenVINO bf16 row" in md) != has_bf16
    # every row measured here has a paired-bootstrap interval of its macro-F1 change around the change itself
    assert "ΔF1 95% CI" in md and "paired bootstrap" in md
    assert rows["teacher"]["macro_f1_change_ci95"] == [0.0, 0.0]
    for r in results["rows"]:
        lo, hi = r["macro_f1_change_ci95"]
        assert lo <= hi and "predictions" not in r  # predictions stay in rows/<recipe>.json only
    kept = json.loads((out / "rows" / "quant-static-int8.json").read_text())
    assert len(kept["predictions"]) == results["n_test"]
    # every row carries validation quality (what choices are made by) beside the test figures
    from optimum_bengali import load_model, load_tokenizer
    from optimum_bengali.data import load_data
    from optimum_bengali.evaluation import classification_metrics, predict_logits

    val = load_data(bemoc_dir)
    assert results["n_validation"] == len(val.texts("validation")) and "val macro-F1" in md
    assert all(0 <= r["val_macro_f1"] <= 1 and 0 <= r["val_accuracy"] <= 1 for r in results["rows"])
    kept_teacher = out / "models" / "teacher"
    predicted = predict_logits(load_model(kept_teacher), load_tokenizer(kept_teacher),
                               val.texts("validation")).argmax(-1)
    expected = classification_metrics(val.labels("validation"), predicted, num_labels=6)
    assert teacher["val_macro_f1"] == pytest.approx(expected["macro_f1"], abs=1e-9)
    assert teacher["val_accuracy"] == pytest.approx(expected["accuracy"], abs=1e-9)

    # resumable: a second run reuses rows instead of recomputing them
    row_file = out / "rows" / "quant-dynamic-int8.json"
    before = row_file.stat().st_mtime
    assert run.main(base + ["--recipes", "quant-dynamic-int8", "--no-peers"]) == 0
    assert row_file.stat().st_mtime == before
    assert "teacher_timed_again" not in json.loads((out / "results.json").read_text())  # nothing timed after it

    # a changed teacher invalidates the rows measured against the old one
    import torch
    from safetensors.torch import load_file, save_file

    weights = out / "teacher" / "model.safetensors"
    tensors = load_file(str(weights))
    name = next(k for k in tensors if k.endswith("classifier.weight"))
    tensors[name] = tensors[name] + torch.randn_like(tensors[name])
    save_file(tensors, str(weights), metadata={"format": "pt"})
    assert run.main(base + ["--recipes", "quant-dynamic-int8", "--no-peers"]) == 0
    redone = json.loads(row_file.read_text())
    assert redone["teacher_fingerprint"] != teacher["teacher_fingerprint"]
    assert redone["teacher_fingerprint"] == json.loads((out / "results.json").read_text())["teacher_fingerprint"]

    # --keep-models, then --remeasure: the kept model is measured again in the new run, not retrained
    args = base + ["--recipes", "quant-static-int8", "--no-peers", "--keep-models"]
    assert run.main(args + ["--force"]) == 0
    assert (out / "models" / "quant-static-int8" / "openvino_model.xml").is_file()
    first = json.loads((out / "rows" / "quant-static-int8.json").read_text())
    (out / "rows" / "quant-static-int8.json").write_text(json.dumps({**first, "run": "earlier"}))
    assert run.main(args + ["--remeasure"]) == 0
    again = json.loads((out / "rows" / "quant-static-int8.json").read_text())
    assert again["run"] != "earlier" and again["seconds"] == first["seconds"]
    assert again["steps"] == first["steps"] and again["steps"][0]["type"] == "quantize"  # the record stays
    assert again["parameters"] == first["parameters"] and again["macro_f1"] == first["macro_f1"]
    assert "Every row measured in run" in (out / "results.md").read_text()

    # START+RECIPE: a recipe continued from another recipe's kept model, measured against the teacher
    (tmp_path / "cut-2l.yaml").write_text(
        "name: cut-2l\nsteps:\n- type: distil\n  student: cut\n  num_layers: 2\n  mode: black_box\n")
    (tmp_path / "ffn-half.yaml").write_text(
        "name: ffn-half\nsteps:\n- type: prune\n  method: structured\n  ffn_keep: 0.5\n"
        "  importance: magnitude\n")
    continued = f"cut-2l+{tmp_path / 'ffn-half.yaml'}"
    with pytest.raises(SystemExit, match="--keep-models first"):
        run.main(base + ["--no-peers", "--recipes", continued])
    assert run.main(base + ["--no-peers", "--keep-models", "--recipes", f"{tmp_path / 'cut-2l.yaml'},{continued}"]) == 0
    rows = {r["recipe"]: r for r in json.loads((out / "results.json").read_text())["rows"]}
    start, cont = rows["cut-2l"], rows["cut-2l+ffn-half"]
    assert cont["start_from"] == "cut-2l" and cont["teacher_fingerprint"] == start["teacher_fingerprint"]
    assert [s["type"] for s in cont["steps"]] == ["distil", "prune"] and cont["seconds"] >= start["seconds"]
    start_config = json.loads((out / "models" / "cut-2l" / "config.json").read_text())
    config = json.loads((out / "models" / "cut-2l+ffn-half" / "config.json").read_text())
    assert config["num_hidden_layers"] == 2  # pruned from the 2-layer student, not from the teacher
    assert config["intermediate_size"] == start_config["intermediate_size"] // 2
    cont_file = out / "rows" / "cut-2l+ffn-half.json"
    before = cont_file.stat().st_mtime
    assert run.main(base + ["--no-peers", "--recipes", continued]) == 0
    assert cont_file.stat().st_mtime == before  # reused while the starting model is unchanged
    made = json.loads(cont_file.read_text())
    assert run.main(base + ["--no-peers", "--keep-models", "--remeasure", "--recipes", continued]) == 0
    remeasured = json.loads(cont_file.read_text())
    for key in ("start_from", "start_fingerprint", "recipe_steps", "steps", "seconds"):
        assert remeasured[key] == made[key]  # how it was made stays with a row measured again
    before = cont_file.stat().st_mtime
    assert run.main(base + ["--no-peers", "--recipes", continued]) == 0
    assert cont_file.stat().st_mtime == before  # so the next run still reuses it
    # a changed setting of the recipe makes its row stale: run again, not reused
    (tmp_path / "ffn-half.yaml").write_text((tmp_path / "ffn-half.yaml").read_text().replace("0.5", "0.25"))
    assert run.main(base + ["--no-peers", "--keep-models", "--recipes", continued]) == 0
    config = json.loads((out / "models" / "cut-2l+ffn-half" / "config.json").read_text())
    assert config["intermediate_size"] == start_config["intermediate_size"] // 4
    assert json.loads(cont_file.read_text())["recipe_steps"][-1]["ffn_keep"] == 0.25
    # rows from before rows recorded their settings (start and continuation) are compared by their own step
    # types: still reused
    for f in (out / "rows" / "cut-2l.json", cont_file):
        f.write_text(json.dumps({k: v for k, v in json.loads(f.read_text()).items() if k != "recipe_steps"}))
    before = cont_file.stat().st_mtime
    assert run.main(base + ["--no-peers", "--recipes", continued]) == 0
    assert cont_file.stat().st_mtime == before
    with pytest.raises(SystemExit, match="PyTorch"):
        run.main(base + ["--no-peers", "--recipes", "quant-static-int8+quant-dynamic-int8"])

    # the runtime options script measures every option on the kept OpenVINO model
    import runtime_options

    ro = tmp_path / "runtime"
    model = out / "models" / "quant-static-int8"
    assert runtime_options.main([str(model), "--data", str(bemoc_dir), "--output", str(ro), "--max-batches", "2",
                                 "--rounds", "1", "--batch-sizes", "1,2"]) == 0
    measured = json.loads((ro / "runtime_options.json").read_text())
    assert [r["option"] for r in measured["rows"]] == list(runtime_options.OPTIONS)
    assert all(r["steady_p50_ms_bs1"] > 0 and r["steady_p50_ms_bs2"] > 0 for r in measured["rows"])
    assert "| static lengths 16/32/48/64/96/128 |" in (ro / "runtime_options.md").read_text()
    assert "real validation sentences" in measured["method"]  # what the options are chosen on, said as such


@pytest.fixture
def tiny_ov_folder(tiny_teacher_dir, tmp_path):
    """The tiny teacher exported to an OpenVINO folder (IR and tokenizer), as the export step leaves it."""
    from optimum.intel import OVModelForSequenceClassification

    from optimum_bengali.modeling import load_tokenizer

    folder = tmp_path / "ov"
    OVModelForSequenceClassification.from_pretrained(tiny_teacher_dir, export=True, compile=False).save_pretrained(folder)
    load_tokenizer(tiny_teacher_dir).save_pretrained(folder)
    return folder


def test_trial_recipes_are_found_by_name():
    import run

    trial = "trim-distil-6l-white-box-long"
    assert run.recipe_source(trial) == str(ROOT / "benchmarks" / "recipes" / f"{trial}.yaml")
    start, rest = run.split_start(f"{trial}+quant-static-int8-static-lengths")  # a trial continued by name
    assert start == trial and run.recipe_source(rest).endswith("quant-static-int8-static-lengths.yaml")
    assert run.recipe_source("bengali-fast") == "bengali-fast"  # a shipped name stays the shipped recipe
    assert run.recipe_source("no-such-recipe") == "no-such-recipe"  # left to load_recipe's error


@pytest.mark.slow
def test_profile_ops_sums_the_counters_at_the_shape_asked_for(tiny_ov_folder, tiny_teacher_dir, bemoc_dir, tmp_path):
    import profile_ops

    folder = tiny_ov_folder
    out = tmp_path / "profile"
    assert profile_ops.main([str(folder), "--data", str(bemoc_dir), "--output", str(out), "--batch-size", "2",
                             "--length", "16", "--threads", "1", "--iterations", "2", "--warmup", "1",
                             "--top", "2"]) == 0
    prof = json.loads((out / "profile_ops.json").read_text())
    assert {tuple(shape) for shape in prof["input_shapes"].values()} == {(2, 16)}  # reshaped as asked
    assert prof["split"] == "validation"
    assert any(r["node_type"] == "FullyConnected" for r in prof["rows"])  # the MatMuls
    assert sum(r["share"] for r in prof["rows"]) == pytest.approx(1.0)
    assert sum(r["ms_per_call"] for r in prof["rows"]) == pytest.approx(prof["ops_ms_per_call"])
    assert 0 < prof["ops_ms_per_call"] and 0 < prof["wall_ms_per_call"]
    table = [line for line in (out / "profile_ops.md").read_text().splitlines() if line.startswith("|")]
    assert len(table) == 2 + 2 + 1 and "other types" in table[-1]  # header, 2 op types, the rest summed
    with pytest.raises(SystemExit, match="no openvino_model.xml"):
        profile_ops.main([str(tiny_teacher_dir), "--data", str(bemoc_dir)])


@pytest.mark.slow
def test_runtime_options_f32_rows_run_in_f32(tiny_ov_folder, bemoc_dir, tmp_path):
    import runtime_options

    out = tmp_path / "runtime"
    assert runtime_options.main([str(tiny_ov_folder), "--data", str(bemoc_dir), "--output", str(out),
                                 "--max-batches", "1", "--rounds", "1", "--batch-sizes", "1"]) == 0
    rows = {r["option"]: r for r in json.loads((out / "runtime_options.json").read_text())["rows"]}
    f32 = [name for name, opt in runtime_options.OPTIONS.items() if opt.get("precision") == "f32"]
    assert f32 and all(rows[name]["inference_precision"] == "f32" for name in f32)  # read back from the runtime
    assert all(r["inference_precision"] in ("f32", "bf16", "f16") for r in rows.values())
    assert "| static lengths 16/32/48/64/96/128, f32 | f32 |" in (out / "runtime_options.md").read_text()


def test_compare_scores_two_rows_on_the_same_test_labels(small_data, tmp_path, capsys):
    import compare
    from optimum_bengali.data import load_data
    from optimum_bengali.evaluation import classification_metrics

    labels = load_data(small_data).labels("test")
    wrong = [(y + 1) % 6 if i % 4 == 0 else y for i, y in enumerate(labels)]  # every fourth sentence wrong

    def write(folder, recipe, predictions, val_macro_f1):
        m = classification_metrics(labels, predictions, num_labels=6)
        (folder / "rows").mkdir(parents=True, exist_ok=True)
        (folder / "rows" / f"{recipe}.json").write_text(json.dumps(
            {"recipe": recipe, "run": str(folder.name), "predictions": predictions, "accuracy": m["accuracy"],
             "macro_f1": m["macro_f1"], "val_macro_f1": val_macro_f1}))
        return m["macro_f1"]

    f1_wrong = write(tmp_path / "a", "student", wrong, 0.40)
    write(tmp_path / "b", "teacher", list(labels), 0.50)  # another run: quality only
    assert compare.main(["--data", str(small_data), "--json", str(tmp_path / "a" / "student"),
                         str(tmp_path / "b" / "teacher")]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    assert result["validation_change_points"] == pytest.approx(-10.0)
    assert result["test_change_points"] == pytest.approx(100 * (f1_wrong - 1.0))
    lo, hi = result["test_change_ci95"]
    assert lo <= result["test_change_points"] <= hi < 0  # a perfect reference: every resample loses
    assert result["row_run"] == "a" and result["reference_run"] == "b"
    # a row whose predictions do not reproduce its recorded accuracy on these labels is refused
    shifted = [(y + 1) % 6 for y in labels]
    row = json.loads((tmp_path / "b" / "rows" / "teacher.json").read_text())
    (tmp_path / "b" / "rows" / "teacher.json").write_text(json.dumps({**row, "predictions": shifted}))
    with pytest.raises(SystemExit, match="not its recorded"):
        compare.main(["--data", str(small_data), str(tmp_path / "a" / "student"), str(tmp_path / "b" / "teacher")])
    with pytest.raises(SystemExit, match="no .*rows"):
        compare.main(["--data", str(small_data), str(tmp_path / "a" / "missing"), str(tmp_path / "b" / "teacher")])
