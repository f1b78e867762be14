"""The registry of quantization backends (``backend:`` of the ``quantize`` step). Each backend module registers
its ``quantize(step, state)`` with ``@QUANTIZATION_BACKENDS.register("<name>", modes=(...))``; the package
imports every backend module (their heavy libraries are imported inside ``quantize``, on use)."""

from __future__ import annotations

from typing import Callable

from ..registry import Registry

QUANTIZATION_BACKENDS: Registry[Callable[..., None]] = Registry("quantization backend")
