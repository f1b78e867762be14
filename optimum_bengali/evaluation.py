"""One measurement module used by every step, the CLI and the benchmarks.

Quality: accuracy, macro-F1, weighted-F1 on a labelled split. Speed: steady-state, first-call and
end-to-end latency on real sentences, batched in test-set order with dynamic padding (see
:func:`measure_latency`), with the runtime settings in effect. Size: parameters, non-zero parameters,
bytes on disk; peak RSS and model memory in a fresh process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from sklearn.metrics import accuracy_score, f1_score
from tqdm.auto import tqdm
from transformers import PreTrainedModel

# OpenVINO's .xml is the graph, not weights; .pt is INC's PT2 archive (raw tensor bytes, no pickle)
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".onnx", ".zst", ".pt")


def _forward(model: Any, enc: Dict[str, torch.Tensor]) -> torch.Tensor:
    if isinstance(model, torch.nn.Module):
        with torch.inference_mode():
            return model(**enc).logits
    return model(**enc).logits  # OpenVINO model: takes and returns torch tensors


def _encode(tokenizer: Any, texts: Sequence[str], max_length: int) -> Dict[str, torch.Tensor]:
    enc = tokenizer(list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    return dict(enc)


def predict_logits(model: Any, tokenizer: Any, texts: Sequence[str], batch_size: int = 32,
                   max_length: int = 128, progress: bool = False) -> np.ndarray:
    """Logits for ``texts`` (batched, dynamic padding)."""
    out = []
    starts = range(0, len(texts), batch_size)
    for i in tqdm(starts, desc="predict", disable=not progress, leave=False):
        out.append(_forward(model, _encode(tokenizer, texts[i:i + batch_size], max_length)).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)


def classification_metrics(labels: Sequence[int], predictions: Sequence[int],
                           num_labels: Optional[int] = None) -> Dict[str, float]:
    """Accuracy, macro-F1 and weighted-F1 (scikit-learn, the implementation `evaluate` wraps).

    With ``num_labels`` the F1 averages run over every class ``0 .. num_labels - 1``, also one that is
    neither in ``labels`` nor predicted (it counts as F1 0), so figures on different splits or models
    average over the same classes.
    """
    classes = list(range(num_labels)) if num_labels else None
    return {
        "accuracy": float(accuracy_score(labels, predictions)),
        "macro_f1": float(f1_score(labels, predictions, labels=classes, average="macro", zero_division=0)),
        "weighted_f1": float(f1_score(labels, predictions, labels=classes, average="weighted", zero_division=0)),
    }


def _macro_f1_rows(labels: np.ndarray, predictions: np.ndarray, num_labels: int) -> np.ndarray:
    """Macro-F1 of each row of ``labels``/``predictions`` (2-D, one resample per row), every class counted."""
    rows = labels.shape[0]
    codes = (np.arange(rows)[:, None] * num_labels + labels) * num_labels + predictions
    confusion = np.bincount(codes.ravel(), minlength=rows * num_labels * num_labels).reshape(
        rows, num_labels, num_labels)
    tp = np.diagonal(confusion, axis1=1, axis2=2).astype(float)
    denominator = confusion.sum(axis=2) + confusion.sum(axis=1)  # 2 tp + fn + fp
    f1 = np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=denominator > 0)
    return f1.mean(axis=1)


def macro_f1_difference_ci(labels: Sequence[int], predictions: Sequence[int], reference: Sequence[int],
                           num_labels: Optional[int] = None, resamples: int = 2000, level: float = 0.95,
                           seed: int = 0) -> Tuple[float, float]:
    """Paired bootstrap confidence interval, in macro-F1 points, of ``predictions``' macro-F1 minus
    ``reference``'s on the same sentences: both are scored on the same ``resamples`` resamples (with
    replacement, drawn with ``seed``) of the evaluation set, and the ``level`` central interval of the
    differences is returned. On a few hundred sentences a difference of one or two points is often inside it."""
    y, a, b = (np.asarray(v, dtype=np.int64) for v in (labels, predictions, reference))
    if not (len(y) == len(a) == len(b)) or not len(y):
        raise ValueError(f"labels and both prediction lists must have one equal, non-zero length; got "
                         f"{len(y)}, {len(a)}, {len(b)}")
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, e.g. 0.95; got {level}")
    k = int(num_labels or max(y.max(), a.max(), b.max()) + 1)
    idx = np.random.default_rng(seed).integers(0, len(y), size=(resamples, len(y)))
    diff = (_macro_f1_rows(y[idx], a[idx], k) - _macro_f1_rows(y[idx], b[idx], k)) * 100.0
    tail = (1 - level) / 2 * 100.0
    return float(np.percentile(diff, tail)), float(np.percentile(diff, 100.0 - tail))


#: timed passes over the batches for the steady-state figures
TIMED_PASSES = 3


def latency_method(max_batches: int, timed_passes: int = TIMED_PASSES, split: str = "test") -> str:
    """How :func:`measure_latency` measured, in one sentence written next to every figure (``split``: whose
    sentences were timed)."""
    return (f"model call on real {split} sentences in order (the first {max_batches} batches), dynamic padding; "
            f"steady state = p50/p95 over {timed_passes} timed passes after one untimed pass over the same "
            "batches; first call = mean time of each distinct input shape's first call; end to end = "
            "tokenization + call, after the steady-state passes")


def _shape(enc: Dict[str, torch.Tensor]) -> tuple:
    return tuple(sorted((k, tuple(v.shape)) for k, v in enc.items()))


def measure_latency(model: Any, tokenizer: Any, texts: Sequence[str], batch_size: int = 1,
                    max_batches: int = 100, timed_passes: int = TIMED_PASSES,
                    max_length: int = 128) -> Dict[str, float]:
    """Latency (ms) of the model on consecutive real sentences with dynamic padding, three ways.

    1. *First call*: one untimed-for-the-statistics pass over every batch; the first call of each distinct
       input shape is timed (runtimes such as OpenVINO build kernels for every new shape, which costs
       several ms). ``first_call_mean_ms`` is their mean over ``first_call_shapes`` shapes.
    2. *Steady state*: then ``timed_passes`` (>= 2) timed passes over the same batches:
       ``steady_p50_ms``, ``steady_p95_ms``, ``steady_mean_ms``, ``steady_throughput`` (sentences/s) and
       ``steady_p95_over_p50`` (the spread over batches: mostly sentence length under dynamic padding) and
       ``steady_noise_p95`` (the p95 of each call's time over its own batch's median across the passes:
       the run-to-run noise alone, 1.0 = none).
    3. *End to end*: one more pass that also tokenizes each batch: ``end_to_end_p50_ms``,
       ``end_to_end_mean_ms``.

    ``mean_tokens`` is the mean number of real (unpadded) tokens per sentence.
    """
    if timed_passes < 2:
        raise ValueError(f"timed_passes must be >= 2 (steady state needs repeated passes), got {timed_passes}")
    chunks = [list(texts[i:i + batch_size]) for i in range(0, len(texts), batch_size)][:max_batches]
    if not chunks:
        raise ValueError("no sentences to time")
    batches = [_encode(tokenizer, chunk, max_length) for chunk in chunks]
    first: Dict[tuple, float] = {}
    for enc in batches:  # every shape compiled / allocated once; first calls timed
        key = _shape(enc)
        t0 = time.perf_counter()
        _forward(model, enc)
        if key not in first:
            first[key] = time.perf_counter() - t0
    times = []
    for _ in range(timed_passes):
        for enc in batches:
            t0 = time.perf_counter()
            _forward(model, enc)
            times.append(time.perf_counter() - t0)
    e2e = []
    for chunk in chunks:
        t0 = time.perf_counter()
        _forward(model, _encode(tokenizer, chunk, max_length))
        e2e.append(time.perf_counter() - t0)
    arr, e2e_arr = np.asarray(times) * 1000.0, np.asarray(e2e) * 1000.0
    per_pass = arr.reshape(timed_passes, len(batches))
    noise = per_pass / np.maximum(np.median(per_pass, axis=0), 1e-9)
    n_sent = sum(len(c) for c in chunks) * timed_passes
    p50, p95 = float(np.percentile(arr, 50)), float(np.percentile(arr, 95))
    tokens = [int(b["attention_mask"].sum()) / int(b["input_ids"].shape[0]) for b in batches]
    return {"steady_p50_ms": p50, "steady_p95_ms": p95, "steady_mean_ms": float(arr.mean()),
            "steady_throughput": float(n_sent / (arr.sum() / 1000.0)), "steady_p95_over_p50": p95 / p50,
            "steady_noise_p95": float(np.percentile(noise, 95)),
            "first_call_mean_ms": float(np.mean(list(first.values())) * 1000.0), "first_call_shapes": len(first),
            "end_to_end_p50_ms": float(np.percentile(e2e_arr, 50)), "end_to_end_mean_ms": float(e2e_arr.mean()),
            "batches": len(batches), "timed_passes": timed_passes, "mean_tokens": float(np.mean(tokens))}


def disk_size(folder: Union[str, Path]) -> Dict[str, int]:
    """Bytes on disk of a saved model folder: everything, and the weight files alone."""
    total = weights = 0
    for path in Path(folder).rglob("*"):
        if path.is_file():
            size = path.stat().st_size
            total += size
            if path.suffix in WEIGHT_SUFFIXES:
                weights += size
    return {"bytes_on_disk": total, "weight_bytes": weights}


def peak_memory(model_dir: Union[str, Path], texts: Sequence[str], batch_size: int = 8) -> Dict[str, int]:
    """Memory of a fresh process that loads ``model_dir`` and classifies ``texts``: ``peak_rss_bytes``
    (the whole process, runtime libraries included) and ``model_memory_bytes`` (resident memory after
    loading the model and classifying ``texts``, minus before loading, with the runtime and the tokenizer
    already loaded)."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8") as fh:
        json.dump(list(texts), fh, ensure_ascii=False)
    try:
        res = subprocess.run([sys.executable, "-m", "optimum_bengali.memory", str(model_dir), fh.name,
                              str(batch_size)], capture_output=True, text=True, check=True,
                             env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
    finally:
        os.unlink(fh.name)
    return {k: int(v) for k, v in json.loads(res.stdout.strip().splitlines()[-1]).items()}


def evaluate_model(model: Any, tokenizer: Any, texts: Sequence[str], labels: Sequence[int],
                   latency: bool = True, latency_batch_sizes: Sequence[int] = (1, 8),
                   max_latency_batches: int = 100, max_length: int = 128,
                   num_labels: Optional[int] = None, predictions: bool = False) -> Dict[str, Any]:
    """Quality on ``texts``/``labels`` and, if asked, latency at the given batch sizes (measured first, on
    the freshly loaded model, so that first calls are first calls) and the runtime settings in effect.
    ``predictions=True`` adds the predicted label of every sentence (``predictions``)."""
    from .runtime import runtime_settings

    metrics: Dict[str, Any] = {}
    if latency:
        for bs in latency_batch_sizes:
            metrics[f"latency_bs{bs}"] = measure_latency(model, tokenizer, texts, batch_size=bs,
                                                         max_batches=max_latency_batches, max_length=max_length)
        metrics["latency_method"] = latency_method(max_latency_batches)
    logits = predict_logits(model, tokenizer, texts, max_length=max_length)
    num_labels = num_labels or getattr(getattr(model, "config", None), "num_labels", None)
    predicted = logits.argmax(-1).tolist()
    metrics = {**classification_metrics(labels, predicted, num_labels=num_labels), **metrics}
    metrics["n_eval"] = len(texts)
    if predictions:
        metrics["predictions"] = predicted
    metrics["runtime"] = runtime_settings(model)
    return metrics


def measure_saved_model(model_dir: Union[str, Path], texts: Sequence[str], labels: Sequence[int],
                        latency: bool = True, memory: bool = True, max_latency_batches: int = 100,
                        counts: Optional[Dict[str, int]] = None, compile_inc: bool = True,
                        predictions: bool = False,
                        validation: Optional[Tuple[Sequence[str], Sequence[int]]] = None) -> Dict[str, Any]:
    """Load a saved folder and measure everything: quality, latency, runtime settings, parameters, disk,
    memory (``predictions=True``: also each sentence's predicted label, as :func:`evaluate_model`).
    ``validation`` (texts, labels): also the quality on that split, as ``metrics["validation"]``, the figure to
    choose models and settings by (the test figures only report).

    An INC int8 graph is measured the way it is meant to run, lowered with ``torch.compile``
    (``compile_inc=False``: eager); its one-time compilation is timed apart from the latency figures, as
    ``compile_seconds``.
    """
    from .formats import load_model, model_format
    from .modeling import load_tokenizer, parameter_counts

    fmt = model_format(model_dir)
    model = load_model(model_dir, **({"compile": True} if fmt == "inc" and compile_inc else {}))
    tokenizer = load_tokenizer(model_dir, apply_normalization=False)
    compile_seconds = None
    if getattr(model, "compiled", False):
        t0 = time.perf_counter()
        _forward(model, _encode(tokenizer, list(texts[:2]), 128))
        compile_seconds = time.perf_counter() - t0
    metrics = evaluate_model(model, tokenizer, texts, labels, latency=latency,
                             max_latency_batches=max_latency_batches, predictions=predictions)
    if validation is not None:
        val_texts, val_labels = validation
        predicted = predict_logits(model, tokenizer, val_texts).argmax(-1).tolist()
        metrics["validation"] = {**classification_metrics(val_labels, predicted, num_labels=model.config.num_labels),
                                 "n_eval": len(val_texts)}
    metrics["format"] = fmt
    if compile_seconds is not None:
        metrics["compile_seconds"] = compile_seconds
    if isinstance(model, PreTrainedModel):
        metrics.update(parameter_counts(model))
    elif counts:
        metrics.update(counts)  # OpenVINO IR / INC graph: counts of the PyTorch model it was converted from
    metrics.update(disk_size(model_dir))
    if memory:
        metrics.update(peak_memory(model_dir, list(texts)[:64]))
    return metrics
