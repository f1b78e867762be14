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
    """Teacher logits for ``texts`` from the cache, or computed once and cached. Returns ``(logits, hit)``."""
    folder = Path(cache_dir) if cache_dir else default_cache_dir()
    key = hashlib.sha256("|".join([model_fingerprint(teacher), tokenizer_fingerprint(tokenizer), data_fingerprint,
                                   str(max_length)]).encode()).hexdigest()[:24]
    array_path, meta_path = folder / f"{key}.npy", folder / f"{key}.json"
    if array_path.is_file() and meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text())
            logits = np.load(array_path)
            if meta.get("data") == data_fingerprint and logits.shape[0] == len(texts) == meta.get("rows"):
                return logits, True
            logger.warning("teacher logits cache %s does not match the data; rebuilding", array_path)
        except (OSError, ValueError):
            logger.warning("teacher logits cache %s is unreadable; rebuilding", array_path)
    teacher.eval()
    logits = predict_logits(teacher, tokenizer, list(texts), max_length=max_length, progress=progress)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = array_path.with_suffix(".tmp.npy")
    np.save(tmp, logits)
    os.replace(tmp, array_path)
    meta_path.write_text(json.dumps({"data": data_fingerprint, "rows": len(texts), "max_length": max_length}))
    return logits, False
