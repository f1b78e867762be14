#!/usr/bin/env python
"""PyTorch dynamic int8 two ways, on one teacher, in one process: ``torch.ao.quantization.quantize_dynamic``
(what the ``torch`` backend uses; deprecated) against its successor torchao (``quantize_(model,
Int8DynamicActivationInt8WeightConfig())``), eager and after ``torch.compile``, next to FP32.

    python benchmarks/torch_int8_options.py TEACHER_FOLDER --data ../shared/data/banemo --output out.json

Latency: :func:`optimum_bengali.evaluation.measure_latency` (steady-state p50, batch 1 and 8) on the
**validation** sentences in order; quality: macro-F1 on the validation split (this decides the backend, so
the test split is not read). Options are measured in two interleaved rounds and each keeps its lower p50.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

ROOT = Path(__file__).resolve().parents[1]


def torchao_int8(model: Any) -> Any:
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

    quantize_(model, Int8DynamicActivationInt8WeightConfig())
    return model


def compiled(build: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def wrap(model: Any) -> Any:
        import torch

        out = build(model)
        out.forward = torch.compile(out.forward, dynamic=True)
        return out
    return wrap


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("teacher")
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "bemoc"))
    p.add_argument("--output", required=True)
    p.add_argument("--max-batches", type=int, default=100)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--threads", type=int, default=0)
    args = p.parse_args(argv)

    import torch

    from optimum_bengali.data import load_data
    from optimum_bengali.evaluation import classification_metrics, measure_latency, predict_logits
    from optimum_bengali.formats import load_model
    from optimum_bengali.formats.torch_int8 import quantize_linear_int8
    from optimum_bengali.modeling import load_tokenizer
    from optimum_bengali.runtime import set_threads

    threads = set_threads(args.threads)
    teacher = load_model(args.teacher).eval()
    tok = load_tokenizer(args.teacher)
    names = [teacher.config.id2label[i] for i in sorted(teacher.config.id2label)]
    data = load_data(args.data, label_names=names)
    texts, labels = data.texts("validation"), data.labels("validation")
    options: Dict[str, Callable[[Any], Any]] = {
        "fp32": lambda m: m,
        "torch.ao quantize_dynamic": quantize_linear_int8,
        "torchao Int8DynamicActivationInt8Weight": torchao_int8,
        "torchao Int8DynamicActivationInt8Weight + torch.compile": compiled(torchao_int8),
    }
    models, results = {}, {}
    for name, build in options.items():
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            models[name] = build(copy.deepcopy(teacher))
        with torch.inference_mode():
            logits = predict_logits(models[name], tok, texts)
        results[name] = {"build_seconds": round(time.perf_counter() - t0, 1),
                         "val_macro_f1": classification_metrics(labels, logits.argmax(-1).tolist(),
                                                                num_labels=len(names))["macro_f1"]}
    for _ in range(args.rounds):
        for name, model in models.items():
            with torch.inference_mode():
                for bs in (1, 8):
                    lat = measure_latency(model, tok, texts, batch_size=bs, max_batches=args.max_batches)
                    key = f"steady_p50_ms_bs{bs}"
                    results[name][key] = min(results[name].get(key, float("inf")), lat["steady_p50_ms"])
                    results[name][f"noise_p95_bs{bs}"] = lat.get("steady_noise_p95")
    base = results["fp32"]
    for r in results.values():
        for bs in (1, 8):
            r[f"speedup_bs{bs}"] = round(base[f"steady_p50_ms_bs{bs}"] / r[f"steady_p50_ms_bs{bs}"], 2)
    report = {"teacher": Path(args.teacher).name, "data": Path(args.data).name, "threads": threads,
              "torch": torch.__version__, "method": __doc__.split("\n\n")[2].strip(), "options": results}
    Path(args.output).write_text(json.dumps(report, indent=2))
    for name, r in results.items():
        print(f"{name:58s} val macro-F1 {100 * r['val_macro_f1']:.2f}  bs1 {r['steady_p50_ms_bs1']:.2f} ms "
              f"({r['speedup_bs1']:.2f}x)  bs8 {r['steady_p50_ms_bs8']:.2f} ms ({r['speedup_bs8']:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
