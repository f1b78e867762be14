"""The ``finetune`` step: train the current model on the labelled data (also used to recover accuracy)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Optional

from ..registry import register_step
from ..steps import Step, setting
from .trainer import balanced_class_weights, train_classifier

if TYPE_CHECKING:  # pragma: no cover
    from ..state import CompressionState


@register_step("finetune")
@dataclass
class FinetuneStep(Step):
    """Fine-tune the model with ``transformers.Trainer``; keeps the weights with the best validation macro-F1.

    ``class_weights: balanced`` weights the loss by inverse class frequency (for imbalanced data: minority
    classes count as much as frequent ones); ``early_stopping_patience`` stops after that many epochs
    (evaluations) without a better validation macro-F1.
    """

    trains = True

    epochs: float = setting(3.0, min=0, min_exclusive=True)
    learning_rate: float = setting(5e-5, min=0, min_exclusive=True)
    batch_size: int = setting(16, min=1)
    max_length: int = setting(128, min=8)
    max_steps: int = setting(-1, help="stop after this many optimizer steps (-1: run all epochs)")
    warmup_ratio: float = setting(0.1, min=0, max=1)
    weight_decay: float = setting(0.01, min=0)
    lr_scheduler_type: Literal["linear", "cosine", "constant_with_warmup"] = "linear"
    class_weights: Optional[Literal["balanced"]] = None
    early_stopping_patience: Optional[int] = setting(None, min=1)
    seed: Optional[int] = None

    def apply(self, state: "CompressionState") -> None:
        model = state.torch_model("finetune")
        weights = None
        if self.class_weights == "balanced":
            weights = balanced_class_weights(state.data.labels("train"), len(state.data.label_names))
        state.model = train_classifier(
            model, state.tokenizer, state.data, state.work_dir / "finetune", epochs=self.epochs,
            learning_rate=self.learning_rate, batch_size=self.batch_size, max_length=self.max_length,
            seed=self.seed if self.seed is not None else state.seed, max_steps=self.max_steps,
            warmup_ratio=self.warmup_ratio, weight_decay=self.weight_decay,
            early_stopping_patience=self.early_stopping_patience, class_weights=weights,
            lr_scheduler_type=self.lr_scheduler_type, progress=state.progress)
        note = {"epochs": self.epochs, "max_steps": self.max_steps, "learning_rate": self.learning_rate,
                "batch_size": self.batch_size, "max_length": self.max_length,
                "lr_scheduler_type": self.lr_scheduler_type}
        if weights is not None:
            note["class_weights"] = {name: round(w, 4) for name, w in zip(state.data.label_names, weights)}
        state.note(**note)
