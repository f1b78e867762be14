"""One place that runs ``transformers.Trainer`` for every step that trains.

Because it is the stock ``Trainer`` (on accelerate), the same code runs on many GPUs or nodes with
``accelerate launch``. The best checkpoint is chosen by validation macro-F1.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Type

import numpy as np
import torch
import transformers
from datasets import Dataset
from transformers import (DataCollatorWithPadding, PreTrainedModel, PreTrainedTokenizerBase, Trainer,
                          TrainerCallback, TrainingArguments)

from ..data import LabelledData
from ..evaluation import classification_metrics

logger = logging.getLogger(__name__)
EXTRA_PREFIX = "extra_"


def _warmup(ratio: float) -> Dict[str, float]:
    """Warm-up as a fraction of the optimizer steps: ``warmup_steps`` below 1 is a ratio in transformers 5
    (``warmup_ratio`` is deprecated there), ``warmup_ratio`` before."""
    if int(transformers.__version__.split(".")[0]) >= 5:
        return {"warmup_steps": min(float(ratio), 0.999)}
    return {"warmup_ratio": float(ratio)}


def tokenize_split(tokenizer: PreTrainedTokenizerBase, ds: Dataset, max_length: int) -> Dataset:
    """Tokenize a split's ``text`` column (no padding: batches are padded dynamically)."""
    return ds.map(lambda b: tokenizer(b["text"], truncation=True, max_length=max_length), batched=True,
                  remove_columns=["text"], desc="tokenize")


