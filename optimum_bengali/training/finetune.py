"""The ``finetune`` step: train the current model on the labelled data (also used to recover accuracy)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

from ..registry import register_step
from ..steps import Step, setting
from .trainer import train_classifier

if TYPE_CHECKING:  # pragma: no cover
    from ..pipeline import CompressionResult, CompressionState


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


def finetune(model: Optional[str], dataset: Any, output_dir: str, from_config: Optional[str] = None,
             vocab_size: int = 8000, text_column: str = "text", label_column: str = "label",
             normalization: Optional[str] = "nfkc", overwrite: bool = False, measure_memory: bool = True,
             progress: bool = True, seed: int = 42, **settings: Any) -> "CompressionResult":
    """Fine-tune a pretrained encoder (Hub id or folder) or a model built from a config shape into a
    classifier for ``dataset``; writes a measured model folder like :func:`apply_recipe`.

    ``settings`` are :class:`FinetuneStep` fields (``epochs``, ``learning_rate``, ``max_steps``, ...).
    """
    from transformers import AutoModelForSequenceClassification

    from ..data import load_data
    from ..errors import ModelError
    from ..modeling import build_from_config, load_tokenizer
    from ..pipeline import apply_recipe
    from ..recipe import Recipe

    if (model is None) == (from_config is None):
        raise ModelError("give either a model (Hub id or folder) or from_config (a shape name)")
    data = load_data(dataset, text_column=text_column, label_column=label_column, normalization=normalization)
    if from_config:
        net, tokenizer = build_from_config(from_config, data.texts("train"), data.label_names,
                                           vocab_size=vocab_size, seed=seed)
        net.name_or_path = f"{from_config} (random init)"
    else:
        tokenizer = load_tokenizer(model)
        net = AutoModelForSequenceClassification.from_pretrained(
            model, num_labels=len(data.label_names), id2label=data.id2label, label2id=data.label2id,
            ignore_mismatched_sizes=True)
    net.config.architectures = [type(net).__name__]
    recipe = Recipe(name="finetune", description="Fine-tune on the labelled data.",
                    steps=[FinetuneStep.from_dict(settings)], seed=seed)
    return apply_recipe(net, recipe, data, output_dir, tokenizer=tokenizer, overwrite=overwrite,
                        measure_baseline=False, measure_memory=measure_memory, progress=progress)
