"""The one registry of recipe steps: a step type name maps to its settings class.

A new technique is one module that defines a :class:`~optimum_bengali.steps.Step` subclass
decorated with :func:`register_step`, plus one import line in ``optimum_bengali/steps_index.py``.
This module imports no step: the recipe layer, above the steps, imports ``steps_index``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Dict, Type

if TYPE_CHECKING:  # pragma: no cover
    from .steps import Step

STEP_REGISTRY: Dict[str, Type["Step"]] = {}


def register_step(name: str) -> Callable[[Type["Step"]], Type["Step"]]:
    """Class decorator: make a :class:`Step` subclass available as ``type: <name>`` in recipes."""

    def wrap(cls: Type["Step"]) -> Type["Step"]:
        if name in STEP_REGISTRY and STEP_REGISTRY[name] is not cls:
            raise ValueError(f"step type {name!r} is registered twice")
        cls.type_name = name
        STEP_REGISTRY[name] = cls
        return cls

    return wrap


def registered_steps() -> Dict[str, Type["Step"]]:
    """The step types registered so far (``optimum_bengali.recipe.available_steps`` loads the built-in ones)."""
    return dict(STEP_REGISTRY)
