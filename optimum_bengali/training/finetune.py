"""The ``finetune`` step: train the current model on the labelled data (also used to recover accuracy)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, List, Literal, Optional, Sequence

from ..registry import register_step
from ..steps import MAX_EPOCHS, SettingError, Step, setting
from .trainer import BestWeights, balanced_class_weights, train_classifier

if TYPE_CHECKING:  # pragma: no cover
    from ..state import CompressionState


#: What ``finetune()`` and ``optimum-bengali finetune`` use for a teacher when a setting is not given (the step's
#: own defaults stay those of a short recovery fine-tune). Chosen on validation: on BEmoC one-epoch trials gave
#: validation macro-F1 50.8 / 52.9 / 55.1 for 5e-5 / 8e-5 / 1.5e-4, and with 1.5e-4 the best epoch was the
#: fifth of six (early stopping, patience 2); on a second 6-class Bengali set 1.5e-4 for 6 epochs beat 8e-5
#: for 2 (validation still rising at epoch 6, which early stopping lets run to the end).
TEACHER_DEFAULTS = {"epochs": 6.0, "learning_rate": 1.5e-4, "batch_size": 32, "early_stopping_patience": 2}


@register_step("finetune")
@dataclass
class FinetuneStep(Step):
    """Fine-tune the model with ``transformers.Trainer``; keeps the weights with the best validation macro-F1.

    ``class_weights: balanced`` weights the loss by inverse class frequency (for imbalanced data: minority
    classes count as much as frequent ones); ``early_stopping_patience`` stops after that many epochs
    (evaluations) without a better validation macro-F1. ``learning_rate_candidates``: first train a copy
    of the model for ``trial_epochs`` with each rate, then train with the one whose best validation
    macro-F1 is highest (ties: the first); the trials' scores are written into the report.
    """

    trains = True

    epochs: float = setting(3.0, min=0, min_exclusive=True, max=MAX_EPOCHS)
    learning_rate: float = setting(5e-5, min=0, min_exclusive=True)
    batch_size: int = setting(16, min=1)
    max_length: int = setting(128, min=8)
    max_steps: int = setting(-1, help="stop after this many optimizer steps (-1: run all epochs)")
    warmup_ratio: float = setting(0.1, min=0, max=1)
    weight_decay: float = setting(0.01, min=0)
    lr_scheduler_type: Literal["linear", "cosine", "constant_with_warmup"] = "linear"
    class_weights: Optional[Literal["balanced"]] = None
    early_stopping_patience: Optional[int] = setting(None, min=1)
    learning_rate_candidates: Optional[List[float]] = None
    trial_epochs: float = setting(1.0, min=0, min_exclusive=True, max=MAX_EPOCHS)
    seed: Optional[int] = None

    def check(self) -> None:
        if self.learning_rate_candidates is not None and (
                not self.learning_rate_candidates or min(self.learning_rate_candidates) <= 0):
            raise SettingError("learning_rate_candidates", "give one or more learning rates > 0")

    def _train(self, model: Any, state: "CompressionState", learning_rate: float, epochs: float,
               weights: Optional[List[float]], patience: Optional[int], callbacks: Sequence[Any] = (),
               load_best: bool = True, record: Optional[Dict[str, Any]] = None) -> Any:
        return train_classifier(
            model, state.tokenizer, state.data, state.work_dir / "finetune", epochs=epochs,
            learning_rate=learning_rate, batch_size=self.batch_size, max_length=self.max_length,
            seed=self.seed if self.seed is not None else state.seed, max_steps=self.max_steps,
            warmup_ratio=self.warmup_ratio, weight_decay=self.weight_decay,
            early_stopping_patience=patience, class_weights=weights,
            lr_scheduler_type=self.lr_scheduler_type, callbacks=callbacks, progress=state.progress,
            load_best=load_best, record=record)

    def apply(self, state: "CompressionState") -> None:
        model = state.torch_model("finetune")
        weights = None
        if self.class_weights == "balanced":
            weights = balanced_class_weights(state.data.labels("train"), len(state.data.label_names))
        learning_rate, trials = self.learning_rate, {}
        for candidate in self.learning_rate_candidates or []:
            score = BestWeights(keep_weights=False)  # a trial's model is thrown away: its score is enough
            self._train(copy.deepcopy(model), state, candidate, self.trial_epochs, weights, None, [score],
                        load_best=False)
            trials[candidate] = score.best if score.best is not None else -1.0
        if trials:  # the measured choice, not a guess
            learning_rate = max(trials, key=lambda lr: (trials[lr], -list(trials).index(lr)))
        record: Dict[str, Any] = {}  # validation macro-F1 of every evaluation and the kept step
        state.model = self._train(model, state, learning_rate, self.epochs, weights, self.early_stopping_patience,
                                  record=record)
        note = {**record, "epochs": self.epochs, "max_steps": self.max_steps, "learning_rate": learning_rate,
                "batch_size": self.batch_size, "max_length": self.max_length,
                "lr_scheduler_type": self.lr_scheduler_type}
        if trials:
            note["learning_rate_trials"] = {f"{lr:g}": round(score, 4) for lr, score in trials.items()}
            note["trial_epochs"] = self.trial_epochs
        if weights is not None:
            note["class_weights"] = {name: round(w, 4) for name, w in zip(state.data.label_names, weights)}
        state.note(**note)
