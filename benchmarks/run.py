#!/usr/bin/env python
"""Run every recipe on one teacher and measure everything side by side, in one process.

    python benchmarks/run.py --model path/to/finetuned-teacher            # all shipped recipes
    python benchmarks/run.py --from-config bert-base-multilingual-cased-shape --finetune-steps 200 \\
        --recipes quant-static-int8,quant-dynamic-int8                     # mBERT-shaped, offline
    python benchmarks/run.py --quick                                       # tiny teacher, few steps

Every table has the peers measured in the same run: the FP32 PyTorch teacher, OpenVINO FP32 (export
only, f32 precision), OpenVINO bf16 where the CPU has native bf16, OpenVINO static int8 and PyTorch dynamic
int8 alone. Latency is steady state (an untimed pass over every batch first), with first-call and end-to-end
figures beside it; ``--threads`` applies to PyTorch and OpenVINO alike, and every row records the runtime
settings read back from the runtime.

Writes ``results.json``, ``results.csv``, ``results.md`` and ``pareto.png``/``size.png`` in ``--output``.
A recipe whose row exists already is skipped unless ``--force`` (rows record the run, the teacher
fingerprint and the step settings they come from; a row measured against another teacher or with other
settings is run again); with ``--keep-models --remeasure`` its kept model is measured again next to this
run's teacher. A run that times any row times the teacher again at its end and notes how far it moved.
``--recipes`` takes shipped recipe names, YAML paths and the names of the trial recipes in ``benchmarks/recipes/``.
``--recipes START+RECIPE`` applies RECIPE to the kept PyTorch model of the finished recipe START (run with
``--keep-models``) instead of the teacher, so several continuations (pruning or quantization variants) share
one distillation; the row, named ``START+<recipe name>``, is measured against the teacher and its minutes and
step records include START's.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import hashlib
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "bemoc"


def machine() -> Dict[str, Any]:
    """CPU model, cores, OpenVINO's CPU capabilities and library versions, recorded with the results."""
    import importlib.metadata as md

    import torch

    from optimum_bengali.runtime import cpu_model, openvino_cpu_capabilities

    versions = {}
    for pkg in ("torch", "transformers", "openvino", "nncf", "optimum-intel", "neural-compressor",
                "optimum-bengali"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = None
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "openvino_cpu_capabilities": openvino_cpu_capabilities(), "python": platform.python_version(),
            "versions": versions}


def fingerprint(folder: Path) -> str:
    """A short hash of a model folder's config, weights and tokenizer: a rebuilt or changed teacher gets
    another fingerprint, and rows measured against the old one are not reused."""
    digest = hashlib.sha256()
    for path in sorted(folder.iterdir()):
        if path.is_file() and (path.suffix in (".safetensors", ".bin", ".xml") or path.name in (
                "config.json", "tokenizer.json", "vocab.txt", "sentencepiece.bpe.model")):
            digest.update(path.name.encode())
            with open(path, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 22), b""):
                    digest.update(block)
    return digest.hexdigest()[:16]


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


def split_start(name: str) -> Tuple[Optional[str], str]:
    """``START+RECIPE`` -> (START, RECIPE): RECIPE applied to the kept model of the finished recipe START
    (one training shared by several continuations); a plain recipe name or path -> (None, name)."""
    start, plus, rest = name.partition("+")
    if not plus or Path(name).is_file():
        return None, name
    if not start or not rest:
        raise SystemExit(f"{name}: write START+RECIPE, the name of a kept recipe, '+', then a recipe")
    return start, rest


def recipe_source(name: str) -> str:
    """What ``load_recipe`` is given for a ``--recipes`` entry: a shipped recipe's name or a YAML path as it is;
    the name of a trial recipe in ``benchmarks/recipes/`` (``trim-distil-6l-white-box-long``) -> its path."""
    from optimum_bengali import list_recipes

    trial = ROOT / "benchmarks" / "recipes" / f"{name}.yaml"
    if Path(name).is_file() or not trial.is_file() or name in {n for n, _ in list_recipes()}:
        return name
    return str(trial)


#: what a row records about how its model was made; kept when ``--remeasure`` measures the model again
MADE_KEYS = ("seconds", "steps", "recipe_steps", "start_from", "start_fingerprint")


