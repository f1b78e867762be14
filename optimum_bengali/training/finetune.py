"""The ``finetune`` step: train the current model on the labelled data (also used to recover accuracy)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

from ..registry import register_step
from ..steps import Step, setting
from .trainer import train_classifier

if TYPE_CHECKING:  # pragma: no cover
    from ..pipeline import CompressionState


@register_step("finetune")
@dataclass
class FinetuneStep(Step):
    """Fine-tune the model with ``transformers.Trainer``; keeps the checkpoint with the best val macro-F1."""

    epochs: float = setting(3.0, min=0, min_exclusive=True)
    learning_rate: float = setting(5e-5, min=0, min_exclusive=True)
    batch_size: int = setting(16, min=1)
    max_length: int = setting(128, min=8)
    max_steps: int = setting(-1, help="stop after this many optimizer steps (-1: run all epochs)")
    warmup_ratio: float = setting(0.1, min=0, max=1)
    weight_decay: float = setting(0.01, min=0)
    early_stopping_patience: Optional[int] = None
    seed: Optional[int] = None

    def apply(self, state: "CompressionState") -> None:
        model = state.torch_model("finetune")
        state.model = train_classifier(
            model, state.tokenizer, state.data, state.work_dir / "finetune", epochs=self.epochs,
            learning_rate=self.learning_rate, batch_size=self.batch_size, max_length=self.max_length,
            seed=self.seed if self.seed is not None else state.seed, max_steps=self.max_steps,
            warmup_ratio=self.warmup_ratio, weight_decay=self.weight_decay,
            early_stopping_patience=self.early_stopping_patience, progress=state.progress)
        state.note(epochs=self.epochs, max_steps=self.max_steps)
