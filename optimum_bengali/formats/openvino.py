"""OpenVINO IR folders (``openvino_model.xml``), loaded with optimum-intel and the runtime settings saved
with them (``openvino_runtime.json``, e.g. f32 precision) plus this process's thread count."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Union

from ..runtime import OPENVINO_RUNTIME_FILE, ov_config
from .registry import ModelFormat, register_format

OPENVINO_FILE = "openvino_model.xml"


def load_openvino(folder: Union[str, Path], **kwargs: Any) -> Any:
    from optimum.intel import OVModelForSequenceClassification

    kwargs["ov_config"] = {**ov_config(folder), **kwargs.get("ov_config", {})}
    return OVModelForSequenceClassification.from_pretrained(str(folder), **kwargs)


def save_openvino(model: Any, folder: Union[str, Path]) -> None:
    """The IR (weights as they are, no FP16 compression) and config; a precision the model was given
    (``INFERENCE_PRECISION_HINT``, e.g. f32 by the ``export`` step) goes into ``openvino_runtime.json``,
    which :func:`load_openvino` applies, so the folder runs as it was measured."""
    folder = Path(folder)
    model.save_pretrained(folder)
    hint = (getattr(model, "ov_config", None) or {}).get("INFERENCE_PRECISION_HINT")
    if hint:
        (folder / OPENVINO_RUNTIME_FILE).write_text(json.dumps({"INFERENCE_PRECISION_HINT": hint}, indent=2),
                                                    encoding="utf-8")


OPENVINO = register_format(ModelFormat(
    name="openvino", marker=OPENVINO_FILE, load=load_openvino, save=save_openvino,
    loader="optimum.intel import OVModelForSequenceClassification"))
