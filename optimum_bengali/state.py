"""What recipe steps read and change while a recipe runs: the model, its tokenizer, the data, the report."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from .data import LabelledData
from .errors import ModelError


@dataclass
class ModelFacts:
    """What a recipe's steps are checked against before any weights load (:meth:`Step.preflight`): the model's
    config (a copy, which each step's check changes as the step would change the model), its tokenizer, the
    data, and the format the model would be saved in."""

    config: Any
    tokenizer: PreTrainedTokenizerBase
    data: LabelledData
    format: str = "pytorch"


@dataclass
class CompressionState:
    """What steps read and change. Steps replace ``model``/``tokenizer`` and append to ``report``."""

    model: Any
    tokenizer: PreTrainedTokenizerBase
    data: LabelledData
    teacher: PreTrainedModel
    teacher_source: str
    work_dir: Path
    seed: int = 42
    format: str = "pytorch"  # how the pipeline saves the model at the end: a name in optimum_bengali.formats
    progress: bool = True
    report: List[Dict[str, Any]] = field(default_factory=list)
    counts: Dict[str, int] = field(default_factory=dict)

    def note(self, **info: Any) -> None:
        """Add measured facts about the running step to the report (e.g. sparsity per layer)."""
        self.report[-1].update(info)

    def torch_model(self, step: str) -> PreTrainedModel:
        """The current model, which ``step`` needs to be a PyTorch ``PreTrainedModel``."""
        if not isinstance(self.model, PreTrainedModel):
            raise ModelError(f"step {step!r} needs a PyTorch model but the model is now {self.format}; "
                             "put quantization last in the recipe")
        return self.model
