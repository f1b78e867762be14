"""Measure OpenVINO runtime options on one saved model: padding buckets, static shapes, threads, precision.

    python benchmarks/runtime_options.py MODEL_DIR [--data ../shared/data/bemoc] [--output DIR]

Every option is measured with the package's steady-state method (:func:`optimum_bengali.evaluation.
measure_latency`: one untimed pass over the batches, then timed passes) on the same validation sentences
(options are chosen here, so the test split stays for reporting), in
``--rounds`` interleaved rounds (every option once per round), so slow spells of a shared machine fall on all
options alike; the table gives the median of the rounds' p50s. An option worth keeping belongs in the model
folder's ``openvino_runtime.json`` (read on load; static lengths are the ``static_lengths`` setting of the
``quantize`` and ``export`` steps).
The saved folder's own static lengths are not applied here: every option starts from the dynamic IR.
The ``f32`` options set ``INFERENCE_PRECISION_HINT`` to f32: on a CPU with native BF16 OpenVINO otherwise runs
the parts that are not int8 in bf16. Each row records the inference precision the runtime read back.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

ROOT = Path(__file__).resolve().parents[1]


class PaddedTokenizer:
    """A tokenizer whose calls pad to a multiple of ``multiple`` tokens, or always to ``fixed`` tokens."""

    def __init__(self, tokenizer: Any, multiple: Optional[int] = None, fixed: Optional[int] = None) -> None:
        self.tokenizer, self.multiple, self.fixed = tokenizer, multiple, fixed

    def __call__(self, texts: Any, **kwargs: Any) -> Any:
        if self.fixed:
            kwargs.update(padding="max_length", max_length=self.fixed)
        elif self.multiple:
            kwargs["pad_to_multiple_of"] = self.multiple
        return self.tokenizer(texts, **kwargs)


#: the length buckets the shipped recipes save (``static_lengths`` of bengali-fast and bengali-accurate)
SHIPPED_LENGTHS = [16, 32, 48, 64, 96, 128]

OPTIONS: Dict[str, Dict[str, Any]] = {
    "dynamic padding (default)": {},
    "pad to a multiple of 8": {"multiple": 8},
    "pad to a multiple of 16": {"multiple": 16},
    "pad to a multiple of 32": {"multiple": 32},
    "static shape, 128 tokens": {"fixed": 128},
    "static lengths 16/32/48/64/96/128": {"lengths": SHIPPED_LENGTHS},
    "static lengths every 8 (8-128)": {"lengths": list(range(8, 129, 8))},
    "1 thread": {"threads": 1},
    "f32 for what is not int8": {"precision": "f32"},
    "static lengths 16/32/48/64/96/128, f32": {"lengths": SHIPPED_LENGTHS, "precision": "f32"},
}


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", help="an OpenVINO model folder written by optimum-bengali")
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "bemoc"))
    p.add_argument("--output", default=None, help="folder for runtime_options.json/.md (default: print only)")
    p.add_argument("--batch-sizes", default="1,8")
    p.add_argument("--max-batches", type=int, default=100)
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args(argv)

    from optimum_bengali.data import load_data
    from optimum_bengali.evaluation import latency_method, measure_latency
    from optimum_bengali.formats.openvino import load_openvino
    from optimum_bengali.formats.openvino_static import StaticLengthsModel
    from optimum_bengali.modeling import load_tokenizer
    from optimum_bengali.runtime import cpu_model, runtime_settings, set_threads

    cores = set_threads(0)
    texts = load_data(args.data).texts("validation")  # a choice is made from these timings: not on test
    tokenizer = load_tokenizer(args.model, apply_normalization=False)
    sizes = [int(b) for b in args.batch_sizes.split(",")]
    p50s: Dict[str, Dict[int, List[float]]] = {name: {b: [] for b in sizes} for name in OPTIONS}
    precision: Dict[str, str] = {}
    for round_ in range(args.rounds):
        for name, opt in OPTIONS.items():
            config = {"INFERENCE_NUM_THREADS": str(opt.get("threads", cores))}
            if opt.get("precision"):
                config["INFERENCE_PRECISION_HINT"] = opt["precision"]
            for bs in sizes:
                # the folder's saved settings, this option's threads and precision, never its saved static lengths
                model = load_openvino(args.model, ov_config=config, static_lengths=None, compile=False)
                if opt.get("fixed"):
                    model.reshape(-1, opt["fixed"])  # the last batch of a split can be smaller
                model.compile()
                if opt.get("lengths"):
                    model = StaticLengthsModel(model, opt["lengths"], tokenizer.pad_token_id)
                tok = PaddedTokenizer(tokenizer, opt.get("multiple"), opt.get("fixed"))
                m = measure_latency(model, tok, texts, batch_size=bs, max_batches=args.max_batches)
                if name not in precision:  # the same on every round and batch size
                    precision[name] = runtime_settings(model).get("inference_precision", "unknown")
                p50s[name][bs].append(m["steady_p50_ms"])
                print(f"round {round_ + 1} {name:28s} batch {bs}: p50 {m['steady_p50_ms']:.3f} ms", flush=True)
                del model
    rows = [{"option": name, "inference_precision": precision[name],
             **{f"steady_p50_ms_bs{b}": statistics.median(v[b]) for b in sizes},
             **{f"rounds_bs{b}": [round(x, 3) for x in v[b]] for b in sizes}} for name, v in p50s.items()]
    base = rows[0]
    method = latency_method(args.max_batches, split="validation")
    lines = [f"Model `{Path(args.model).name}`, {cpu_model()}, {cores} threads unless the option says otherwise; "
             f"{method}; median of {args.rounds} interleaved rounds.", "",
             "| option | inference precision | " + " | ".join(f"batch {b} p50 ms (vs default)" for b in sizes) + " |",
             "|---|---|" + "---|" * len(sizes)]
    for r in rows:
        cells = [f"{r[f'steady_p50_ms_bs{b}']:.2f} ({r[f'steady_p50_ms_bs{b}'] / base[f'steady_p50_ms_bs{b}']:.2f}x)"
                 for b in sizes]
        lines.append(f"| {r['option']} | {r['inference_precision']} | " + " | ".join(cells) + " |")
    print("\n".join(lines))
    if args.output:
        out = Path(args.output)
        out.mkdir(parents=True, exist_ok=True)
        (out / "runtime_options.json").write_text(json.dumps(
            {"model": Path(args.model).name, "cpu": cpu_model(), "threads": cores, "rounds": args.rounds,
             "method": method, "run": time.strftime("%Y-%m-%d %H:%M"), "rows": rows},
            indent=2))
        (out / "runtime_options.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
