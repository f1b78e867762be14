"""The registry of pruning methods (``method:`` of the ``prune`` step). Each method module registers its
``run(step, state)`` with ``@PRUNING_METHODS.register("<name>")``; the package imports every method module."""

from __future__ import annotations

from typing import Callable

from ..registry import Registry

PRUNING_METHODS: Registry[Callable[..., None]] = Registry("pruning method")
