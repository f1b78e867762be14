"""Registries: a name maps to what implements it, in one style for every kind of plug-in.

Steps (``type:`` in recipes), pruning methods (``method:``) and quantization backends (``backend:``) each have
one :class:`Registry`; an implementation registers itself with the registry's decorator in its own module, so a
new technique, method or backend is one module plus one import line (``steps_index.py`` for steps, the
package ``__init__`` for methods and backends). This module imports no implementation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Dict, Generic, Type, TypeVar

if TYPE_CHECKING:  # pragma: no cover
    from .steps import Step

T = TypeVar("T")


class Registry(Generic[T]):
    """Names of one kind (``kind``, e.g. "pruning method") mapped to their implementation, plus optional facts
    about each (``info``, e.g. the modes a quantization backend supports)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: Dict[str, T] = {}
        self._info: Dict[str, Dict[str, Any]] = {}

    def register(self, name: str, **info: Any) -> Callable[[T], T]:
        """Decorator: make the decorated class or function available under ``name``."""

        def wrap(obj: T) -> T:
            if name in self._items and self._items[name] is not obj:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = obj
            self._info[name] = dict(info)
            return obj

        return wrap

    def __getitem__(self, name: str) -> T:
        if name not in self._items:
            raise KeyError(f"unknown {self.kind} {name!r}; known: {', '.join(sorted(self._items)) or 'none'}")
        return self._items[name]

    def info(self, name: str) -> Dict[str, Any]:
        """The facts ``name`` was registered with."""
        self[name]
        return dict(self._info[name])

    def names(self) -> list:
        return sorted(self._items)

    def as_dict(self) -> Dict[str, T]:
        return dict(self._items)


STEPS: Registry[Type["Step"]] = Registry("step type")


def register_step(name: str) -> Callable[[Type["Step"]], Type["Step"]]:
    """Class decorator: make a :class:`Step` subclass available as ``type: <name>`` in recipes."""

    def wrap(cls: Type["Step"]) -> Type["Step"]:
        STEPS.register(name)(cls)
        cls.type_name = name
        return cls

    return wrap


def registered_steps() -> Dict[str, Type["Step"]]:
    """The step types registered so far (``optimum_bengali.recipe.available_steps`` loads the built-in ones)."""
    return STEPS.as_dict()
