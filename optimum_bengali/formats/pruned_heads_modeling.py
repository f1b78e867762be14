"""Encoder classifiers with fewer attention heads in some layers, for plain transformers.

transformers 5 has no ``prune_heads`` and its configs describe one head count for every layer. A head-pruned
model keeps the config's ``num_attention_heads`` (so the head size stays ``hidden_size / num_attention_heads``)
and adds ``attention_heads_per_layer``, the heads each layer keeps; the classes here build those smaller query,
key, value and attention-output matrices, so the saved weights load into them.

This file is written into every head-pruned folder as ``modeling_pruned_heads.py`` (named in the config's
``auto_map``), so ``AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=True)`` loads the
folder with nothing but torch and transformers installed.
"""

from __future__ import annotations

from typing import Any, Dict, List, Sequence, Type

from torch import nn
from transformers import (
    BertForSequenceClassification,
    ElectraForSequenceClassification,
    PreTrainedModel,
    RobertaForSequenceClassification,
    XLMRobertaForSequenceClassification,
)

HEADS_KEY = "attention_heads_per_layer"


def encoder_layers(model: nn.Module) -> List[nn.Module]:
    """The encoder layers of a BERT-family classifier (``base_model.encoder.layer``)."""
    base = getattr(model, "base_model", model)
    layers = getattr(getattr(base, "encoder", None), "layer", None)
    if layers is None:
        raise ValueError(f"{type(model).__name__} has no encoder.layer: not a BERT-family encoder")
    return list(layers)


def shrink_attention(model: nn.Module, heads_per_layer: Sequence[int]) -> None:
    """Give encoder layer ``i`` ``heads_per_layer[i]`` heads: new query/key/value and attention-output
    projections of the smaller shape (their values come from the checkpoint, or from the caller)."""
    layers = encoder_layers(model)
    if len(heads_per_layer) != len(layers):
        raise ValueError(f"{HEADS_KEY} lists {len(heads_per_layer)} layers; the model has {len(layers)}")
    for layer, heads in zip(layers, heads_per_layer):
        attention = layer.attention.self
        if not 1 <= heads <= attention.num_attention_heads:
            raise ValueError(f"a layer keeps 1..{attention.num_attention_heads} heads, got {heads}")
        if heads == attention.num_attention_heads:
            continue
        hidden, size = attention.query.in_features, heads * attention.attention_head_size
        attention.query, attention.key, attention.value = (nn.Linear(hidden, size) for _ in range(3))
        attention.num_attention_heads, attention.all_head_size = heads, size
        layer.attention.output.dense = nn.Linear(size, layer.attention.output.dense.out_features)


class PrunedHeadsMixin:
    """Builds the attention of each layer with the head count in ``config.attention_heads_per_layer``."""

    def __init__(self, config: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        heads = getattr(config, HEADS_KEY, None)
        if heads:
            shrink_attention(self, heads)


class BertWithPrunedHeadsForSequenceClassification(PrunedHeadsMixin, BertForSequenceClassification):
    """``BertForSequenceClassification`` with per-layer head counts."""


class RobertaWithPrunedHeadsForSequenceClassification(PrunedHeadsMixin, RobertaForSequenceClassification):
    """``RobertaForSequenceClassification`` with per-layer head counts."""


class XLMRobertaWithPrunedHeadsForSequenceClassification(PrunedHeadsMixin, XLMRobertaForSequenceClassification):
    """``XLMRobertaForSequenceClassification`` with per-layer head counts."""


class ElectraWithPrunedHeadsForSequenceClassification(PrunedHeadsMixin, ElectraForSequenceClassification):
    """``ElectraForSequenceClassification`` (BanglaBERT) with per-layer head counts."""


#: the plain classifier class -> its pruned-heads counterpart
PRUNED_HEADS_CLASSES: Dict[Type[PreTrainedModel], Type[PreTrainedModel]] = {
    BertForSequenceClassification: BertWithPrunedHeadsForSequenceClassification,
    RobertaForSequenceClassification: RobertaWithPrunedHeadsForSequenceClassification,
    XLMRobertaForSequenceClassification: XLMRobertaWithPrunedHeadsForSequenceClassification,
    ElectraForSequenceClassification: ElectraWithPrunedHeadsForSequenceClassification,
}
