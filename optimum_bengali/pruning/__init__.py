"""Pruning: unstructured magnitude (gradual), structured (FFN neurons, attention heads), vocabulary trimming.

Importing the package registers every pruning method (:mod:`.methods`)."""

from .heads import prune_heads
from .magnitude import apply_sparsity, measure_sparsity
from .structured import prune_ffn
from .vocab import trim_vocabulary

__all__ = ["apply_sparsity", "measure_sparsity", "prune_ffn", "prune_heads", "trim_vocabulary"]
