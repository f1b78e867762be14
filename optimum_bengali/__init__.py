"""optimum-bengali: make Bengali text classifiers small and fast with declarative recipes.

>>> from optimum_bengali import apply_recipe
>>> result = apply_recipe(model="teacher/", recipe="quant-static-int8",
...                       dataset="../shared/data/bemoc", output_dir="out/q8")
>>> result.metrics["macro_f1"], result.metrics["latency_bs1"]["p50_ms"]
"""

from .data import LabelledData, load_data, normalize_bengali
from .errors import DataError, ModelError, OptimumBengaliError, RecipeError
from .hub import push_to_hub
from .modeling import load_model, load_tokenizer
from .pipeline import CompressionResult, apply_recipe
from .quantization import TorchInt8ModelForSequenceClassification
from .recipe import Recipe, list_recipes, load_recipe
from .registry import available_steps, register_step
from .steps import Step

__version__ = "0.1.0"

__all__ = [
    "apply_recipe", "CompressionResult", "Recipe", "load_recipe", "list_recipes", "Step", "register_step",
    "available_steps", "load_data", "LabelledData", "normalize_bengali", "load_model", "load_tokenizer",
    "push_to_hub", "TorchInt8ModelForSequenceClassification", "OptimumBengaliError", "RecipeError",
    "DataError", "ModelError", "__version__",
]
