"""Recipes: an ordered list of steps, loaded from YAML or built in Python, validated on load.

>>> from optimum_bengali import Recipe, load_recipe
>>> recipe = load_recipe("quant-static-int8")          # a shipped recipe
>>> recipe = Recipe.from_yaml("my_recipe.yaml")         # your own file
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import yaml

from .errors import RecipeError
from .registry import registered_steps
from .steps import SettingError, Step

_TOP_LEVEL = {"name", "description", "seed", "steps"}


class _RecipeLoader(yaml.SafeLoader):
    """PyYAML's safe loader, also reading numbers in exponent form without a dot (``1e-5``, ``1e300``) as
    numbers, as YAML 1.2 does (YAML 1.1, PyYAML's default, reads them as strings)."""


_RecipeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"))


def read_yaml(text: str) -> Any:
    """Parse recipe YAML (safe: plain data only) with YAML 1.2's number forms."""
    return yaml.load(text, Loader=_RecipeLoader)  # noqa: S506 - a SafeLoader subclass


def available_steps() -> Dict[str, type]:
    """Every registered step type by name, the built-in ones included."""
    from . import steps_index  # noqa: F401  (importing it registers every built-in step)

    return registered_steps()


@dataclass
class Recipe:
    """An ordered list of compression steps plus a name, a description and a seed."""

    name: str
    steps: List[Step]
    description: str = ""
    seed: int = 42
    source: Optional[str] = field(default=None, compare=False)

    def __post_init__(self) -> None:
        self.validate_order()

    # -- loading ---------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Dict[str, Any], source: Optional[str] = None) -> "Recipe":
        """Build and validate a recipe from a mapping (the parsed YAML)."""
        where = source or "<recipe>"
        if not isinstance(data, dict):
            raise RecipeError(f"{where}: a recipe must be a mapping with 'name' and 'steps'")
        unknown = sorted(set(data) - _TOP_LEVEL)
        if unknown:
            raise RecipeError(f"{where}: unknown top-level field {unknown[0]!r}; "
                              f"allowed: {', '.join(sorted(_TOP_LEVEL))}")
        raw_steps = data.get("steps")
        if not isinstance(raw_steps, list) or not raw_steps:
            raise RecipeError(f"{where}: field 'steps' must be a non-empty list of steps")
        seed = data.get("seed", 42)
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise RecipeError(f"{where}: field 'seed' must be an integer, got {seed!r}")
        registry = available_steps()
        steps: List[Step] = []
        for i, raw in enumerate(raw_steps):
            if not isinstance(raw, dict) or "type" not in raw:
                raise RecipeError(f"{where}: step {i}: each step is a mapping with a 'type' field")
            settings = dict(raw)
            kind = settings.pop("type")
            if kind not in registry:
                raise RecipeError(f"{where}: step {i}: field 'type': unknown step type {kind!r}; "
                                  f"available: {', '.join(sorted(registry))}")
            try:
                steps.append(registry[kind].from_dict(settings))
            except SettingError as exc:
                raise RecipeError(f"{where}: step {i} ({kind}): {exc}") from None
        name = data.get("name") or (Path(source).stem if source else "custom")
        try:
            return cls(name=str(name), steps=steps, description=str(data.get("description", "")),
                       seed=seed, source=source)
        except RecipeError as exc:
            raise RecipeError(f"{where}: {exc}") from None

    @classmethod
    def from_yaml(cls, path: Union[str, Path]) -> "Recipe":
        """Load and validate a recipe YAML file."""
        path = Path(path)
        try:
            data = read_yaml(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise RecipeError(f"{path}: not valid YAML: {exc}") from None
        return cls.from_dict(data, source=str(path))

    # -- checks and output --------------------------------------------------------------
    def validate_order(self) -> None:
        """Steps that need a PyTorch model cannot come after a step that leaves none (quantize); no step trains
        after unstructured pruning (the zeroed weights would grow back); a sparse save must be the final format."""
        final_at: Optional[int] = None
        sparse_at: Optional[int] = None
        for i, step in enumerate(self.steps):
            if sparse_at is not None and step.trains:
                raise RecipeError(
                    f"step {i} ({step.type_name}) trains after step {sparse_at} ({self.steps[sparse_at].type_name}, "
                    "unstructured): the zeroed weights would grow back and the sparsity be lost; put the magnitude "
                    "pruning after every training step (it fine-tunes to recover by itself)")
            if step.leaves_sparse_weights():
                sparse_at = i
            if step.saves_sparse():
                later = [j for j in range(i + 1, len(self.steps)) if self.steps[j].produces_final]
                if later:
                    raise RecipeError(
                        f"step {i} ({step.type_name}) has save: sparse, but step {later[0]} "
                        f"({self.steps[later[0]].type_name}) converts the model afterwards, so the sparse format "
                        "would be ignored; drop save: sparse (quantized weights keep the zeros) or the later step")
            if final_at is not None and step.needs_torch:
                raise RecipeError(
                    f"step {i} ({step.type_name}) needs a PyTorch model but step {final_at} "
                    f"({self.steps[final_at].type_name}) already turned it into an inference-only "
                    "model: put quantization last")
            if step.produces_final and final_at is None:
                final_at = i

    def preflight(self, config: Any, tokenizer: Any, data: Any) -> None:
        """Check every step against the model (its ``config`` and ``tokenizer``) and the ``data`` before any
        weights load or any training starts; the first step that cannot run raises one :class:`ModelError` line
        naming the step and the reason. ``config`` is not changed."""
        import copy

        from .errors import ModelError
        from .state import ModelFacts

        check_vocabulary(config, tokenizer, data.texts("train"))
        facts = ModelFacts(config=copy.deepcopy(config), tokenizer=tokenizer, data=data)
        for i, step in enumerate(self.steps):
            try:
                step.preflight(facts)
            except ModelError as exc:
                raise ModelError(f"recipe {self.name!r}: step {i} ({step.type_name}) cannot run on this model: "
                                 f"{exc}") from None

    def to_dict(self) -> Dict[str, Any]:
        """The resolved recipe (every setting, defaults included)."""
        return {"name": self.name, "description": self.description, "seed": self.seed,
                "steps": [s.to_dict() for s in self.steps]}

    def to_yaml(self) -> str:
        """YAML text that :meth:`from_yaml` reads back into an equal recipe."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)

    def save(self, path: Union[str, Path]) -> None:
        """Write :meth:`to_yaml` to ``path``."""
        Path(path).write_text(self.to_yaml(), encoding="utf-8")


def check_vocabulary(config: Any, tokenizer: Any, texts: List[str]) -> None:
    """A :class:`ModelError` when the tokenizer gives ids the model's embedding has no row for (a tokenizer saved
    from another model): every training step would fail on the first such sentence."""
    from .errors import ModelError

    rows = getattr(config, "vocab_size", None)
    if not rows:
        return
    top = max((max(ids, default=-1) for ids in tokenizer(texts, add_special_tokens=True)["input_ids"]), default=-1)
    if top >= rows:
        raise ModelError(f"the tokenizer gives id {top} but the model's embedding has {rows} rows: the tokenizer "
                         "belongs to another model; save the model's own tokenizer beside it")


def _shipped() -> Dict[str, Path]:
    folder = resources.files("optimum_bengali") / "recipes"
    return {Path(str(p)).stem: Path(str(p)) for p in folder.iterdir() if str(p).endswith(".yaml")}


def list_recipes() -> List[Tuple[str, str]]:
    """The shipped recipes as ``(name, one-line description)``, sorted by name."""
    out = []
    for name, path in sorted(_shipped().items()):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        out.append((name, str(data.get("description", "")).strip().splitlines()[0] if data.get("description") else ""))
    return out


def load_recipe(recipe: Union[str, Path, Recipe, Dict[str, Any]]) -> Recipe:
    """Return a validated :class:`Recipe` from a shipped name, a YAML path, a mapping or a Recipe."""
    if isinstance(recipe, Recipe):
        recipe.validate_order()
        return recipe
    if isinstance(recipe, dict):
        return Recipe.from_dict(recipe)
    path = Path(recipe)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise RecipeError(f"recipe file {str(path)!r} does not exist")
        return Recipe.from_yaml(path)
    shipped = _shipped()
    if str(recipe) in shipped:
        return Recipe.from_yaml(shipped[str(recipe)])
    raise RecipeError(f"unknown recipe {str(recipe)!r}: give a YAML path or one of "
                      f"{', '.join(sorted(shipped))} (see `optimum-bengali recipes`)")
