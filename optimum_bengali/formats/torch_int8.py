"""PyTorch dynamic int8 folders: int8 Linear weights, scales and zero points in safetensors (never pickle)
plus ``torch_int8_config.json``; :class:`TorchInt8ModelForSequenceClassification` loads them back."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Dict, Union

import torch
from safetensors.torch import load_file, save_file
from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear
from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic
from transformers import AutoConfig, AutoModelForSequenceClassification, PreTrainedModel

from ..modeling import distinct_storage
from .registry import ModelFormat, register_format

TORCH_INT8_FILE = "torch_int8_config.json"
WEIGHTS = "model.safetensors"


def quantize_linear_int8(model: PreTrainedModel) -> PreTrainedModel:
    """Replace every ``nn.Linear`` with a dynamically quantized int8 Linear (in place)."""
    model.eval()
    with warnings.catch_warnings():  # torch announces the move of these kernels to torchao; they still run
        warnings.filterwarnings("ignore", message=r"torch\.quantize_per_tensor, torch\.quantize_per_channel")
        return quantize_dynamic(model, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8,
                                inplace=True)


def save_int8(model: PreTrainedModel, folder: Union[str, Path]) -> None:
    """Write config, int8 safetensors weights and ``torch_int8_config.json`` to ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors: Dict[str, torch.Tensor] = {}
    quantized = []
    for name, module in model.named_modules():
        if isinstance(module, DynamicLinear):
            w = module.weight()
            tensors[f"{name}.weight_int8"] = w.int_repr().contiguous()
            tensors[f"{name}.weight_scale"] = w.q_per_channel_scales().float().contiguous()
            tensors[f"{name}.weight_zero_point"] = w.q_per_channel_zero_points().contiguous()
            if module.bias() is not None:
                tensors[f"{name}.bias"] = module.bias().detach().contiguous()
            quantized.append(name)
    for name, tensor in model.state_dict().items():
        if isinstance(tensor, torch.Tensor) and not tensor.is_quantized and not any(
                name.startswith(q + ".") for q in quantized):
            tensors[name] = tensor.detach().contiguous()
    save_file(distinct_storage(tensors), str(folder / WEIGHTS), metadata={"format": "pt"})
    model.config.save_pretrained(folder)
    (folder / TORCH_INT8_FILE).write_text(json.dumps(
        {"method": "torch_dynamic_int8", "weight_scheme": "per_channel_affine", "axis": 0,
         "modules": quantized}, indent=2), encoding="utf-8")


class TorchInt8ModelForSequenceClassification:
    """Loader for folders written by the ``torch`` backend: ``.from_pretrained(folder)`` returns the
    int8 ``PreTrainedModel`` (an ordinary transformers model whose Linear layers are int8)."""

    @classmethod
    def from_pretrained(cls, folder: Union[str, Path]) -> PreTrainedModel:
        folder = Path(folder)
        spec = json.loads((folder / TORCH_INT8_FILE).read_text(encoding="utf-8"))
        config = AutoConfig.from_pretrained(str(folder), trust_remote_code=False)
        model = quantize_linear_int8(AutoModelForSequenceClassification.from_config(config))
        tensors = load_file(str(folder / WEIGHTS))
        modules = dict(model.named_modules())
        for name in spec["modules"]:
            w = torch._make_per_channel_quantized_tensor(
                tensors.pop(f"{name}.weight_int8"), tensors.pop(f"{name}.weight_scale").double(),
                tensors.pop(f"{name}.weight_zero_point"), spec.get("axis", 0))
            modules[name].set_weight_bias(w, tensors.pop(f"{name}.bias", None))
        persistent = set(model.state_dict())
        targets = {k: v for k, v in [*model.named_parameters(), *model.named_buffers()] if k in persistent}
        unexpected = sorted(set(tensors) - set(targets))
        missing = sorted(set(targets) - set(tensors))
        if unexpected or missing:
            raise ValueError(f"{folder}: weights do not match the config (missing {missing[:5]}, "
                             f"unexpected {unexpected[:5]})")
        with torch.no_grad():
            for name, tensor in tensors.items():
                targets[name].copy_(tensor)
        return model.eval()


TORCH_INT8 = register_format(ModelFormat(
    name="torch-int8", marker=TORCH_INT8_FILE, save=save_int8,
    load=lambda folder, **kwargs: TorchInt8ModelForSequenceClassification.from_pretrained(folder),
    loader="optimum_bengali import TorchInt8ModelForSequenceClassification"))