class PaddingCollator:
    """Dynamic padding that also stacks ``extra_*`` float columns (e.g. cached teacher logits)."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase):
        self.pad = DataCollatorWithPadding(tokenizer)

    def __call__(self, features: List[Dict[str, Any]]) -> Dict[str, torch.Tensor]:
        extras = {k: [f.pop(k) for f in features] for k in list(features[0]) if k.startswith(EXTRA_PREFIX)}
        batch = self.pad(features)
        for key, values in extras.items():
            batch[key] = torch.tensor(np.asarray(values), dtype=torch.float32)
        return batch


def _compute_metrics(pred: Any) -> Dict[str, float]:
    logits = pred.predictions[0] if isinstance(pred.predictions, tuple) else pred.predictions
    logits = np.asarray(logits)
    return classification_metrics(pred.label_ids, logits.argmax(-1), num_labels=logits.shape[-1])


def balanced_class_weights(labels: Sequence[int], num_labels: int) -> List[float]:
    """Per-class loss weights ``n / (k * count_c)`` (scikit-learn's ``compute_class_weight("balanced")`` over
    the ``k`` classes the training rows have): every class weighs as much in the loss as if the classes were
    equally frequent. A class with no training rows gets weight 0 (scikit-learn refuses absent classes)."""
    from sklearn.utils.class_weight import compute_class_weight

    y = np.asarray(labels, dtype=np.int64)
    present = np.unique(y)
    weights = np.zeros(num_labels)
    weights[present] = compute_class_weight("balanced", classes=present, y=y)
    return weights.tolist()


class WeightedCrossEntropy:
    """A ``Trainer`` ``compute_loss_func``: cross-entropy with per-class weights (mean over weighted rows)."""

    def __init__(self, weights: Sequence[float]) -> None:
        self.weights = torch.tensor(list(weights), dtype=torch.float32)

    def __call__(self, outputs: Any, labels: torch.Tensor, num_items_in_batch: Any = None) -> torch.Tensor:
        logits = outputs["logits"] if isinstance(outputs, dict) else outputs[0]
        weight = self.weights.to(device=logits.device, dtype=logits.dtype)
        return torch.nn.functional.cross_entropy(logits.view(-1, logits.shape[-1]), labels.view(-1), weight=weight)


class BestWeights(TrainerCallback):
    """Keep an in-memory copy of the weights with the best validation macro-F1, and stop early.

    (``transformers.EarlyStoppingCallback`` does not serve: it requires ``load_best_model_at_end``, the reload
    described below.)

    The Trainer's own best-model reload reads the checkpoint file back with ``load_state_dict``; a model
    loaded from an encoder checkpoint is saved with ``LayerNorm.gamma``/``beta`` keys, which that reload
    misses, so the LayerNorms would stay at the last epoch's values. Copying the tensors avoids file keys
    altogether: the returned model is exactly the best evaluation's weights. With ``keep_weights=False`` it
    only records the best score (``best``), e.g. for a trial run whose model is thrown away.
    """

    def __init__(self, metric: str = "eval_macro_f1", patience: Optional[int] = None,
                 keep_weights: bool = True) -> None:
        self.metric, self.patience, self.keep_weights = metric, patience, keep_weights
        self.best: Optional[float] = None
        self.best_step: Optional[int] = None
        #: every evaluation as ``[global step, value]``, in order
        self.history: List[List[float]] = []
        self.state_dict: Optional[Dict[str, torch.Tensor]] = None
        self.bad_evals = 0

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: Optional[Dict[str, float]] = None,
                    model: Optional[torch.nn.Module] = None, **kwargs: Any) -> None:
        value = (metrics or {}).get(self.metric)
        if value is None or model is None:
            return
        self.history.append([state.global_step, round(float(value), 6)])
        if self.best is None or value > self.best:
            self.best, self.best_step, self.bad_evals = value, state.global_step, 0
            if self.keep_weights:
                self.state_dict = {k: v.detach().to("cpu", copy=True)
                                   for k, v in model.state_dict().items()}
        else:
            self.bad_evals += 1
            if self.patience and self.bad_evals >= self.patience:
                control.should_training_stop = True

    def restore(self, model: torch.nn.Module) -> None:
        """Load the best weights into ``model`` (a no-op when no evaluation ran)."""
        if self.state_dict is not None:
            model.load_state_dict(self.state_dict, strict=True)


#: settings a training step reads from itself when it has them (the rest keep train_classifier's defaults)
STEP_TRAINING_FIELDS = ("epochs", "learning_rate", "batch_size", "max_length", "max_steps", "warmup_ratio",
                        "early_stopping_patience")


def step_training_settings(step: Any, state: Any) -> Dict[str, Any]:
    """The :func:`train_classifier` keywords of a recipe step: those of :data:`STEP_TRAINING_FIELDS` the step
    has, its ``seed`` (else the recipe's) and the run's progress-bar choice."""
    out = {name: getattr(step, name) for name in STEP_TRAINING_FIELDS if hasattr(step, name)}
    out["seed"] = step.seed if getattr(step, "seed", None) is not None else state.seed
    out["progress"] = state.progress
    return out


def train_classifier(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    data: LabelledData,
    output_dir: Path,
    *,
    epochs: float = 3.0,
    learning_rate: float = 5e-5,
    batch_size: int = 16,
    max_length: int = 128,
    seed: int = 42,
    max_steps: int = -1,
    warmup_ratio: float = 0.1,
    weight_decay: float = 0.01,
    early_stopping_patience: Optional[int] = None,
    class_weights: Optional[Sequence[float]] = None,
    lr_scheduler_type: str = "linear",
    trainer_class: Type[Trainer] = Trainer,
    trainer_kwargs: Optional[Dict[str, Any]] = None,
    callbacks: Sequence[TrainerCallback] = (),
    train_extra: Optional[Dict[str, np.ndarray]] = None,
    progress: bool = True,
    load_best: bool = True,
    record: Optional[Dict[str, Any]] = None,
) -> PreTrainedModel:
    """Train ``model`` on ``data['train']``, evaluate on validation each epoch, return the best model
    (the last one with ``load_best=False``, e.g. when a pruning schedule must end at its target).

    ``train_extra`` adds per-row arrays to the training batches as ``extra_<name>`` tensors.
    ``class_weights`` (one per label) weight the cross-entropy loss (see :func:`balanced_class_weights`).
    ``early_stopping_patience``: stop after this many evaluations without a better validation macro-F1.
    ``record``: a dict that receives the validation macro-F1 of every evaluation
    (``validation_macro_f1``: ``[step, value]`` pairs) and the step whose weights were kept (``kept_step``).
    """
    train = tokenize_split(tokenizer, data.splits["train"], max_length)
    if train_extra:
        for name, values in train_extra.items():
            if len(values) != len(train):
                raise ValueError(f"extra column {name!r} has {len(values)} rows, the train split {len(train)}")
            train = train.add_column(EXTRA_PREFIX + name, [list(map(float, v)) for v in values])
    val = tokenize_split(tokenizer, data.splits["validation"], max_length)
    strategy = "epoch" if max_steps <= 0 else "steps"
    steps_per_epoch = max(1, -(-len(train) // batch_size))
    eval_every = max(1, max_steps // 2) if max_steps > 0 else steps_per_epoch
    args = TrainingArguments(
        output_dir=str(output_dir),
        num_train_epochs=epochs,
        max_steps=max_steps,
        learning_rate=learning_rate,
        per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=max(batch_size, 32),
        **_warmup(warmup_ratio),  # a ratio of the steps the Trainer counts (world size included)
        weight_decay=weight_decay,
        lr_scheduler_type=lr_scheduler_type,
        eval_strategy=strategy,
        save_strategy="no",  # the best weights are kept in memory (BestWeights), not as checkpoint files
        eval_steps=eval_every,
        logging_steps=max(1, min(50, eval_every)),
        seed=seed,
        data_seed=seed,
        report_to="none",
        disable_tqdm=not progress,
        remove_unused_columns=False,
        use_cpu=not torch.cuda.is_available(),
        ddp_find_unused_parameters=False,  # every parameter of a classifier takes part in the loss
    )
    best_weights = BestWeights(patience=early_stopping_patience) if load_best else None
    cbs = list(callbacks) + ([best_weights] if best_weights else [])
    kwargs = dict(trainer_kwargs or {})
    if class_weights is not None:
        if len(class_weights) != model.config.num_labels:
            raise ValueError(f"{len(class_weights)} class weights for a model with {model.config.num_labels} labels")
        kwargs["compute_loss_func"] = WeightedCrossEntropy(class_weights)
    trainer = trainer_class(model=model, args=args, train_dataset=train, eval_dataset=val,
                            data_collator=PaddingCollator(tokenizer), compute_metrics=_compute_metrics,
                            callbacks=cbs, **kwargs)
    trainer.train()
    best = trainer.model
    if best_weights is not None:
        best_weights.restore(best)
        if record is not None:
            record.update(validation_macro_f1=best_weights.history, kept_step=best_weights.best_step)
        logger.info("kept the weights of step %s (validation macro-F1 %.4f)", best_weights.best_step,
                    best_weights.best or float("nan"))
    best.eval()
    return best.to("cpu")  # later steps (quantization, trimming, logit caches) run on the CPU