def changed_since(old: Dict[str, Any], teacher_fp: str, start_fp: Optional[str],
                  settings: List[Dict[str, Any]]) -> Optional[str]:
    """Why a stored row no longer stands for the recipe as asked (None: it does): measured against another
    teacher or starting model, or with other settings of the recipe's own steps (``settings``; a continued
    row's start is checked by its model's fingerprint). A row from before rows recorded their settings is
    compared by its step types alone."""
    if old.get("teacher_fingerprint") != teacher_fp:
        return "against another teacher"
    if old.get("start_fingerprint") != start_fp:
        return "from another starting model"

    def own(records: List[Dict[str, Any]]) -> List[Dict[str, Any]]:  # the last len(settings) records
        return records[max(len(records) - len(settings), 0):]

    if "recipe_steps" in old:
        return None if own(old["recipe_steps"]) == settings else "with other step settings"
    if [s.get("type") for s in own(old.get("steps", []))] != [s["type"] for s in settings]:
        return "with other steps"
    return None


def row_from(name: str, metrics: Dict[str, Any], teacher: Optional[Dict[str, Any]], run_id: str,
             teacher_fp: str, labels: Optional[List[int]] = None, num_labels: Optional[int] = None,
             predictions: Optional[List[int]] = None) -> Dict[str, Any]:
    """One results row: quality, the three latency figures at batch 1 and 8, runtime settings, sizes; with
    the test ``labels`` and this row's and the teacher's ``predictions``, the 95% paired-bootstrap interval
    of its macro-F1 change (``macro_f1_change_ci95``, points)."""
    from optimum_bengali.evaluation import macro_f1_difference_ci
    from optimum_bengali.pipeline import compare
    from optimum_bengali.runtime import describe

    row = {"recipe": name, "run": run_id, "teacher_fingerprint": teacher_fp, "format": metrics.get("format"),
           "runtime": describe(metrics.get("runtime", {})), "runtime_settings": metrics.get("runtime"),
           "val_accuracy": metrics.get("validation", {}).get("accuracy"),
           "val_macro_f1": metrics.get("validation", {}).get("macro_f1"),
           "accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"], "weighted_f1": metrics["weighted_f1"]}
    for bs in (1, 8):
        lat = metrics[f"latency_bs{bs}"]
        row.update({f"steady_p50_ms_bs{bs}": lat["steady_p50_ms"], f"steady_p95_ms_bs{bs}": lat["steady_p95_ms"],
                    f"steady_p95_over_p50_bs{bs}": lat["steady_p95_over_p50"],
                    f"steady_noise_p95_bs{bs}": lat.get("steady_noise_p95"),
                    f"steady_throughput_bs{bs}": lat["steady_throughput"],
                    f"first_call_mean_ms_bs{bs}": lat["first_call_mean_ms"],
                    f"end_to_end_p50_ms_bs{bs}": lat["end_to_end_p50_ms"]})
    row.update({"parameters": metrics.get("parameters"), "nonzero_parameters": metrics.get("nonzero_parameters"),
                "bytes_on_disk": metrics["bytes_on_disk"], "weight_bytes": metrics["weight_bytes"],
                "model_memory_bytes": metrics.get("model_memory_bytes"),
                "compile_seconds": metrics.get("compile_seconds"),
                "peak_rss_bytes": metrics.get("peak_rss_bytes")})
    if teacher is not None:
        c = compare(teacher, metrics)
        row.update(speedup_bs1=c.get("speedup_bs1"), speedup_bs8=c.get("speedup_bs8"),
                   end_to_end_speedup_bs1=c.get("end_to_end_speedup_bs1"), disk_ratio=c.get("bytes_on_disk_ratio"),
                   accuracy_change_points=c["accuracy_change_points"],
                   macro_f1_change_points=c["macro_f1_change_points"])
    predictions = predictions if predictions is not None else metrics.get("predictions")
    if predictions is not None:
        row["predictions"] = list(predictions)
        reference = (teacher or {}).get("predictions")
        if labels is not None and reference is not None:
            row["macro_f1_change_ci95"] = list(macro_f1_difference_ci(labels, predictions, reference,
                                                                       num_labels=num_labels))
    return row


