"""OpenVINO IR folders (``openvino_model.xml``), loaded with optimum-intel and the runtime settings saved
with them (``openvino_runtime.json``, e.g. f32 precision) plus this process's thread count."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Union

from ..runtime import ov_config
from .registry import ModelFormat, register_format

OPENVINO_FILE = "openvino_model.xml"


def load_openvino(folder: Union[str, Path], **kwargs: Any) -> Any:
    from optimum.intel import OVModelForSequenceClassification

    kwargs["ov_config"] = {**ov_config(folder), **kwargs.get("ov_config", {})}
    return OVModelForSequenceClassification.from_pretrained(str(folder), **kwargs)


OPENVINO = register_format(ModelFormat(
    name="openvino", marker=OPENVINO_FILE, load=load_openvino,
    loader="optimum.intel import OVModelForSequenceClassification"))
