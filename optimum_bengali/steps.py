"""Base class of recipe steps and the validation every step gets for free.

A step is a dataclass: its fields are its settings. Field metadata may carry ``min``, ``max``,
``min_exclusive``/``max_exclusive`` bounds; ``Literal[...]`` hints give the allowed choices.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Dict, Literal, Union

if TYPE_CHECKING:  # pragma: no cover
    from .state import CompressionState, ModelFacts


#: the most epochs a training setting takes (more is a typo, or a number that would overflow the trainer)
MAX_EPOCHS = 1000


def setting(default: Any = dataclasses.MISSING, *, min: float | None = None, max: float | None = None,
            min_exclusive: bool = False, max_exclusive: bool = False, help: str = "",
            default_factory: Any = dataclasses.MISSING) -> Any:
    """A step setting: a dataclass field with optional numeric bounds and a help line."""
    meta = {"min": min, "max": max, "min_exclusive": min_exclusive, "max_exclusive": max_exclusive, "help": help}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


class SettingError(ValueError):
    """Raised inside a step's checks; :mod:`recipe` adds the recipe file and step index."""

    def __init__(self, field: str, message: str):
        super().__init__(f"field {field!r}: {message}")
        self.field = field


def _type_name(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(hint))
    if origin is Union:
        return " | ".join(_type_name(a) for a in typing.get_args(hint))
    if origin in (list, typing.List):
        return f"list of {_type_name(typing.get_args(hint)[0])}"
    if origin in (dict, typing.Dict):
        k, v = typing.get_args(hint)
        return f"mapping {_type_name(k)} -> {_type_name(v)}"
    return "null" if hint is type(None) else getattr(hint, "__name__", str(hint))