COLUMNS = ("| recipe | run | format | runtime | val acc | val macro-F1 | acc | macro-F1 | ΔF1 (pts) | ΔF1 95% CI | steady p50 ms bs1 | p95/p50 bs1 "
           "| noise p95 bs1 | first call ms bs1 | steady p50 ms bs8 | speedup bs1 | speedup bs8 | params (M) | non-zero (M) "
           "| disk MB | disk ratio | model mem MB | peak RSS MB | recipe min |")


def markdown_row(r: Dict[str, Any]) -> str:
    """One table line for a results row."""
    def f(v: Any, fmt: str, scale: float = 1.0) -> str:
        return "-" if v is None else format(v * scale, fmt)

    interval = r.get("macro_f1_change_ci95")
    ci = "-" if not interval or r["recipe"] == "teacher" else f"{interval[0]:+.2f} to {interval[1]:+.2f}"
    return (f"| {r['recipe']} | {r['run']} | {r['format']} | {r['runtime']} | "
            f"{f(r.get('val_accuracy'), '.2f', 100)} | {f(r.get('val_macro_f1'), '.2f', 100)} | "
            f"{f(r['accuracy'], '.2f', 100)} | "
            f"{f(r['macro_f1'], '.2f', 100)} | {f(r.get('macro_f1_change_points'), '+.2f')} | {ci} | "
            f"{r['steady_p50_ms_bs1']:.2f} | {r['steady_p95_over_p50_bs1']:.2f} | "
            f"{f(r.get('steady_noise_p95_bs1'), '.2f')} | {r['first_call_mean_ms_bs1']:.2f} | "
            f"{r['steady_p50_ms_bs8']:.2f} | {f(r.get('speedup_bs1'), '.2f')}x | {f(r.get('speedup_bs8'), '.2f')}x | "
            f"{f(r['parameters'], '.1f', 1e-6)} | {f(r['nonzero_parameters'], '.1f', 1e-6)} | "
            f"{r['bytes_on_disk'] / 1e6:.1f} | {f(r.get('disk_ratio'), '.2f')}x | "
            f"{f(r.get('model_memory_bytes'), '.0f', 1e-6)} | {f(r.get('peak_rss_bytes'), '.0f', 1e-6)} | "
            f"{f(r.get('seconds'), '.1f', 1 / 60)} |")


