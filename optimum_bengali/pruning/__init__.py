"""Pruning: unstructured magnitude (gradual), structured FFN neurons, vocabulary trimming."""

from .magnitude import apply_sparsity, measure_sparsity
from .structured import prune_ffn
from .vocab import trim_vocabulary

__all__ = ["apply_sparsity", "measure_sparsity", "prune_ffn", "trim_vocabulary"]
