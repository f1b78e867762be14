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
from datasets import Dataset
from transformers import (DataCollatorWithPadding, EarlyStoppingCallback, PreTrainedModel,
                          PreTrainedTokenizerBase, Trainer, TrainerCallback, TrainingArguments)

from ..data import LabelledData
from ..evaluation import classification_metrics

logger = logging.getLogger(__name__)
EXTRA_PREFIX = "extra_"


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
    return classification_metrics(pred.label_ids, np.asarray(logits).argmax(-1))


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
    trainer_class: Type[Trainer] = Trainer,
    trainer_kwargs: Optional[Dict[str, Any]] = None,
    callbacks: Sequence[TrainerCallback] = (),
    train_extra: Optional[Dict[str, np.ndarray]] = None,
    progress: bool = True,
    load_best: bool = True,
) -> PreTrainedModel:
    """Train ``model`` on ``data['train']``, evaluate on validation each epoch, return the best model
    (the last one with ``load_best=False``, e.g. when a pruning schedule must end at its target).

    ``train_extra`` adds per-row arrays to the training batches as ``extra_<name>`` tensors.
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
        warmup_steps=int(warmup_ratio * (max_steps if max_steps > 0 else steps_per_epoch * epochs)),
        weight_decay=weight_decay,
        eval_strategy=strategy,
        save_strategy=strategy,
        eval_steps=eval_every,
        save_steps=eval_every,
        save_total_limit=1,
        load_best_model_at_end=load_best,
        metric_for_best_model="macro_f1",
        greater_is_better=True,
        logging_steps=max(1, min(50, eval_every)),
        seed=seed,
        data_seed=seed,
        report_to="none",
        disable_tqdm=not progress,
        remove_unused_columns=False,
        use_cpu=not torch.cuda.is_available(),
    )
    cbs = list(callbacks)
    if early_stopping_patience:
        cbs.append(EarlyStoppingCallback(early_stopping_patience=early_stopping_patience))
    trainer = trainer_class(model=model, args=args, train_dataset=train, eval_dataset=val,
                            data_collator=PaddingCollator(tokenizer), compute_metrics=_compute_metrics,
                            callbacks=cbs, **(trainer_kwargs or {}))
    trainer.train()
    best = trainer.model
    best.eval()
    return best