def coerce(value: Any, hint: Any) -> Any:
    """Check ``value`` against a type hint; return it (ints widen to float). Raise TypeError."""
    origin = typing.get_origin(hint)
    if hint is Any:
        return value
    if origin is Literal:
        if value in typing.get_args(hint):
            return value
        raise TypeError(f"expected one of {_type_name(hint)}, got {value!r}")
    if origin is Union:
        for arg in typing.get_args(hint):
            try:
                return coerce(value, arg)
            except TypeError:
                continue
        raise TypeError(f"expected {_type_name(hint)}, got {value!r}")
    if hint is type(None):
        if value is None:
            return None
        raise TypeError(f"expected null, got {value!r}")
    if origin in (list, typing.List):
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"expected {_type_name(hint)}, got {value!r}")
        (arg,) = typing.get_args(hint)
        return [coerce(v, arg) for v in value]
    if origin in (dict, typing.Dict):
        if not isinstance(value, dict):
            raise TypeError(f"expected {_type_name(hint)}, got {value!r}")
        k, v = typing.get_args(hint)
        return {coerce(a, k): coerce(b, v) for a, b in value.items()}
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise TypeError(f"expected a finite number, got {value!r}")
            return float(value)
        raise TypeError(f"expected a number, got {value!r}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise TypeError(f"expected an integer, got {value!r}")
    if hint in (str, bool):
        if isinstance(value, hint):
            return value
        raise TypeError(f"expected {hint.__name__}, got {value!r}")
    raise TypeError(f"unsupported setting type {hint!r}")  # pragma: no cover


@dataclass
class Step:
    """One recipe step. Subclasses are dataclasses registered with :func:`register_step`.

    Class attributes tell the pipeline how steps may be ordered:
    ``needs_torch``: the step needs a PyTorch model (all training, pruning, distillation);
    ``produces_final``: after this step the model is no longer a trainable PyTorch model;
    ``trains``: the step updates weights with an optimizer (zeroed weights would grow back).
    """

    type_name: ClassVar[str] = ""
    needs_torch: ClassVar[bool] = True
    produces_final: ClassVar[bool] = False
    trains: ClassVar[bool] = False

    def leaves_sparse_weights(self) -> bool:
        """True when the step zeroes individual weights (unstructured sparsity) that later training would undo."""
        return False

    def saves_sparse(self) -> bool:
        """True when the step asks for the final PyTorch model to be stored in the sparse format."""
        return False

    # -- construction / validation -------------------------------------------------
    @classmethod
    def from_dict(cls, settings: Dict[str, Any]) -> "Step":
        """Build the step from a mapping of settings, checking names, types and bounds."""
        hints = typing.get_type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(settings) - set(fields))
        if unknown:
            raise SettingError(unknown[0], f"unknown setting for step {cls.type_name!r}; "
                                           f"known settings: {', '.join(sorted(fields))}")
        values = {}
        for name, value in settings.items():
            try:
                values[name] = coerce(value, hints[name])
            except TypeError as exc:
                raise SettingError(name, str(exc)) from None
        missing = [f.name for f in fields.values() if f.default is dataclasses.MISSING
                   and f.default_factory is dataclasses.MISSING and f.name not in values]
        if missing:
            raise SettingError(missing[0], "is required")
        return cls(**values)  # __post_init__ checks bounds and cross-field rules

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):  # steps built in Python are type-checked like steps read from YAML
            try:
                setattr(self, f.name, coerce(getattr(self, f.name), hints[f.name]))
            except TypeError as exc:
                raise SettingError(f.name, str(exc)) from None
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                continue
            lo, hi = f.metadata.get("min"), f.metadata.get("max")
            if lo is not None and (value < lo or (f.metadata.get("min_exclusive") and value == lo)):
                op = ">" if f.metadata.get("min_exclusive") else ">="
                raise SettingError(f.name, f"must be {op} {lo}, got {value}")
            if hi is not None and (value > hi or (f.metadata.get("max_exclusive") and value == hi)):
                op = "<" if f.metadata.get("max_exclusive") else "<="
                raise SettingError(f.name, f"must be {op} {hi}, got {value}")
        defaults = _defaults(type(self))
        for name, why in self.not_applicable().items():
            if getattr(self, name) != defaults[name]:
                raise SettingError(name, f"{why}; remove it")
        self.check()  # steps built in Python are checked like steps read from YAML

    def not_applicable(self) -> Dict[str, str]:
        """The settings that do not apply to this step's chosen method, backend, mode or student, each with
        why (e.g. ``"applies to method 'structured', not 'magnitude'"``). Giving one of them a value other than
        its default is an error, and ``recipe.yaml`` leaves them out. Subclasses with variants override it."""
        return {}

    def check(self) -> None:
        """Cross-field checks; raise :class:`SettingError`. Bounds are checked already."""

    def to_dict(self) -> Dict[str, Any]:
        """The resolved settings that apply, ``type`` first, as written to ``recipe.yaml``."""
        out: Dict[str, Any] = {"type": self.type_name}
        skip = self.not_applicable()
        out.update({k: v for k, v in dataclasses.asdict(self).items() if k not in skip})
        return out

    # -- execution -----------------------------------------------------------------
    def preflight(self, facts: "ModelFacts") -> None:
        """Check, before any weights load, that this step can run on the model ``facts`` describes (its config,
        tokenizer and data, as the earlier steps leave them); raise :class:`~optimum_bengali.errors.ModelError`
        with the reason if not. A step that changes what later steps see (layer count, FFN width, format) changes
        ``facts`` the same way. The base class accepts every model."""

    def apply(self, state: "CompressionState") -> None:
        """Transform ``state`` in place (its model, tokenizer, report). Every step type implements it."""
        raise NotImplementedError(f"step {type(self).__name__} ({self.type_name!r}) does not implement apply(state)")


def _defaults(cls: type) -> Dict[str, Any]:
    """Each field's default (its factory's value for list/dict defaults)."""
    out = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out


def only_for(choice: str, value: Any, fields_by_choice: Dict[Any, Any]) -> Dict[str, str]:
    """What :meth:`Step.not_applicable` returns for a step whose ``choice`` setting (``"method"``, ``"backend"``,
    ...) is ``value``: every field listed under another choice in ``fields_by_choice`` and not under ``value``."""
    mine = set(fields_by_choice.get(value, ()))
    out: Dict[str, str] = {}
    for other, names in fields_by_choice.items():
        for name in names:
            if other != value and name not in mine and name not in out:
                owners = [repr(o) for o, ns in fields_by_choice.items() if name in ns]
                out[name] = f"applies to {choice} {' or '.join(owners)}, not {value!r}"
    return out
