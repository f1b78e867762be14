"""Exceptions raised by optimum-bengali. Each message says what was wrong and what to do."""


class OptimumBengaliError(Exception):
    """Base class of every error this package raises on purpose."""


class RecipeError(OptimumBengaliError, ValueError):
    """A recipe is malformed: unknown step, unknown field, wrong type or out-of-range value."""


class DataError(OptimumBengaliError, ValueError):
    """The data set cannot be used: missing split or column, empty split, unknown labels."""


class ModelError(OptimumBengaliError, ValueError):
    """The model cannot be used: not a sequence classifier, wrong format for a step, ..."""


class OutputError(OptimumBengaliError, OSError):
    """The output folder cannot be written: a file is in the way, or no permission."""


class RunSettingError(OptimumBengaliError, ValueError):
    """A setting of the run itself (not of a recipe step) is out of range, e.g. a negative thread count."""
