"""OpenVINO IR folders (``openvino_model.xml``), loaded with optimum-intel and the runtime settings saved
with them (``openvino_runtime.json``, e.g. f32 precision) plus this process's thread count."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Union

from ..runtime import OPENVINO_RUNTIME_FILE, STATIC_LENGTHS_KEY, ov_config, saved_static_lengths
from .openvino_static import StaticLengthsModel
from .registry import ModelFormat, register_format

OPENVINO_FILE = "openvino_model.xml"


def load_openvino(folder: Union[str, Path], **kwargs: Any) -> Any:
    """The folder's IR with its saved runtime settings; with saved ``static_lengths`` (and no
    ``static_lengths=None`` passed) a :class:`StaticLengthsModel` around it."""
    from optimum.intel import OVModelForSequenceClassification

    lengths = kwargs.pop("static_lengths", saved_static_lengths(folder))
    kwargs["ov_config"] = {**ov_config(folder), **kwargs.get("ov_config", {})}
    model = OVModelForSequenceClassification.from_pretrained(str(folder), **kwargs)
    return StaticLengthsModel(model, lengths) if lengths else model


def save_openvino(model: Any, folder: Union[str, Path]) -> None:
    """The IR (weights as they are, no FP16 compression) and config; a precision the model was given
    (``INFERENCE_PRECISION_HINT``, e.g. f32 by the ``export`` step) and static-shape lengths
    (``static_lengths``) go into ``openvino_runtime.json``, which :func:`load_openvino` applies, so the folder
    runs as it was measured."""
    folder = Path(folder)
    model.save_pretrained(folder)
    _drop_auto_map(folder)
    settings: dict = {}
    hint = (getattr(model, "ov_config", None) or {}).get("INFERENCE_PRECISION_HINT")
    if hint:
        settings["INFERENCE_PRECISION_HINT"] = hint
    if getattr(model, STATIC_LENGTHS_KEY, None):
        settings[STATIC_LENGTHS_KEY] = list(getattr(model, STATIC_LENGTHS_KEY))
    if settings:
        (folder / OPENVINO_RUNTIME_FILE).write_text(json.dumps(settings, indent=2), encoding="utf-8")


def _drop_auto_map(folder: Path) -> None:
    """An IR needs no modeling code: an ``auto_map`` copied from a PyTorch folder (a head-pruned student's
    ``modeling_pruned_heads.py``) would name a file the folder does not hold."""
    path = folder / "config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    if config.pop("auto_map", None) is not None:
        path.write_text(json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


OPENVINO = register_format(ModelFormat(
    name="openvino", marker=OPENVINO_FILE, load=load_openvino, save=save_openvino,
    loader="optimum.intel import OVModelForSequenceClassification"))
