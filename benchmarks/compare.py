#!/usr/bin/env python
"""Quality of one benchmark row against another on the same test sentences, with a paired interval.

    python benchmarks/compare.py --data ../shared/data/banemo \\
        out-student/quant-qat-int8 out-student/quant-static-int8      # QAT's gain over static int8
    python benchmarks/compare.py --data ../shared/data/banemo --model path/to/teacher \\
        out-student/quant-qat-int8 out-teacher/teacher                # a student's int8 against the teacher

Each row is ``<benchmark output folder>/<recipe>`` and is read from ``rows/<recipe>.json``, which keeps the
row's test predictions. The two rows may come from different runs (a student measured next to its FP32 self,
a teacher measured in an earlier run): quality does not depend on the machine, so their macro-F1 on
validation and test and the 95% paired-bootstrap interval of the test difference are compared. Latency is
not: a speed figure is compared only within the run that measured it, so none is printed here.

The test labels are read from ``--data`` in the label order of ``--model`` (a model folder with
``id2label``; the data set's sorted labels without it), and each row's recorded test accuracy is checked
against them, so rows scored on another split, data set or label order are refused.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence


def read_row(spec: str) -> Dict[str, Any]:
    """The row ``<folder>/<recipe>`` as ``rows/<recipe>.json`` of that benchmark output holds it."""
    folder, _, recipe = spec.rstrip("/").rpartition("/")
    path = Path(folder or ".") / "rows" / f"{recipe}.json"
    if not path.is_file():
        raise SystemExit(f"{spec}: no {path}; give <benchmark output folder>/<recipe name>")
    row = json.loads(path.read_text(encoding="utf-8"))
    if not row.get("predictions"):
        raise SystemExit(f"{spec}: the row kept no test predictions; measure it again with benchmarks/run.py")
    return row


def compare_rows(row: Dict[str, Any], reference: Dict[str, Any], labels: Sequence[int],
                 num_labels: Optional[int] = None) -> Dict[str, Any]:
    """``row`` against ``reference`` on the same test ``labels``: both rows' validation and test macro-F1,
    the differences in points (``row`` minus ``reference``) and the 95% paired-bootstrap interval of the test
    difference. Raises ``ValueError`` when either row's predictions do not reproduce its recorded test
    accuracy on ``labels`` (another split, data set or label order)."""
    from optimum_bengali.evaluation import macro_f1_difference_ci

    for r in (row, reference):
        predictions = r["predictions"]
        if len(predictions) != len(labels):
            raise ValueError(f"{r['recipe']}: {len(predictions)} predictions for {len(labels)} test sentences; "
                             "compare rows scored on the same test split")
        accuracy = sum(int(p == y) for p, y in zip(predictions, labels)) / len(labels)
        if abs(accuracy - r["accuracy"]) > 1e-9:
            raise ValueError(f"{r['recipe']}: its predictions score accuracy {accuracy:.4f} on these labels, "
                             f"not its recorded {r['accuracy']:.4f}; give the data set and --model (label "
                             "order) it was measured with")

    def points(key: str, r: Dict[str, Any]) -> Optional[float]:
        return None if r.get(key) is None else 100.0 * r[key]

    out = {"row": row["recipe"], "reference": reference["recipe"],
           "row_run": row.get("run"), "reference_run": reference.get("run")}
    for key, name in (("val_macro_f1", "validation"), ("macro_f1", "test")):
        a, b = points(key, row), points(key, reference)
        out[f"{name}_macro_f1"] = a
        out[f"reference_{name}_macro_f1"] = b
        out[f"{name}_change_points"] = None if a is None or b is None else a - b
    out["test_change_ci95"] = list(macro_f1_difference_ci(labels, row["predictions"], reference["predictions"],
                                                          num_labels=num_labels))
    return out


def markdown(results: List[Dict[str, Any]]) -> str:
    """A table of :func:`compare_rows` results."""
    def f(v: Optional[float], signed: bool = False) -> str:
        return "-" if v is None else (f"{v:+.2f}" if signed else f"{v:.2f}")

    lines = ["| row | reference | val macro-F1 | ref. val macro-F1 | Δ val (pts) | test macro-F1 | ref. test macro-F1 "
             "| Δ test (pts) | Δ test 95% CI |", "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        lo, hi = r["test_change_ci95"]
        lines.append(f"| {r['row']} | {r['reference']} | {f(r['validation_macro_f1'])} | "
                     f"{f(r['reference_validation_macro_f1'])} | {f(r['validation_change_points'], True)} | "
                     f"{f(r['test_macro_f1'])} | {f(r['reference_test_macro_f1'])} | "
                     f"{f(r['test_change_points'], True)} | {lo:+.2f} to {hi:+.2f} |")
    return "\n".join(lines)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("row", help="<benchmark output folder>/<recipe>: the row to compare")
    p.add_argument("reference", nargs="+", help="<benchmark output folder>/<recipe>: what it is compared with")
    p.add_argument("--data", required=True, help="the data set both rows were measured on")
    p.add_argument("--model", help="a model folder whose id2label gives the label order the rows used")
    p.add_argument("--json", action="store_true", help="print JSON instead of a markdown table")
    return p.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    from optimum_bengali.data import load_data

    names = None
    if args.model:
        from transformers import AutoConfig

        from optimum_bengali.modeling import config_label_names

        names = config_label_names(AutoConfig.from_pretrained(args.model))  # the order benchmarks/run.py reads
    data = load_data(args.data, label_names=names)
    labels = data.labels("test")
    row = read_row(args.row)
    try:
        results = [compare_rows(row, read_row(ref), labels, num_labels=len(data.label_names))
                   for ref in args.reference]
    except ValueError as err:
        raise SystemExit(str(err)) from None
    print(json.dumps(results, indent=2) if args.json else markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
