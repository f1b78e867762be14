"""Reads a sparse classifier folder back into a dense model, with nothing but torch, numpy, safetensors and
transformers. This file is also written into every sparse folder as ``modeling_sparse.py`` (named in the
config's ``auto_map``), so ``AutoModelForSequenceClassification.from_pretrained(folder,
trust_remote_code=True)`` loads the folder without optimum-bengali installed.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Dict, Union

import numpy as np
import torch
from safetensors.torch import load_file
from transformers import AutoConfig, AutoModelForSequenceClassification, PreTrainedModel

SPARSE_FILE = "sparse_config.json"
WEIGHTS = "model.sparse.safetensors"
MASK, VALUES = ".__mask__", ".__values__"


def dense_state_dict(folder: Union[str, Path]) -> Dict[str, torch.Tensor]:
    """The dense state dict of a sparse folder: each ``<name>.__mask__`` (``numpy.packbits`` of the non-zero
    pattern) and ``<name>.__values__`` (the non-zero entries, row-major) pair becomes the matrix again."""
    folder = Path(folder)
    spec = json.loads((folder / SPARSE_FILE).read_text(encoding="utf-8"))
    tensors = load_file(str(folder / WEIGHTS))
    for entry in spec["tensors"]:
        name, shape = entry["name"], entry["shape"]
        numel = int(np.prod(shape))
        mask = np.unpackbits(tensors.pop(name + MASK).numpy(), count=numel).astype(bool)
        values = tensors.pop(name + VALUES)
        dense = torch.zeros(numel, dtype=values.dtype)
        dense[torch.from_numpy(mask)] = values
        tensors[name] = dense.reshape(shape)
    return tensors


class SparseCheckpointForSequenceClassification:
    """``from_pretrained(folder)`` returns the ordinary dense classifier of the folder's config
    (e.g. ``BertForSequenceClassification``) with the stored weights, zeros restored in place."""

    @classmethod
    def from_pretrained(cls, folder: Union[str, Path], *args: Any, config: Any = None,
                        **kwargs: Any) -> PreTrainedModel:
        folder = Path(folder)
        config = (copy.deepcopy(config) if config is not None
                  else AutoConfig.from_pretrained(str(folder), trust_remote_code=False))
        config.auto_map = {}  # build the library's own class, not this loader again
        model = AutoModelForSequenceClassification.from_config(config)
        state = dense_state_dict(folder)
        missing, unexpected = model.load_state_dict(state, strict=False)
        tied = set(getattr(model, "_tied_weights_keys", None) or [])
        missing = [k for k in missing if k not in tied]
        if missing or unexpected:
            raise ValueError(f"{folder}: weights do not match the config (missing {missing[:5]}, "
                             f"unexpected {unexpected[:5]})")
        return model.eval()
