"""torchao int8 folders: a transformers folder whose ``config.json`` carries a ``TorchAoConfig`` and whose
safetensors hold torchao's int8 weight tensors. Plain ``AutoModelForSequenceClassification.from_pretrained``
loads it (transformers' own torchao integration rebuilds the int8 tensors); nothing of this package is needed."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Union

from transformers import AutoModelForSequenceClassification, PreTrainedModel

from ..modeling import read_json
from .registry import ModelFormat, register_format

QUANT_METHOD = "torchao"


def is_torchao_folder(folder: Path) -> bool:
    """True when ``folder/config.json`` names torchao as its quantization method."""
    try:
        config = read_json(folder / "config.json")
    except (OSError, ValueError):
        return False
    return (config.get("quantization_config") or {}).get("quant_method") == QUANT_METHOD


def save_torchao(model: PreTrainedModel, folder: Union[str, Path]) -> None:
    """``save_pretrained``: transformers flattens torchao's tensors into safetensors and writes the config.

    The model must carry its ``hf_quantizer`` and ``config.quantization_config`` (the torchao backend sets
    both, as ``from_pretrained(..., quantization_config=TorchAoConfig(...))`` does)."""
    if getattr(model, "hf_quantizer", None) is None:
        raise ValueError("save_torchao: the model has no hf_quantizer; quantize it with the torchao backend")
    model.save_pretrained(folder, safe_serialization=True)


def load_torchao(folder: Union[str, Path], **kwargs: Any) -> PreTrainedModel:
    """The int8 model, loaded the way a user loads it: ``AutoModelForSequenceClassification.from_pretrained``."""
    return AutoModelForSequenceClassification.from_pretrained(str(folder), **kwargs).eval()


TORCHAO = register_format(ModelFormat(
    name="torchao", marker="config.json", detect=is_torchao_folder, save=save_torchao, load=load_torchao,
    loader="transformers import AutoModelForSequenceClassification"))
