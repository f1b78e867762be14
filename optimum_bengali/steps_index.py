"""Imports every built-in step so that it registers itself. One line per technique."""

from .training import finetune  # noqa: F401
from .distillation import step as _distil  # noqa: F401
from .pruning import step as _prune  # noqa: F401
from .pruning import vocab as _vocab  # noqa: F401
from .quantization import step as _quantize  # noqa: F401
from .quantization import qat as _qat  # noqa: F401
from .export import step as _export  # noqa: F401
