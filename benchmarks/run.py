#!/usr/bin/env python
"""Run every recipe on one teacher and measure everything side by side, in one process.

    python benchmarks/run.py --model path/to/finetuned-teacher            # all shipped recipes
    python benchmarks/run.py --from-config bert-base-multilingual-cased-shape --finetune-steps 200 \\
        --recipes quant-static-int8,quant-dynamic-int8                     # mBERT-shaped, offline
    python benchmarks/run.py --quick                                       # tiny teacher, few steps

Writes ``results.json``, ``results.csv``, ``results.md`` and ``pareto.png``/``size.png`` in ``--output``.
A recipe whose row exists already is skipped unless ``--force`` (rows record the run they come from);
with ``--keep-models --remeasure`` its kept model is measured again next to this run's teacher.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "bemoc"


def machine() -> Dict[str, Any]:
    """CPU model, cores and library versions, recorded with the results."""
    import importlib.metadata as md

    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for pkg in ("torch", "transformers", "openvino", "nncf", "optimum-intel", "optimum-bengali"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = None
    import torch

    return {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(), "versions": versions}


def override(recipe: Any, max_steps: Optional[int], epochs: Optional[float], num_samples: Optional[int]) -> Any:
    """A copy of ``recipe`` with training length / calibration size changed (``--quick``, ``--max-steps``)."""
    from optimum_bengali import Recipe

    data = recipe.to_dict()
    for step in data["steps"]:
        if max_steps is not None and "max_steps" in step:
            step["max_steps"] = max_steps
            if step.get("method") == "structured":
                step["importance_samples"] = min(step["importance_samples"], 8 * max_steps)
        if epochs is not None and "epochs" in step:
            step["epochs"] = epochs
        if num_samples is not None and "num_samples" in step:
            step["num_samples"] = num_samples
    return Recipe.from_dict(data, source=recipe.source)


def row_from(name: str, metrics: Dict[str, Any], teacher: Optional[Dict[str, Any]], run_id: str) -> Dict[str, Any]:
    from optimum_bengali.pipeline import compare

    row = {"recipe": name, "run": run_id, "format": metrics.get("format"),
           "accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"], "weighted_f1": metrics["weighted_f1"],
           "p50_ms_bs1": metrics["latency_bs1"]["p50_ms"], "p95_ms_bs1": metrics["latency_bs1"]["p95_ms"],
           "p50_ms_bs8": metrics["latency_bs8"]["p50_ms"], "p95_ms_bs8": metrics["latency_bs8"]["p95_ms"],
           "throughput_bs8": metrics["latency_bs8"]["throughput"], "parameters": metrics.get("parameters"),
           "nonzero_parameters": metrics.get("nonzero_parameters"), "bytes_on_disk": metrics["bytes_on_disk"],
           "weight_bytes": metrics["weight_bytes"], "peak_rss_bytes": metrics.get("peak_rss_bytes")}
    if teacher is not None:
        c = compare(teacher, metrics)
        row.update(speedup_bs1=c.get("speedup_bs1"), speedup_bs8=c.get("speedup_bs8"),
                   disk_ratio=c.get("bytes_on_disk_ratio"), macro_f1_change_points=c["macro_f1_change_points"])
    return row


def write_outputs(out: Path, rows: List[Dict[str, Any]], info: Dict[str, Any]) -> None:
    (out / "results.json").write_text(json.dumps({**info, "rows": rows}, indent=2, ensure_ascii=False))
    keys = list(rows[0])
    with open(out / "results.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    head = ("| recipe | run | format | acc | macro-F1 | ΔF1 (pts) | p50 ms bs1 | p50 ms bs8 | speedup bs1 | params (M) "
            "| non-zero (M) | disk MB | disk ratio | peak RSS MB |")
    lines = [head, "|" + "---|" * 14]
    for r in rows:
        def f(v, fmt):
            return "-" if v is None else format(v, fmt)
        lines.append(
            f"| {r['recipe']} | {r['run']} | {r['format']} | {100 * r['accuracy']:.2f} | {100 * r['macro_f1']:.2f} | "
            f"{f(r.get('macro_f1_change_points'), '+.2f')} | {r['p50_ms_bs1']:.2f} | {r['p50_ms_bs8']:.2f} | "
            f"{f(r.get('speedup_bs1'), '.2f')}x | {f(r['parameters'] and r['parameters'] / 1e6, '.1f')} | "
            f"{f(r['nonzero_parameters'] and r['nonzero_parameters'] / 1e6, '.1f')} | {r['bytes_on_disk'] / 1e6:.1f} | "
            f"{f(r.get('disk_ratio'), '.2f')}x | {f(r['peak_rss_bytes'] and r['peak_rss_bytes'] / 1e6, '.0f')} |")
    m = info["machine"]
    lines += ["", f"Teacher: {info['teacher']}. Data: {info['data']} (test split, {info['n_test']} sentences). "
              f"Machine: {m['cpu']}, {m['cores']} cores, torch {m['versions']['torch']} ({m['torch_threads']} "
              f"threads), OpenVINO {m['versions']['openvino']}. Every row measured in run {info['run']}, next to the "
              "teacher. " if all(r["run"] == info["run"] for r in rows) else
              f"threads), OpenVINO {m['versions']['openvino']}. Teacher measured in run {info['run']}; a row from an "
              "earlier (resumed) run was compared with the teacher as measured in that run. "]
    lines[-1] += "Latency: model call only, real test sentences in order, dynamic padding, after warm-up."
    (out / "results.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    plot(out, rows)


def plot(out: Path, rows: List[Dict[str, Any]]) -> None:
    """macro-F1 vs latency (Pareto front, teacher marked) and size bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 6))
    pts = sorted(rows, key=lambda r: r["p50_ms_bs1"])
    front, best = [], -1.0
    for r in pts:
        if r["macro_f1"] > best:
            front.append(r)
            best = r["macro_f1"]
    for r in rows:
        teacher = r["recipe"] == "teacher"
        ax.scatter(r["p50_ms_bs1"], 100 * r["macro_f1"], marker="*" if teacher else "o", s=200 if teacher else 40,
                   color="crimson" if teacher else ("tab:blue" if r in front else "tab:gray"), zorder=3)
        ax.annotate(r["recipe"], (r["p50_ms_bs1"], 100 * r["macro_f1"]), fontsize=7, xytext=(3, 3),
                    textcoords="offset points")
    ax.plot([r["p50_ms_bs1"] for r in front], [100 * r["macro_f1"] for r in front], color="tab:blue", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("latency p50 at batch 1 (ms, log scale)")
    ax.set_ylabel("macro-F1 (%)")
    ax.set_title("macro-F1 vs latency (star: FP32 PyTorch teacher; line: Pareto front)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "pareto.png", dpi=120)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(9, max(3, 0.3 * len(rows))))
    names = [r["recipe"] for r in rows]
    ax.barh(names, [r["bytes_on_disk"] / 1e6 for r in rows], color=["crimson" if n == "teacher" else "tab:blue"
                                                                    for n in names])
    ax.set_xlabel("bytes on disk (MB)")
    ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(out / "size.png", dpi=120)
    plt.close(fig)


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    src = p.add_mutually_exclusive_group()
    src.add_argument("--model", help="fine-tuned teacher: folder or Hub id")
    src.add_argument("--from-config", help="build and briefly fine-tune a teacher of this shape")
    p.add_argument("--finetune-steps", type=int, default=200, help="--from-config: fine-tuning steps")
    p.add_argument("--finetune-lr", type=float, default=5e-4,
                   help="--from-config: learning rate (the model starts from random weights)")
    p.add_argument("--data", default=str(DEFAULT_DATA))
    p.add_argument("--recipes", default="all",
                   help="comma-separated names or YAML paths; 'all' stands for every shipped recipe")
    p.add_argument("--output", default=str(ROOT / "benchmarks" / "results"))
    p.add_argument("--force", action="store_true", help="redo recipes whose rows exist")
    p.add_argument("--quick", action="store_true", help="tiny teacher, a few training steps: minutes")
    p.add_argument("--max-steps", type=int, help="cap every training step at this many optimizer steps")
    p.add_argument("--epochs", type=float, help="override every training step's epochs")
    p.add_argument("--num-samples", type=int, help="override calibration sentences")
    p.add_argument("--max-latency-batches", type=int, default=100)
    p.add_argument("--no-memory", action="store_true")
    p.add_argument("--keep-models", action="store_true", help="keep every compressed model folder")
    p.add_argument("--remeasure", action="store_true",
                   help="measure kept models of finished recipes again in this run (no retraining)")
    args = p.parse_args(argv)

    from tqdm.auto import tqdm

    from optimum_bengali import apply_recipe, list_recipes, load_recipe
    from optimum_bengali.evaluation import measure_saved_model
    from optimum_bengali.training.finetune import finetune

    out = Path(args.output)
    (out / "rows").mkdir(parents=True, exist_ok=True)
    run_id = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    if args.quick:
        args.from_config = args.from_config or "bert-tiny-12l-shape"
        args.finetune_steps = min(args.finetune_steps, 60)
        args.max_steps = args.max_steps if args.max_steps is not None else 6
        args.num_samples = args.num_samples or 32
        args.max_latency_batches = min(args.max_latency_batches, 20)
    if not args.model and not args.from_config:
        p.error("give --model, --from-config or --quick")

    teacher_dir = Path(args.model) if args.model else out / "teacher"
    if args.from_config and (args.force or not (teacher_dir / "config.json").is_file()):
        print(f"building and fine-tuning a {args.from_config} teacher ({args.finetune_steps} steps)")
        finetune(None, args.data, str(teacher_dir), from_config=args.from_config, overwrite=True,
                 max_steps=args.finetune_steps, learning_rate=args.finetune_lr, batch_size=32,
                 measure_memory=False)
    from optimum_bengali.data import load_data
    from optimum_bengali.modeling import has_default_labels, load_model

    tmodel = load_model(teacher_dir)
    names = None if has_default_labels(tmodel.config) else [tmodel.config.id2label[i]
                                                               for i in sorted(tmodel.config.id2label)]
    del tmodel
    data = load_data(args.data, label_names=names)
    texts, labels = data.texts("test"), data.labels("test")
    teacher_desc = (f"{args.model}" if args.model else f"{args.from_config} built from config, fine-tuned "
                    f"{args.finetune_steps} steps on {Path(args.data).name} train")

    print("measuring the teacher (FP32 PyTorch)")
    baseline_dir = out / "models" / "teacher"
    if not (baseline_dir / "config.json").is_file():
        from optimum_bengali.modeling import load_tokenizer

        load_model(teacher_dir).save_pretrained(baseline_dir)
        load_tokenizer(teacher_dir).save_pretrained(baseline_dir)
    teacher_metrics = measure_saved_model(baseline_dir, texts, labels, memory=not args.no_memory,
                                          max_latency_batches=args.max_latency_batches)
    rows = [row_from("teacher", teacher_metrics, teacher_metrics, run_id)]
    (out / "rows" / "teacher.json").write_text(json.dumps(rows[0], indent=2))
    info = {"run": run_id, "teacher": teacher_desc, "data": args.data, "n_test": len(texts), "machine": machine(),
            "settings": {k: v for k, v in vars(args).items()}}
    wanted = [n for item in args.recipes.split(",")
              for n in ([name for name, _ in list_recipes()] if item == "all" else [item])]
    for name in tqdm(wanted, desc="recipes"):
        recipe = override(load_recipe(name), args.max_steps, args.epochs, args.num_samples)
        row_file = out / "rows" / f"{recipe.name}.json"
        model_dir = out / "models" / recipe.name
        if row_file.is_file() and not args.force:
            old = json.loads(row_file.read_text())
            if args.remeasure and (model_dir / "config.json").is_file():
                # same model, measured again in this run next to this run's teacher
                counts = {k: old[k] for k in ("parameters", "nonzero_parameters") if old.get(k) is not None}
                metrics = measure_saved_model(model_dir, texts, labels, memory=not args.no_memory,
                                              max_latency_batches=args.max_latency_batches, counts=counts)
                old = {**row_from(recipe.name, metrics, teacher_metrics, run_id), "seconds": old.get("seconds")}
                row_file.write_text(json.dumps(old, indent=2))
            rows.append(old)
            continue
        t0 = time.perf_counter()
        result = apply_recipe(teacher_dir, recipe, data, model_dir, overwrite=True, measure_baseline=False,
                              measure_memory=not args.no_memory, max_latency_batches=args.max_latency_batches)
        row = row_from(recipe.name, result.metrics, teacher_metrics, run_id)
        row["seconds"] = round(time.perf_counter() - t0, 1)
        row_file.write_text(json.dumps(row, indent=2))
        rows.append(row)
        if not args.keep_models:
            import shutil

            shutil.rmtree(model_dir, ignore_errors=True)
        write_outputs(out, rows, info)  # after every recipe: an interrupted run keeps its table
    write_outputs(out, rows, info)
    print((out / "results.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
