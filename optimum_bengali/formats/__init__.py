"""Saved classifier folders of every kind: recognise one (:func:`model_format`) and load it
(:func:`load_model`). Each format is one module here, registered in :mod:`.registry`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Union

from safetensors import SafetensorError
from transformers import PreTrainedModel

from ..errors import ModelError, OptimumBengaliError
from ..modeling import check_sequence_classifier
from . import inc, openvino, pruned_heads, pytorch, sparse, torch_int8, torchao  # noqa: F401  (each registers its format)
from .registry import FORMATS, ModelFormat, register_format

__all__ = ["FORMATS", "ModelFormat", "register_format", "model_format", "load_model", "loader_of", "loader_kwargs_of"]


def model_format(path: Union[str, Path]) -> str:
    """The name of the format of a saved folder (``"pytorch"`` for plain transformers folders and Hub ids)."""
    folder = Path(path)
    for fmt in FORMATS.values():
        if fmt.matches(folder):
            return fmt.name
    return "pytorch"


def load_model(model: Union[str, Path, PreTrainedModel], **kwargs: Any) -> Any:
    """Load a classifier saved by this package (any format) or any ``AutoModelForSequenceClassification``.

    Returns a ``PreTrainedModel`` (PyTorch FP32 or torch int8), an ``OVModelForSequenceClassification`` or
    an INC int8 classifier; ``kwargs`` go to the format's loader.
    """
    if isinstance(model, PreTrainedModel):
        check_sequence_classifier(model.config, type(model).__name__)
        return model
    fmt = model_format(model)
    try:
        return FORMATS[fmt].load(model, **kwargs)
    except OptimumBengaliError:
        raise
    except (OSError, RuntimeError, ValueError, SafetensorError) as exc:  # truncated weights, a damaged IR, ...
        lines = [line for line in str(exc).splitlines() if line.strip()]  # OpenVINO's own reason comes last
        raise ModelError(f"cannot load {str(model)!r} ({fmt} format): {type(exc).__name__}: "
                         f"{lines[-1].strip() if lines else ''}; its files may be damaged or incomplete: copy or "
                         "save the model again") from None


def loader_of(fmt: str) -> str:
    """``"<module> import <Class>"``: what a user loads a folder of format ``fmt`` with."""
    return FORMATS.get(fmt, FORMATS["pytorch"]).loader


def loader_kwargs_of(fmt: str) -> str:
    """Keyword arguments a user's ``from_pretrained`` call needs for a folder of format ``fmt`` (or "")."""
    return FORMATS.get(fmt, FORMATS["pytorch"]).loader_kwargs
