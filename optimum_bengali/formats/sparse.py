"""Compressed storage for unstructured-sparse classifiers: a bitmask and the non-zero values.

Each 2-D floating-point weight with at least ``min_sparsity`` zeros is stored as ``<name>.__mask__``
(one bit per element, ``numpy.packbits``, uint8) and ``<name>.__values__`` (the non-zero entries in
row-major order); every other tensor is stored as it is. Everything is in one safetensors file
(``model.sparse.safetensors``, no pickle) next to ``config.json`` and ``sparse_config.json``;
:class:`SparseModelForSequenceClassification` rebuilds the dense model, and so does plain transformers with
``trust_remote_code=True`` (the folder carries its loader, ``modeling_sparse.py``). At 50% sparsity a pruned matrix
takes 53% of its dense bytes, at 90% 13%. This saves disk and download, not time or memory: the loaded
model is dense again.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Dict, Union

import numpy as np
import torch
from safetensors.torch import save_file
from transformers import PreTrainedModel

from ..modeling import distinct_storage
from .registry import ModelFormat, register_format
from .sparse_checkpoint import MASK, SPARSE_FILE, VALUES, WEIGHTS, SparseCheckpointForSequenceClassification

LOADER_FILE = "modeling_sparse.py"


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
            tensors[name + MASK] = torch.from_numpy(bits)
            tensors[name + VALUES] = tensor[nonzero].contiguous()
            sparse.append({"name": name, "shape": list(tensor.shape)})
        else:
            tensors[name] = tensor.contiguous()
    save_file(tensors, str(folder / WEIGHTS), metadata={"format": "pt"})
    config = copy.deepcopy(model.config)
    config.auto_map = {"AutoModelForSequenceClassification":
                       f"{Path(LOADER_FILE).stem}.{SparseCheckpointForSequenceClassification.__name__}"}
    config.save_pretrained(folder)
    shutil.copyfile(Path(__file__).with_name("sparse_checkpoint.py"), folder / LOADER_FILE)
    (folder / SPARSE_FILE).write_text(json.dumps({"format": "bitmask+values", "tensors": sparse}, indent=2),
                                      encoding="utf-8")
    return {"sparse_tensors": len(sparse), "bytes": (folder / WEIGHTS).stat().st_size}


class SparseModelForSequenceClassification(SparseCheckpointForSequenceClassification):
    """Loader for folders written by :func:`save_sparse`: ``.from_pretrained(folder)`` returns the dense
    ``PreTrainedModel`` (zeros restored in place). Plain transformers loads the same folder with
    ``AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=True)``."""


SPARSE = register_format(ModelFormat(
    name="sparse", marker=SPARSE_FILE, save=save_sparse,
    load=lambda folder, **kwargs: SparseModelForSequenceClassification.from_pretrained(folder),
    loader="optimum_bengali import SparseModelForSequenceClassification", trainable=True))