def write_outputs(out: Path, rows: List[Dict[str, Any]], info: Dict[str, Any]) -> None:
    """``results.json``, ``results.csv``, ``results.md`` (table + how it was measured) and the plots."""
    # each row's per-sentence predictions stay in rows/<recipe>.json (they make the intervals)
    table = [{k: v for k, v in r.items() if k != "predictions"} for r in rows]
    (out / "results.json").write_text(json.dumps({**info, "rows": table}, indent=2, ensure_ascii=False))
    keys = list(dict.fromkeys(k for r in table for k in r if k not in ("runtime_settings", "steps")))
    with open(out / "results.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(table)
    lines = [COLUMNS, "|" + "---|" * COLUMNS.count(" | ") + "---|"]
    lines += [markdown_row(r) for r in table]
    m = info["machine"]
    lines += ["", f"Teacher: {info['teacher']} (fingerprint {info['teacher_fingerprint']}). Data: {info['data']} "
              f"(quality on the validation split, {info.get('n_validation', '-')} sentences, which decides choices, "
              f"and on the test split, {info['n_test']} sentences, read once to report; latency on the test "
              f"sentences). Machine: {m['cpu']}, {m['cores']} cores (OpenVINO CPU "
              f"capabilities: {', '.join(m['openvino_cpu_capabilities'])}), torch {m['versions']['torch']}, "
              f"OpenVINO {m['versions']['openvino']}, {info['threads']} threads for both. "
              + (f"Every row measured in run {info['run']}, next to the teacher. "
                 if all(r["run"] == info["run"] for r in rows) else
                 f"Teacher measured in run {info['run']}; a row from an earlier (resumed) run of the same teacher "
                 "was compared with the teacher as measured in that run. "),
              "", f"Latency: {info['latency_method']}. Speedup = teacher's steady p50 / the row's steady p50. "
              "Runtime: engine and inference precision read back from the runtime, threads, OpenVINO streams "
              "and performance hint. Model memory = resident memory after loading and classifying 64 sentences "
              "minus before loading (runtime and tokenizer loaded first); peak RSS = the whole process, runtime "
              "libraries included. ΔF1 95% CI: paired bootstrap of the row's macro-F1 minus the teacher's over "
              "2,000 resamples of the test sentences (both scored on the same resamples; '-' where the row's "
              "predictions were not kept). Recipe min: wall-clock minutes of the whole recipe (training, calibration, "
              "conversion and its own measuring) on this machine; '-' for the teacher."]
    for note in info.get("notes", []):
        lines += ["", note]
    (out / "results.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    plot(out, rows)


def plot(out: Path, rows: List[Dict[str, Any]]) -> None:
    """macro-F1 vs latency (Pareto front, teacher marked) and size bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 6))
    pts = sorted(rows, key=lambda r: r["steady_p50_ms_bs1"])
    front, best = [], -1.0
    for r in pts:
        if r["macro_f1"] > best:
            front.append(r)
            best = r["macro_f1"]
    for r in rows:
        teacher = r["recipe"] == "teacher"
        ax.scatter(r["steady_p50_ms_bs1"], 100 * r["macro_f1"], marker="*" if teacher else "o", s=200 if teacher else 40,
                   color="crimson" if teacher else ("tab:blue" if r in front else "tab:gray"), zorder=3)
        ax.annotate(r["recipe"], (r["steady_p50_ms_bs1"], 100 * r["macro_f1"]), fontsize=7, xytext=(3, 3),
                    textcoords="offset points")
    ax.plot([r["steady_p50_ms_bs1"] for r in front], [100 * r["macro_f1"] for r in front], color="tab:blue", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("steady-state latency p50 at batch 1 (ms, log scale)")
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


#: peers measured in every run, next to the teacher (PyTorch FP32): the runtime alone, quantization alone
PEERS = ("openvino-export", "openvino-export-bf16", "quant-static-int8", "quant-dynamic-int8")


def build_teacher(args: argparse.Namespace, teacher_dir: Path) -> None:
    """``--from-config``: a teacher of a named shape, fine-tuned ``--finetune-steps`` steps (0: random
    weights, for speed and size only)."""
    from optimum_bengali.pipeline import finetune

    if args.finetune_steps > 0:
        print(f"building and fine-tuning a {args.from_config} teacher ({args.finetune_steps} steps)")
        finetune(None, args.data, str(teacher_dir), from_config=args.from_config, overwrite=True,
                 max_steps=args.finetune_steps, learning_rate=args.finetune_lr, batch_size=32,
                 measure_memory=False)
        return
    from optimum_bengali.data import load_data
    from optimum_bengali.formats.pytorch import save_pytorch
    from optimum_bengali.modeling import build_from_config

    print(f"building a {args.from_config} teacher with random weights (speed and size only)")
    data = load_data(args.data)
    model, tok = build_from_config(args.from_config, data.texts("train"), data.label_names)
    save_pytorch(model, teacher_dir)
    tok.save_pretrained(teacher_dir)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    src = p.add_mutually_exclusive_group()
    src.add_argument("--model", help="fine-tuned teacher: folder or Hub id")
    src.add_argument("--from-config", help="build and briefly fine-tune a teacher of this shape")
    p.add_argument("--finetune-steps", type=int, default=200,
                   help="--from-config: fine-tuning steps (0: random weights, speed and size only)")
    p.add_argument("--finetune-lr", type=float, default=5e-4,
                   help="--from-config: learning rate (the model starts from random weights)")
    p.add_argument("--data", default=str(DEFAULT_DATA))
    p.add_argument("--recipes", default="all",
                   help="comma-separated recipe names (shipped, or trials in benchmarks/recipes/) or YAML paths; "
                        "'all' stands for every shipped recipe; START+RECIPE "
                        "applies RECIPE to the kept model of the finished recipe START")
    p.add_argument("--no-peers", action="store_true",
                   help=f"do not add the peer rows ({', '.join(PEERS)}; bf16 only where the CPU has it)")
    p.add_argument("--threads", type=int, default=0,
                   help="compute threads for PyTorch and OpenVINO alike (default 0: every core)")
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
    if args.quick:
        args.from_config = args.from_config or "bert-tiny-12l-shape"
        args.finetune_steps = min(args.finetune_steps, 60)
        args.max_steps = args.max_steps if args.max_steps is not None else 6
        args.num_samples = args.num_samples or 32
        args.max_latency_batches = min(args.max_latency_batches, 20)
    if not args.model and not args.from_config:
        p.error("give --model, --from-config or --quick")
    return args


def teacher_copy(teacher_dir: Path, out: Path) -> Tuple[Path, str]:
    """The teacher saved under ``out/models/teacher`` (what its rows are measured from) and its fingerprint;
    the copy is rewritten only when the teacher changed. Rows and kept models measured against another
    teacher are never reused."""
    import shutil

    from optimum_bengali.formats import load_model
    from optimum_bengali.formats.pytorch import save_pytorch
    from optimum_bengali.modeling import load_tokenizer

    teacher_fp = fingerprint(teacher_dir)
    baseline_dir = out / "models" / "teacher"
    fp_file = baseline_dir / "teacher_fingerprint.txt"
    if not fp_file.is_file() or fp_file.read_text().strip() != teacher_fp:
        shutil.rmtree(baseline_dir, ignore_errors=True)
        save_pytorch(load_model(teacher_dir), baseline_dir)
        load_tokenizer(teacher_dir, apply_normalization=False).save_pretrained(baseline_dir)
        fp_file.write_text(teacher_fp)
    return baseline_dir, teacher_fp


def planned_recipes(args: argparse.Namespace, notes: List[str]) -> List[str]:
    """The recipes of this run in order: the peers first (unless ``--no-peers``; bf16 only where the CPU has
    it, with a note saying so), then ``--recipes`` (``all``: every shipped recipe), each once."""
    from optimum_bengali import list_recipes
    from optimum_bengali.runtime import openvino_cpu_capabilities

    wanted = [n for item in args.recipes.split(",")
              for n in ([name for name, _ in list_recipes()] if item == "all" else [item])]
    if not args.no_peers:
        peers = list(PEERS)
        if "BF16" not in openvino_cpu_capabilities():
            peers.remove("openvino-export-bf16")
            notes.append("No OpenVINO bf16 row: this CPU has no native bfloat16 (OpenVINO's CPU capabilities "
                         "lack BF16), so the CPU plugin's default precision here is f32 and the "
                         "`openvino-export` row is also the OpenVINO default.")
        wanted = peers + [n for n in wanted if n not in peers]
    return list(dict.fromkeys(wanted))


class Run:
    """One benchmark run: the data, the teacher's measured row, and how each recipe's row is measured."""

    def __init__(self, args: argparse.Namespace, out: Path, teacher_dir: Path, data: Any) -> None:
        from optimum_bengali.evaluation import measure_saved_model

        self.args, self.out, self.teacher_dir, self.data = args, out, teacher_dir, data
        self.run_id = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
        self.texts, self.labels = data.texts("test"), data.labels("test")
        self.validation = (data.texts("validation"), data.labels("validation"))  # what choices are made by
        self.num_labels = len(data.label_names)
        self.baseline_dir, self.teacher_fp = teacher_copy(teacher_dir, out)
        self.teacher_metrics = measure_saved_model(self.baseline_dir, self.texts, self.labels, **self.measuring(),
                                                   predictions=True)
        self.teacher_row = self.row("teacher", self.teacher_metrics)

    def teacher_drift(self) -> Dict[str, Any]:
        """The teacher timed again (steady p50 at batch 1 and 8, as at the start of the run), and the note
        that says how far it moved: every speedup divides by the first figure, so a machine that sped up or
        slowed down during the run shows here."""
        from optimum_bengali.evaluation import measure_latency
        from optimum_bengali.formats import load_model
        from optimum_bengali.modeling import load_tokenizer

        model = load_model(self.baseline_dir)
        tokenizer = load_tokenizer(self.baseline_dir, apply_normalization=False)
        again, parts, worst = {}, [], 0.0
        sizes = sorted(int(k[len("latency_bs"):]) for k in self.teacher_metrics if k.startswith("latency_bs"))
        for bs in sizes:  # the batch sizes the teacher was first timed at
            ms = measure_latency(model, tokenizer, self.texts, batch_size=bs,
                                 max_batches=self.args.max_latency_batches)["steady_p50_ms"]
            first = self.teacher_metrics[f"latency_bs{bs}"]["steady_p50_ms"]
            again[f"steady_p50_ms_bs{bs}"] = ms
            worst = max(worst, abs(ms / first - 1))
            parts.append(f"batch {bs} {ms:.2f} ms (first {first:.2f} ms)")
        tail = ", so the speedups carry that much uncertainty." if worst > 0.1 else "."
        note = (f"The teacher timed again after the last row: {', '.join(parts)}; it moved by up to "
                f"{100 * worst:.0f}% during the run{tail}")
        return {"teacher_timed_again": again, "note": note}

    def measuring(self) -> Dict[str, Any]:
        return {"memory": not self.args.no_memory, "max_latency_batches": self.args.max_latency_batches,
                "validation": self.validation}

    def row(self, name: str, metrics: Dict[str, Any], predictions: Optional[List[int]] = None) -> Dict[str, Any]:
        return row_from(name, metrics, self.teacher_metrics if name != "teacher" else metrics, self.run_id,
                        self.teacher_fp, self.labels, self.num_labels, predictions)

    def kept_row(self, name: str, old: Dict[str, Any], model_dir: Path) -> Dict[str, Any]:
        """A finished recipe's row: with ``--remeasure`` its kept model measured again next to this run's
        teacher (keeping the recipe's minutes and its steps' records), else the stored row with its interval
        against this run's teacher."""
        from optimum_bengali.evaluation import macro_f1_difference_ci, measure_saved_model

        if self.args.remeasure and (model_dir / "config.json").is_file():
            counts = {k: old[k] for k in ("parameters", "nonzero_parameters") if old.get(k) is not None}
            metrics = measure_saved_model(model_dir, self.texts, self.labels, **self.measuring(), counts=counts,
                                          predictions=True)
            # what was measured when it was made (minutes, each step's validation record) stays with the row
            made = {k: old[k] for k in MADE_KEYS if k in old}
            return {**self.row(name, metrics), **made}
        if old.get("predictions") is not None:
            old["macro_f1_change_ci95"] = list(macro_f1_difference_ci(
                self.labels, old["predictions"], self.teacher_metrics["predictions"], num_labels=self.num_labels))
        return old

    def start_model(self, start: str) -> Tuple[Path, Dict[str, Any], str]:
        """The kept PyTorch model of the finished recipe ``start`` (measured against this run's teacher), its
        row and the model's fingerprint: what a ``START+RECIPE`` row continues from."""
        row_file, model_dir = self.out / "rows" / f"{start}.json", self.out / "models" / start
        row = json.loads(row_file.read_text()) if row_file.is_file() else {}
        if row.get("teacher_fingerprint") != self.teacher_fp or not (model_dir / "config.json").is_file():
            raise SystemExit(f"{start}+...: no kept model of {start} for this teacher in {self.out}; run "
                             f"--recipes {start} --keep-models first")
        if row.get("format") != "pytorch":
            raise SystemExit(f"{start}+...: {start} ends in the {row.get('format')} format; a recipe can only "
                             "continue from a PyTorch (unquantized) model")
        return model_dir, row, fingerprint(model_dir)

    def recipe_row(self, name: str) -> Dict[str, Any]:
        """The row of one recipe: reused (or re-measured) when this teacher's row exists and not ``--force``,
        else the recipe applied to the teacher (for ``START+RECIPE``, to START's kept model) and measured. The
        row is written to ``rows/<recipe>.json``."""
        import shutil

        from optimum_bengali import apply_recipe, load_recipe

        args = self.args
        start, recipe_name = split_start(name)
        recipe = override(load_recipe(recipe_source(recipe_name)), args.max_steps, args.epochs, args.num_samples)
        row_name = f"{start}+{recipe.name}" if start else recipe.name
        source, start_row, start_fp = self.start_model(start) if start else (self.teacher_dir, {}, None)
        row_file = self.out / "rows" / f"{row_name}.json"
        model_dir = self.out / "models" / row_name
        settings = json.loads(json.dumps(recipe.to_dict()["steps"]))  # this recipe's own steps, as applied
        if row_file.is_file() and not args.force:
            old = json.loads(row_file.read_text())
            changed = changed_since(old, self.teacher_fp, start_fp, settings)
            if not changed:
                row = self.kept_row(row_name, old, model_dir)
                if row is not old:  # measured again: the stored row is replaced
                    row_file.write_text(json.dumps(row, indent=2))
                return row
            print(f"{row_name}: its row was measured {changed}; running it again")
            shutil.rmtree(model_dir, ignore_errors=True)
        t0 = time.perf_counter()
        result = apply_recipe(source, recipe, self.data, model_dir, overwrite=True,
                              measure_baseline=False, measure_memory=not args.no_memory,
                              max_latency_batches=args.max_latency_batches)
        row = {**self.row(row_name, result.metrics, result.predictions),
               # a continued recipe's minutes and step records include those of the recipe it starts from
               "seconds": round(start_row.get("seconds", 0) + time.perf_counter() - t0, 1),
               # what each step measured and chose (layer map, validation record, sparsity, ...), as in its report
               "steps": start_row.get("steps", []) + result.steps,
               # the settings applied, START's first (its step types where its row predates this record); a
               # row is redone when its own steps' settings change (START's by its model's fingerprint)
               "recipe_steps": start_row.get("recipe_steps", [{"type": s.get("type")} for s in
                                                               start_row.get("steps", [])]) + settings}
        if start:
            row.update(start_from=start, start_fingerprint=start_fp)
        row_file.write_text(json.dumps(row, indent=2))
        if not args.keep_models:
            shutil.rmtree(model_dir, ignore_errors=True)
        return row


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    from tqdm.auto import tqdm

    from optimum_bengali.data import load_data
    from optimum_bengali.evaluation import latency_method
    from optimum_bengali.formats import load_model
    from optimum_bengali.modeling import config_label_names
    from optimum_bengali.runtime import set_threads

    threads = set_threads(args.threads)
    out = Path(args.output)
    (out / "rows").mkdir(parents=True, exist_ok=True)
    teacher_dir = Path(args.model) if args.model else out / "teacher"
    if args.from_config and (args.force or not (teacher_dir / "config.json").is_file()):
        build_teacher(args, teacher_dir)
    names = config_label_names(load_model(teacher_dir).config)
    print(f"measuring the teacher (FP32 PyTorch, {threads} threads)")
    run = Run(args, out, teacher_dir, load_data(args.data, label_names=names))
    (out / "rows" / "teacher.json").write_text(json.dumps(run.teacher_row, indent=2))
    notes: List[str] = []
    wanted = planned_recipes(args, notes)
    teacher_desc = (f"{Path(args.model).name}" if args.model else f"{args.from_config} built from config, "
                    + (f"fine-tuned {args.finetune_steps} steps on {Path(args.data).name} train"
                       if args.finetune_steps > 0 else "random weights (speed and size only)"))
    info = {"run": run.run_id, "teacher": teacher_desc, "teacher_fingerprint": run.teacher_fp,
            "data": Path(args.data).name, "n_test": len(run.texts), "n_validation": len(run.validation[0]),
            "machine": machine(), "threads": threads, "latency_method": latency_method(args.max_latency_batches),
            "notes": notes, "settings": {k: v for k, v in vars(args).items() if k not in ("model", "output", "data")}}
    rows = [run.teacher_row]
    for name in tqdm(wanted, desc="recipes"):
        rows.append(run.recipe_row(name))
        write_outputs(out, rows, info)  # after every recipe: an interrupted run keeps its table
    if any(r.get("run") == run.run_id for r in rows[1:]):  # rows timed in this run: was the machine steady?
        drift = run.teacher_drift()
        info["teacher_timed_again"] = drift["teacher_timed_again"]
        notes.append(drift["note"])
    write_outputs(out, rows, info)
    print((out / "results.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
