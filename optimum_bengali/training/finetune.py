"""The ``finetune`` step: train the current model on the labelled data (also used to recover accuracy)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, List, Literal, Optional

from ..registry import register_step
from ..steps import SettingError, Step, setting
from .trainer import balanced_class_weights, train_classifier

if TYPE_CHECKING:  # pragma: no cover
    from ..pipeline import CompressionResult, CompressionState


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


def finetune(model: Optional[str], dataset: Any, output_dir: str, from_config: Optional[str] = None,
             vocab_size: int = 8000, text_column: str = "text", label_column: str = "label",
             normalization: Optional[str] = "nfkc", overwrite: bool = False, measure_memory: bool = True,
             progress: bool = True, seed: int = 42, trim_vocab: bool = False, **settings: Any) -> "CompressionResult":
    """Fine-tune a pretrained encoder (Hub id or folder) or a model built from a config shape into a
    classifier for ``dataset``; writes a measured model folder like :func:`apply_recipe`.

    ``settings`` are :class:`FinetuneStep` fields (``epochs``, ``learning_rate``, ``max_steps``,
    ``class_weights``, ``early_stopping_patience``, ...). ``trim_vocab`` first keeps only the vocabulary rows
    the training split uses (a ``trim_vocab`` step): a large multilingual embedding shrinks to the pieces the
    data needs, which makes every training step cheaper.
    """
    from transformers import AutoModelForSequenceClassification

    from ..data import load_data
    from ..errors import ModelError, RecipeError
    from ..modeling import build_from_config, load_config, load_tokenizer
    from ..pipeline import apply_recipe, check_output
    from ..pruning.vocab import TrimVocabStep
    from ..recipe import Recipe

    if (model is None) == (from_config is None):
        raise ModelError("give either a model (Hub id or folder) or from_config (a shape name)")
    try:
        step = FinetuneStep.from_dict(settings)  # bad inputs fail before any weights load
    except SettingError as exc:
        raise RecipeError(f"finetune: {exc}") from None
    check_output(Path(output_dir), overwrite)
    if model is not None:
        load_config(model)
    data = load_data(dataset, text_column=text_column, label_column=label_column, normalization=normalization)
    if from_config:
        net, tokenizer = build_from_config(from_config, data.texts("train"), data.label_names,
                                           vocab_size=vocab_size, seed=seed)
        net.name_or_path = f"{from_config} (random init)"
    else:
        tokenizer = load_tokenizer(model, apply_normalization=False)
        net = AutoModelForSequenceClassification.from_pretrained(
            model, num_labels=len(data.label_names), id2label=data.id2label, label2id=data.label2id,
            ignore_mismatched_sizes=True)
    net.config.architectures = [type(net).__name__]
    steps: List[Step] = [TrimVocabStep()] if trim_vocab else []
    steps.append(step)
    recipe = Recipe(name="finetune", description="Fine-tune on the labelled data"
                    + (" after trimming the vocabulary to the training split." if trim_vocab else "."),
                    steps=steps, seed=seed)
    return apply_recipe(net, recipe, data, output_dir, tokenizer=tokenizer, overwrite=overwrite,
                        measure_baseline=False, measure_memory=measure_memory, progress=progress)
