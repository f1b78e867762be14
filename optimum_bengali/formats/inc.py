"""Intel Neural Compressor int8 folders: INC's own PT2E save (``quantized_weight.pt``, a PT2 archive of raw
tensor bytes and a JSON graph, no pickle, and ``qconfig.json``), the config and ``inc_config.json``;
:class:`IncInt8ModelForSequenceClassification` loads them back (extra ``[inc]``). The graph runs the int8
ops in PT2E's reference form (quantize/dequantize around FP32 kernels) unless compiled with ``torch.compile``.
"""

from __future__ import annotations

import inspect
import json
import shutil
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import torch
from transformers import AutoConfig, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

from ..errors import ModelError
from .registry import ModelFormat, register_format

INC_FILE = "inc_config.json"
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def require_inc() -> None:
    try:
        import neural_compressor.torch.quantization  # noqa: F401 (only checks that it imports)
    except ImportError as exc:
        raise ModelError("backend 'inc' needs Intel Neural Compressor: pip install 'optimum-bengali[inc]' "
                         f"(neural-compressor[pt]); import failed: {exc}") from None


def input_names(model: PreTrainedModel) -> List[str]:
    """The token inputs the classifier's ``forward`` accepts, in a fixed order."""
    params = inspect.signature(model.forward).parameters
    return [name for name in _INPUTS if name in params]


def positional_inputs(enc: Dict[str, Any], names: List[str]) -> Tuple[torch.Tensor, ...]:
    ids = enc["input_ids"]
    return tuple(enc[n] if n in enc else torch.zeros_like(ids) for n in names)


def save_inc(quantized: Any, example: Tuple[torch.Tensor, ...], config: Any, folder: Union[str, Path],
             names: List[str], mode: str) -> None:
    """INC's save (PT2 archive + ``qconfig.json``), the model config and ``inc_config.json``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    quantized.save(example_inputs=example, output_dir=str(folder))  # INC attaches its PT2E ``save``
    config.save_pretrained(folder)
    (folder / INC_FILE).write_text(json.dumps({"method": f"inc_pt2e_{mode}_int8", "inputs": names},
                                              indent=2), encoding="utf-8")


class IncInt8Classifier(torch.nn.Module):
    """An INC int8 graph behind the usual classifier call: ``model(**tokenizer(...)).logits``."""

    #: what the runtime report says it runs in (FP32 weights with int8 quantize/dequantize ops around them)
    runtime_precision = "int8 q/dq PT2E graph"

    def __init__(self, graph: torch.nn.Module, config: Any, names: List[str]) -> None:
        super().__init__()
        self.graph, self.config, self.names = graph, config, names
        self.compiled = False
        self.source: Optional[str] = None  # the folder it was loaded from (what saving it copies)

    def compile_graph(self) -> "IncInt8Classifier":
        """Lower the int8 graph with ``torch.compile`` (TorchInductor, x86 int8 kernels, frozen weights), the
        way PT2E int8 models are meant to run on CPUs. Compilation happens on the first call of each new
        input shape (dynamic shapes), so time a first call separately from the calls after it."""
        import torch._inductor.config as inductor_config

        inductor_config.freezing = True  # fold the quantize/dequantize of constant weights into int8 weights
        self.graph = torch.compile(self.graph, dynamic=True)
        self.compiled = True
        return self

    def train(self, mode: bool = True) -> "IncInt8Classifier":
        """Inference only: an exported graph has no training mode (``.eval()`` is a no-op)."""
        if mode:
            raise NotImplementedError("an INC int8 graph is for inference only")
        self.training = False
        return self

    def forward(self, input_ids: torch.Tensor, **inputs: torch.Tensor) -> SequenceClassifierOutput:
        inputs["input_ids"] = input_ids
        return SequenceClassifierOutput(logits=self.graph(*positional_inputs(inputs, self.names)))


class IncInt8ModelForSequenceClassification:
    """Loader for folders written by the ``inc`` backend: ``.from_pretrained(folder)``."""

    @classmethod
    def from_pretrained(cls, folder: Union[str, Path], compile: bool = False) -> IncInt8Classifier:
        """Load the int8 graph; ``compile=True`` lowers it with ``torch.compile`` (see
        :meth:`IncInt8Classifier.compile_graph`)."""
        require_inc()
        from neural_compressor.torch.quantization import load

        folder = Path(folder)
        spec = json.loads((folder / INC_FILE).read_text(encoding="utf-8"))
        graph = load(str(folder))
        config = AutoConfig.from_pretrained(str(folder), trust_remote_code=False)
        model = IncInt8Classifier(graph, config, spec["inputs"]).eval()
        model.source = str(folder)
        return model.compile_graph() if compile else model


def save_inc_folder(model: "IncInt8Classifier", folder: Union[str, Path]) -> None:
    """Write a loaded INC classifier to ``folder``: the files it was loaded from (INC's PT2 archive cannot be
    written again from the loaded graph without the example inputs it was exported with)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for path in Path(model.source).iterdir():
        if path.is_file():
            shutil.copy2(path, folder / path.name)


INC = register_format(ModelFormat(
    name="inc", marker=INC_FILE, load=IncInt8ModelForSequenceClassification.from_pretrained, save=save_inc_folder,
    loader="optimum_bengali import IncInt8ModelForSequenceClassification"))
