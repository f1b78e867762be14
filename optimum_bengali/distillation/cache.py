"""On-disk cache of teacher logits for black-box distillation.

A cache entry is keyed by the teacher (config + weights), the training texts and labels, and the
tokenizer; it stores one row of logits per training row. An entry that does not match the data
(row count or fingerprint) is rebuilt, never used.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from ..distributed import gather, is_main_process, rank, world_size
from ..evaluation import predict_logits

logger = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    """``$OPTIMUM_BENGALI_CACHE`` or ``~/.cache/optimum_bengali``, plus ``teacher_logits``."""
    root = os.environ.get("OPTIMUM_BENGALI_CACHE") or Path.home() / ".cache" / "optimum_bengali"
    return Path(root) / "teacher_logits"


def model_fingerprint(model: torch.nn.Module) -> str:
    """A hash of a model's config and every weight."""
    h = hashlib.sha256()
    config = getattr(model, "config", None)
    if config is not None:
        h.update(config.to_json_string(use_diff=False).encode())
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes()
                 if tensor.numel() else b"")
    return h.hexdigest()[:16]


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """A hash of a tokenizer's serialization, less the padding/truncation state that calls change."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        spec = json.loads(backend.to_str())
        spec.pop("padding", None)
        spec.pop("truncation", None)
        text = json.dumps(spec, sort_keys=True)
    else:
        text = repr(sorted(tokenizer.get_vocab().items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cached_teacher_logits(teacher: torch.nn.Module, tokenizer: Any, texts: Sequence[str], data_fingerprint: str,
                          max_length: int = 128, cache_dir: Optional[Union[str, Path]] = None,
                          progress: bool = True) -> Tuple[np.ndarray, bool]:
    """Teacher logits for ``texts`` from the cache, or computed once and cached. Returns ``(logits, hit)``.

    Under ``torchrun`` each process computes an interleaved share of the rows and the shares are gathered,
    so the teacher runs over the training split once in all; the main process writes the cache."""
    folder = Path(cache_dir) if cache_dir else default_cache_dir()
    key = hashlib.sha256("|".join([model_fingerprint(teacher), tokenizer_fingerprint(tokenizer), data_fingerprint,
                                   str(max_length)]).encode()).hexdigest()[:24]
    array_path, meta_path = folder / f"{key}.npy", folder / f"{key}.json"
    cached = _read(array_path, meta_path, data_fingerprint, len(texts))
    # with many processes (torchrun) the decision is common: every process hits, or all compute together
    if all(gather(cached is not None)):
        return cached, True
    # each process computes the logits of its own share of the rows; the shares are gathered on every process
    teacher.eval()
    mine = list(range(rank(), len(texts), world_size()))
    part = predict_logits(teacher, tokenizer, [texts[i] for i in mine], max_length=max_length,
                          progress=progress and is_main_process()) if mine else None
    logits: Optional[np.ndarray] = None
    for rows, values in gather((mine, part)):
        if values is None:
            continue
        if logits is None:
            logits = np.zeros((len(texts), values.shape[1]), dtype=values.dtype)
        logits[rows] = values
    assert logits is not None, "no training rows"
    if is_main_process():
        folder.mkdir(parents=True, exist_ok=True)
        tmp = array_path.with_suffix(".tmp.npy")
        np.save(tmp, logits)
        os.replace(tmp, array_path)
        meta_path.write_text(json.dumps({"data": data_fingerprint, "rows": len(texts), "max_length": max_length}))
    return logits, False


def _read(array_path: Path, meta_path: Path, data_fingerprint: str, rows: int) -> Optional[np.ndarray]:
    """The cached logits if the entry is whole and matches the data, else None (logged)."""
    if not (array_path.is_file() and meta_path.is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text())
        logits = np.load(array_path)
    except (OSError, ValueError):
        logger.warning("teacher logits cache %s is unreadable; rebuilding", array_path)
        return None
    if meta.get("data") == data_fingerprint and logits.shape[0] == rows == meta.get("rows"):
        return logits
    logger.warning("teacher logits cache %s does not match the data; rebuilding", array_path)
    return None
