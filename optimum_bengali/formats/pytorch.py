"""Plain transformers folders (``config.json`` + safetensors): the format every other one starts from."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Dict, Union

from transformers import AutoModelForSequenceClassification, PreTrainedModel

from ..errors import ModelError
from ..modeling import check_sequence_classifier, load_config
from .registry import ModelFormat, register_format

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")


def save_pytorch(model: PreTrainedModel, folder: Union[str, Path]) -> None:
    """``save_pretrained`` with the key names the model uses in memory (``LayerNorm.weight``/``.bias``).

    transformers 5 writes a model loaded from a legacy-named checkpoint back under the legacy names
    (``LayerNorm.gamma``/``.beta``) by default; readers that load the file with ``load_state_dict`` or plain
    safetensors then miss those tensors. Every PyTorch folder this package writes uses the standard names.
    """
    kwargs: Dict[str, Any] = {"safe_serialization": True}
    if "save_original_format" in inspect.signature(model.save_pretrained).parameters:
        kwargs["save_original_format"] = False
    model.save_pretrained(folder, **kwargs)


def load_pytorch(model: Union[str, Path], trust_remote_code: bool = False, **kwargs: Any) -> PreTrainedModel:
    """Any ``AutoModelForSequenceClassification`` folder or Hub id, after a one-line check of its config
    and (for a folder) its weight files. Code in the folder runs only with ``trust_remote_code=True``."""
    check_sequence_classifier(load_config(model, trust_remote_code=trust_remote_code), str(model))
    path = Path(str(model))
    if path.is_dir() and not any((path / f).is_file() for f in WEIGHT_FILES):
        raise ModelError(f"model folder {str(model)!r} has no weights ({' or '.join(WEIGHT_FILES[::2])})")
    return AutoModelForSequenceClassification.from_pretrained(str(model), trust_remote_code=trust_remote_code,
                                                              **kwargs)


PYTORCH = register_format(ModelFormat(
    name="pytorch", marker=None, load=load_pytorch, save=save_pytorch,
    loader="transformers import AutoModelForSequenceClassification", trainable=True))
