"""The one registry of recipe steps: a step type name maps to its settings class.

A new technique is one module that defines a :class:`~optimum_bengali.steps.Step` subclass
decorated with :func:`register_step`, plus one import line in ``optimum_bengali/steps_index.py``.
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


def get_step_class(name: str) -> Type["Step"]:
    """Return the step class registered as ``name`` (imports every built-in step first)."""
    from . import steps_index  # noqa: F401  (fills the registry)

    return STEP_REGISTRY[name]


def available_steps() -> Dict[str, Type["Step"]]:
    """All registered step types, built-in ones included."""
    from . import steps_index  # noqa: F401

    return dict(STEP_REGISTRY)
