"""optimum-bengali: make Bengali text classifiers small and fast with declarative recipes.

>>> from optimum_bengali import apply_recipe
>>> result = apply_recipe(model="teacher/", recipe="quant-static-int8",
...                       dataset="../shared/data/bemoc", output_dir="out/q8")
>>> result.metrics["macro_f1"], result.metrics["latency_bs1"]["steady_p50_ms"]

Names are imported on first use, so ``import optimum_bengali`` (and the CLI) start fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "apply_recipe": ".pipeline", "CompressionResult": ".pipeline", "CompressionState": ".state",
    "Recipe": ".recipe", "load_recipe": ".recipe", "list_recipes": ".recipe",
    "Step": ".steps", "register_step": ".registry", "available_steps": ".recipe",
    "load_data": ".data", "LabelledData": ".data", "normalize_bengali": ".normalization",
    "load_model": ".formats", "load_tokenizer": ".modeling", "push_to_hub": ".hub",
    "finetune": ".pipeline",
    "FinetuneStep": ".training.finetune", "DistilStep": ".distillation.step", "PruneStep": ".pruning.step",
    "TrimVocabStep": ".pruning.vocab", "QuantizeStep": ".quantization.step", "QATStep": ".quantization.qat",
    "ExportStep": ".export.step",
    "TorchInt8ModelForSequenceClassification": ".formats.torch_int8",
    "IncInt8ModelForSequenceClassification": ".formats.inc",
    "SparseModelForSequenceClassification": ".formats.sparse", "save_sparse": ".formats.sparse",
    "PrunedHeadsModelForSequenceClassification": ".formats.pruned_heads",
    "OptimumBengaliError": ".errors", "RecipeError": ".errors", "DataError": ".errors", "ModelError": ".errors",
    "OutputError": ".errors", "RunSettingError": ".errors",
}

__all__ = [*_EXPORTS, "__version__"]

from .quiet import quiet_third_party_messages  # noqa: E402

quiet_third_party_messages()


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'optimum_bengali' has no attribute {name!r}")


def __dir__() -> list:
    return sorted(__all__)
