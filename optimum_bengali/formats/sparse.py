"""Compressed storage for unstructured-sparse classifiers: a bitmask and the non-zero values.

Each 2-D floating-point weight with at least ``min_sparsity`` zeros is stored as ``<name>.__mask__``
(one bit per element, ``numpy.packbits``, uint8) and ``<name>.__values__`` (the non-zero entries in
row-major order); every other tensor is stored as it is. Everything is in one safetensors file
(``model.sparse.safetensors``, no pickle) next to ``config.json`` and ``sparse_config.json``;
:class:`SparseModelForSequenceClassification` rebuilds the dense model. At 50% sparsity a pruned matrix
takes 53% of its dense bytes, at 90% 13%. This saves disk and download, not time or memory: the loaded
model is dense again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, Union

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, AutoModelForSequenceClassification, PreTrainedModel

from ..modeling import distinct_storage
from .registry import ModelFormat, register_format

SPARSE_FILE = "sparse_config.json"

WEIGHTS = "model.sparse.safetensors"
_MASK, _VALUES = ".__mask__", ".__values__"


def save_sparse(model: PreTrainedModel, folder: Union[str, Path], min_sparsity: float = 0.3) -> Dict[str, int]:
    """Write ``model`` to ``folder`` with sparse matrices as bitmask + values.

    Returns the number of matrices stored sparse and the size of the weights file in bytes."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors: Dict[str, torch.Tensor] = {}
    sparse = []
    state = {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}
    for name, tensor in distinct_storage(state).items():
        nonzero = tensor != 0
        if (tensor.is_floating_point() and tensor.dim() == 2 and tensor.numel() >= 64
                and 1 - float(nonzero.float().mean()) >= min_sparsity):
            bits = np.packbits(nonzero.numpy().reshape(-1))
            tensors[name + _MASK] = torch.from_numpy(bits)
            tensors[name + _VALUES] = tensor[nonzero].contiguous()
            sparse.append({"name": name, "shape": list(tensor.shape)})
        else:
            tensors[name] = tensor.contiguous()
    save_file(tensors, str(folder / WEIGHTS), metadata={"format": "pt"})
    model.config.save_pretrained(folder)
    (folder / SPARSE_FILE).write_text(json.dumps({"format": "bitmask+values", "tensors": sparse}, indent=2),
                                      encoding="utf-8")
    return {"sparse_tensors": len(sparse), "bytes": (folder / WEIGHTS).stat().st_size}


def load_sparse_state_dict(folder: Union[str, Path]) -> Dict[str, torch.Tensor]:
    """The dense state dict of a folder written by :func:`save_sparse`."""
    folder = Path(folder)
    spec = json.loads((folder / SPARSE_FILE).read_text(encoding="utf-8"))
    tensors = load_file(str(folder / WEIGHTS))
    for entry in spec["tensors"]:
        name, shape = entry["name"], entry["shape"]
        numel = int(np.prod(shape))
        mask = np.unpackbits(tensors.pop(name + _MASK).numpy(), count=numel).astype(bool)
        values = tensors.pop(name + _VALUES)
        dense = torch.zeros(numel, dtype=values.dtype)
        dense[torch.from_numpy(mask)] = values
        tensors[name] = dense.reshape(shape)
    return tensors


class SparseModelForSequenceClassification:
    """Loader for folders written by :func:`save_sparse`: ``.from_pretrained(folder)`` returns the dense
    ``PreTrainedModel`` (zeros restored in place)."""

    @classmethod
    def from_pretrained(cls, folder: Union[str, Path]) -> PreTrainedModel:
        folder = Path(folder)
        config = AutoConfig.from_pretrained(str(folder))
        model = AutoModelForSequenceClassification.from_config(config)
        state = load_sparse_state_dict(folder)
        missing, unexpected = model.load_state_dict(state, strict=False)
        tied = set(getattr(model, "_tied_weights_keys", None) or [])
        missing = [k for k in missing if k not in tied]
        if missing or unexpected:
            raise ValueError(f"{folder}: weights do not match the config (missing {missing[:5]}, "
                             f"unexpected {unexpected[:5]})")
        return model.eval()


SPARSE = register_format(ModelFormat(
    name="sparse", marker=SPARSE_FILE,
    load=lambda folder, **kwargs: SparseModelForSequenceClassification.from_pretrained(folder),
    loader="optimum_bengali import SparseModelForSequenceClassification"))
