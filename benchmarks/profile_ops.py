"""Where an OpenVINO model's time goes: OpenVINO's own per-op counters, summed by op type, at one static shape.

    python benchmarks/profile_ops.py MODEL_DIR [--batch-size 8] [--length 64] [--data ../shared/data/bemoc]

The folder's IR is reshaped to ``--batch-size`` x ``--length`` tokens, compiled with the folder's saved
settings (``openvino_runtime.json``), ``--threads`` threads and ``PERF_COUNT`` on, and run ``--iterations``
times (after ``--warmup`` untimed calls) on validation sentences padded or cut to the length. Each executed
node's ``real_time`` is summed by (node type, execution type), for example ``FullyConnected`` /
``brgemm_avx512_amx_I8``, and divided by the number of calls; the wall time per call is measured beside it,
so both can be read. The shares are the useful part: the counters' sum can exceed the wall time of a small
model's call (each node is timed on its own, with its own set-up), so compare op types within one profile.
This is a profile for deciding where to cut next, not a latency figure: the package's latency method
(:func:`optimum_bengali.evaluation.measure_latency`) is the one every table uses.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

ROOT = Path(__file__).resolve().parents[1]


def _inputs(ov_model: Any, tokenizer: Any, texts: Sequence[str], batch_size: int, length: int) -> Dict[str, Any]:
    """The model's inputs for the first ``batch_size`` texts, padded or cut to exactly ``length`` tokens."""
    import numpy as np

    enc = tokenizer(list(texts[:batch_size]), padding="max_length", truncation=True, max_length=length,
                    return_tensors="np")
    out = {}
    for port in ov_model.inputs:
        name = port.get_any_name()
        out[name] = enc[name].astype(np.int64) if name in enc else np.zeros((batch_size, length), dtype=np.int64)
    return out


def profile(folder: Path, texts: Sequence[str], batch_size: int = 8, length: int = 64, threads: int = 2,
            iterations: int = 20, warmup: int = 3) -> Dict[str, Any]:
    """OpenVINO's per-op counters for the IR in ``folder`` at ``batch_size`` x ``length`` tokens: per (node type,
    execution type) the milliseconds per call, the number of nodes and the share of the summed counters, plus
    the median wall time of a call (``wall_ms_per_call``) and the counters' sum (``ops_ms_per_call``)."""
    import openvino as ov

    from optimum_bengali.formats.openvino import OPENVINO_FILE
    from optimum_bengali.modeling import load_tokenizer
    from optimum_bengali.runtime import cpu_model, ov_config

    folder = Path(folder)
    ir = folder / OPENVINO_FILE
    if not ir.is_file():
        raise SystemExit(f"{folder} has no {OPENVINO_FILE}: give an OpenVINO model folder written by optimum-bengali "
                         "(the export or quantize step)")
    if len(texts) < batch_size:
        raise SystemExit(f"need at least --batch-size {batch_size} sentences, got {len(texts)}")
    core = ov.Core()
    model = core.read_model(str(ir))
    model.reshape({port.get_any_name(): [batch_size, length] for port in model.inputs})
    config = {**ov_config(folder), "INFERENCE_NUM_THREADS": str(threads), "PERF_COUNT": "YES"}
    compiled = core.compile_model(model, "CPU", config)
    request = compiled.create_infer_request()
    inputs = _inputs(model, load_tokenizer(folder, apply_normalization=False), texts, batch_size, length)
    for _ in range(warmup):
        request.infer(inputs)
    totals: Dict[tuple, float] = defaultdict(float)
    nodes: Dict[tuple, set] = defaultdict(set)
    walls: List[float] = []
    for _ in range(iterations):
        start = time.perf_counter()
        request.infer(inputs)
        walls.append((time.perf_counter() - start) * 1000)
        for info in request.profiling_info:
            if info.status != ov.ProfilingInfo.Status.EXECUTED:
                continue
            key = (info.node_type, info.exec_type)
            totals[key] += info.real_time.total_seconds() * 1000
            nodes[key].add(info.node_name)
    ops_ms = sum(totals.values()) / iterations
    rows = [{"node_type": t, "exec_type": e, "nodes": len(nodes[(t, e)]), "ms_per_call": ms / iterations,
             "share": (ms / iterations) / ops_ms if ops_ms else 0.0}
            for (t, e), ms in sorted(totals.items(), key=lambda kv: -kv[1])]
    precision = compiled.get_property("INFERENCE_PRECISION_HINT")
    return {"model": folder.name, "batch_size": batch_size, "length": length, "threads": threads,
            "iterations": iterations, "warmup": warmup, "wall_ms_per_call": statistics.median(walls),
            "ops_ms_per_call": ops_ms, "inference_precision": getattr(precision, "get_type_name", lambda: str(precision))(),
            "input_shapes": {port.get_any_name(): [int(d) for d in port.get_shape()] for port in compiled.inputs},
            "cpu": cpu_model(), "rows": rows}


def markdown(result: Dict[str, Any], top: int = 15) -> str:
    """The profile as a table, largest op types first (``top`` rows, the rest summed)."""
    lines = [f"Model `{result['model']}` at batch {result['batch_size']} x {result['length']} tokens (static shape), "
             f"{result['threads']} threads, inference precision {result['inference_precision']}, {result['cpu']}; "
             f"OpenVINO per-op counters (PERF_COUNT, real time of executed nodes) over {result['iterations']} calls "
             f"after {result['warmup']} untimed: {result['ops_ms_per_call']:.3f} ms per call in the counters, "
             f"median wall time {result['wall_ms_per_call']:.3f} ms per call.", "",
             "| node type | execution type | nodes | ms per call | share |", "|---|---|---|---|---|"]
    rows = result["rows"]
    for r in rows[:top]:
        lines.append(f"| {r['node_type']} | {r['exec_type']} | {r['nodes']} | {r['ms_per_call']:.3f} | "
                     f"{100 * r['share']:.1f}% |")
    rest = rows[top:]
    if rest:
        lines.append(f"| {len(rest)} other types | | {sum(r['nodes'] for r in rest)} | "
                     f"{sum(r['ms_per_call'] for r in rest):.3f} | {100 * sum(r['share'] for r in rest):.1f}% |")
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", help="an OpenVINO model folder written by optimum-bengali")
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "bemoc"))
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--length", type=int, default=64, help="tokens per sentence (padded or cut)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--iterations", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--top", type=int, default=15, help="op types listed (the rest summed in one row)")
    p.add_argument("--output", default=None, help="folder for profile_ops.json/.md (default: print only)")
    args = p.parse_args(argv)
    if min(args.batch_size, args.length, args.threads, args.iterations) < 1 or args.warmup < 0:
        raise SystemExit("--batch-size, --length, --threads and --iterations must be >= 1, --warmup >= 0")

    from optimum_bengali.data import load_data

    texts = load_data(args.data).texts("validation")  # profiles guide choices: not the test split
    result = profile(Path(args.model), texts, args.batch_size, args.length, args.threads, args.iterations,
                     args.warmup)
    result.update(run=time.strftime("%Y-%m-%d %H:%M"), split="validation")
    table = markdown(result, args.top)
    print(table)
    if args.output:
        out = Path(args.output)
        out.mkdir(parents=True, exist_ok=True)
        (out / "profile_ops.json").write_text(json.dumps(result, indent=2))
        (out / "profile_ops.md").write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
