"""One measurement module used by every step, the CLI and the benchmarks.

Quality: accuracy, macro-F1, weighted-F1 on a labelled split. Speed: latency p50/p95 of the model
call (tokenization excluded) on real sentences, batched in test-set order with dynamic padding, after
a warm-up. Size: parameters, non-zero parameters, bytes on disk; peak RSS in a fresh process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Union

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


def classification_metrics(labels: Sequence[int], predictions: Sequence[int]) -> Dict[str, float]:
    """Accuracy, macro-F1 and weighted-F1 (scikit-learn, the implementation `evaluate` wraps)."""
    return {
        "accuracy": float(accuracy_score(labels, predictions)),
        "macro_f1": float(f1_score(labels, predictions, average="macro", zero_division=0)),
        "weighted_f1": float(f1_score(labels, predictions, average="weighted", zero_division=0)),
    }


def measure_latency(model: Any, tokenizer: Any, texts: Sequence[str], batch_size: int = 1,
                    max_batches: int = 100, warmup: int = 5, repeats: int = 1,
                    max_length: int = 128) -> Dict[str, float]:
    """Latency (ms) of one model call on consecutive real sentences, with dynamic padding.

    Returns ``p50_ms``, ``p95_ms``, ``mean_ms``, ``throughput`` (sentences/s), ``mean_tokens``.
    """
    batches = [_encode(tokenizer, texts[i:i + batch_size], max_length)
               for i in range(0, len(texts), batch_size)][:max_batches]
    if not batches:
        raise ValueError("no sentences to time")
    for enc in batches[:warmup]:
        _forward(model, enc)
    times = []
    for _ in range(repeats):
        for enc in batches:
            t0 = time.perf_counter()
            _forward(model, enc)
            times.append(time.perf_counter() - t0)
    arr = np.asarray(times) * 1000.0
    n_sent = sum(int(b["input_ids"].shape[0]) for b in batches) * repeats
    tokens = [int(b["attention_mask"].sum()) / int(b["input_ids"].shape[0]) for b in batches]
    return {"p50_ms": float(np.percentile(arr, 50)), "p95_ms": float(np.percentile(arr, 95)),
            "mean_ms": float(arr.mean()), "throughput": float(n_sent / (arr.sum() / 1000.0)),
            "mean_tokens": float(np.mean(tokens))}


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


def peak_memory(model_dir: Union[str, Path], texts: Sequence[str], batch_size: int = 8) -> int:
    """Peak resident memory (bytes) of a fresh process that loads ``model_dir`` and classifies ``texts``."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8") as fh:
        json.dump(list(texts), fh, ensure_ascii=False)
    try:
        res = subprocess.run([sys.executable, "-m", "optimum_bengali.memory", str(model_dir), fh.name,
                              str(batch_size)], capture_output=True, text=True, check=True,
                             env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
    finally:
        os.unlink(fh.name)
    return int(res.stdout.strip().splitlines()[-1])


def evaluate_model(model: Any, tokenizer: Any, texts: Sequence[str], labels: Sequence[int],
                   latency: bool = True, latency_batch_sizes: Sequence[int] = (1, 8),
                   max_latency_batches: int = 100, max_length: int = 128) -> Dict[str, Any]:
    """Quality on ``texts``/``labels`` and, if asked, latency at the given batch sizes."""
    logits = predict_logits(model, tokenizer, texts, max_length=max_length)
    metrics: Dict[str, Any] = classification_metrics(labels, logits.argmax(-1).tolist())
    metrics["n_eval"] = len(texts)
    if latency:
        for bs in latency_batch_sizes:
            lat = measure_latency(model, tokenizer, texts, batch_size=bs, max_batches=max_latency_batches,
                                  max_length=max_length)
            metrics[f"latency_bs{bs}"] = lat
    return metrics


def measure_saved_model(model_dir: Union[str, Path], texts: Sequence[str], labels: Sequence[int],
                        latency: bool = True, memory: bool = True, max_latency_batches: int = 100,
                        counts: Optional[Dict[str, int]] = None) -> Dict[str, Any]:
    """Load a saved folder and measure everything: quality, latency, parameters, disk, peak memory."""
    from .modeling import load_model, load_tokenizer, model_format, parameter_counts

    model = load_model(model_dir)
    tokenizer = load_tokenizer(model_dir)
    metrics = evaluate_model(model, tokenizer, texts, labels, latency=latency,
                             max_latency_batches=max_latency_batches)
    metrics["format"] = model_format(model_dir)
    if isinstance(model, PreTrainedModel):
        metrics.update(parameter_counts(model))
    elif counts:
        metrics.update(counts)  # OpenVINO IR / INC graph: counts of the PyTorch model it was converted from
    metrics.update(disk_size(model_dir))
    if memory:
        metrics["peak_rss_bytes"] = peak_memory(model_dir, list(texts)[:64])
    return metrics
