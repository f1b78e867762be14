import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))


def test_quick_benchmark_writes_table_and_plots(bemoc_dir, tmp_path):
    import run

    out = tmp_path / "bench"
    recipes = "quant-dynamic-int8,distil-6l-prune-structured-quant-static"
    assert run.main(["--quick", "--data", str(bemoc_dir), "--recipes", recipes, "--output", str(out),
                     "--no-memory"]) == 0
    results = json.loads((out / "results.json").read_text())
    names = [r["recipe"] for r in results["rows"]]
    assert names == ["teacher", "quant-dynamic-int8", "distil-6l-prune-structured-quant-static"]
    teacher = results["rows"][0]
    assert teacher["speedup_bs1"] == 1.0 and teacher["disk_ratio"] == 1.0
    for r in results["rows"][1:]:
        assert r["p50_ms_bs1"] > 0 and r["speedup_bs1"] > 0 and 0 <= r["macro_f1"] <= 1
    distilled = results["rows"][2]
    assert distilled["parameters"] < teacher["parameters"]
    assert results["machine"]["cores"] and results["machine"]["versions"]["torch"]
    assert (out / "pareto.png").stat().st_size > 1000 and (out / "size.png").stat().st_size > 1000
    assert "| quant-dynamic-int8 |" in (out / "results.md").read_text()
    # resumable: a second run reuses rows instead of recomputing them
    before = (out / "rows" / "quant-dynamic-int8.json").stat().st_mtime
    assert run.main(["--quick", "--data", str(bemoc_dir), "--recipes", "quant-dynamic-int8", "--output", str(out),
                     "--no-memory"]) == 0
    assert (out / "rows" / "quant-dynamic-int8.json").stat().st_mtime == before
    # --keep-models, then --remeasure: the kept model is measured again in the new run, not retrained
    args = ["--quick", "--data", str(bemoc_dir), "--recipes", "quant-static-int8", "--output", str(out),
            "--no-memory", "--keep-models"]
    assert run.main(args) == 0 and (out / "models" / "quant-static-int8" / "openvino_model.xml").is_file()
    first = json.loads((out / "rows" / "quant-static-int8.json").read_text())
    (out / "rows" / "quant-static-int8.json").write_text(json.dumps({**first, "run": "earlier"}))
    assert run.main(args + ["--remeasure"]) == 0
    again = json.loads((out / "rows" / "quant-static-int8.json").read_text())
    assert again["run"] != "earlier" and again["seconds"] == first["seconds"]
    assert again["parameters"] == first["parameters"] and again["macro_f1"] == first["macro_f1"]
    assert "Every row measured in run" in (out / "results.md").read_text()
