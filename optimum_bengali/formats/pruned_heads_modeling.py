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

import warnings
from dataclasses import dataclass
from typing import Any, Dict, List, Sequence, Tuple, Type

from torch import nn
from transformers import (
    BertForSequenceClassification,
    DistilBertForSequenceClassification,
    ElectraForSequenceClassification,
    PreTrainedModel,
    RobertaForSequenceClassification,
    XLMRobertaForSequenceClassification,
)

with warnings.catch_warnings():  # transformers' DeBERTa-v2 module uses torch.jit.script, which torch 2.10+ flags
    warnings.simplefilter("ignore", FutureWarning)
    from transformers import DebertaV2ForSequenceClassification

HEADS_KEY = "attention_heads_per_layer"


@dataclass(frozen=True)
class EncoderLayout:
    """Where an encoder architecture keeps the parts that structured pruning and white-box distillation touch.
    Paths are dotted attribute paths: ``layers`` from the classifier's base model, the others from one layer."""

    layers: str = "encoder.layer"
    attention: str = "attention.self"  # the module holding the projections, the head count and the dropout
    #: per-head projections (a head is a block of their output rows); query, key and value come first
    projections: Tuple[str, ...] = ("query", "key", "value")
    #: further per-head projections that some configurations have (DeBERTa's own position projections)
    optional_projections: Tuple[str, ...] = ()
    attention_output: str = "attention.output.dense"  # a head is a block of its input columns
    heads_attribute: str = "num_attention_heads"  # on the attention module
    ffn_in: str = "intermediate.dense"
    ffn_out: str = "output.dense"
    ffn_size_key: str = "intermediate_size"  # the config key of the FFN width

    @property
    def value(self) -> str:
        return self.projections[2]


BERT_LAYOUT = EncoderLayout()
#: model_type -> layout, for every architecture whose heads and FFN neurons can be pruned
LAYOUTS: Dict[str, EncoderLayout] = {
    "bert": BERT_LAYOUT,
    "roberta": BERT_LAYOUT,
    "xlm-roberta": BERT_LAYOUT,
    "electra": BERT_LAYOUT,
    "deberta-v2": EncoderLayout(projections=("query_proj", "key_proj", "value_proj"),
                                optional_projections=("pos_key_proj", "pos_query_proj")),
    "distilbert": EncoderLayout(layers="transformer.layer", attention="attention",
                                projections=("q_lin", "k_lin", "v_lin"), attention_output="attention.out_lin",
                                heads_attribute="n_heads", ffn_in="ffn.lin1", ffn_out="ffn.lin2",
                                ffn_size_key="hidden_dim"),
}
#: model_type -> why its heads and FFN neurons cannot be pruned one layer at a time
UNPRUNABLE: Dict[str, str] = {
    "albert": "ALBERT's layers share one set of weights, so no layer can lose heads or FFN neurons of its own",
}


def layout_of(model_type: str) -> EncoderLayout:
    """The layout of ``model_type``; ``ValueError`` naming the supported ones (or why not) otherwise."""
    if model_type in LAYOUTS:
        return LAYOUTS[model_type]
    why = UNPRUNABLE.get(model_type, f"{model_type!r} has no known layout")
    raise ValueError(f"{why}; structured pruning supports {', '.join(sorted(LAYOUTS))}")


def get_path(module: Any, path: str) -> Any:
    """``module.a.b.c`` for ``path`` ``"a.b.c"`` (None where a part is missing)."""
    for part in path.split("."):
        module = getattr(module, part, None)
    return module


def set_path(module: Any, path: str, value: Any) -> None:
    parent, _, name = path.rpartition(".")
    setattr(get_path(module, parent) if parent else module, name, value)


def encoder_layers(model: nn.Module) -> List[nn.Module]:
    """The encoder layers of a classifier of a supported architecture, in order."""
    layout = layout_of(model.config.model_type)
    layers = get_path(getattr(model, "base_model", model), layout.layers)
    if layers is None:
        raise ValueError(f"{type(model).__name__} has no {layout.layers}")
    return list(layers)


def head_projections(layer: nn.Module, layout: EncoderLayout) -> List[Tuple[str, nn.Linear]]:
    """``(path, Linear)`` of every per-head projection this layer has (query, key, value first)."""
    attention = get_path(layer, layout.attention)
    names = layout.projections + tuple(n for n in layout.optional_projections if hasattr(attention, n))
    return [(f"{layout.attention}.{n}", getattr(attention, n)) for n in names]


def shrink_attention(model: nn.Module, heads_per_layer: Sequence[int]) -> None:
    """Give encoder layer ``i`` ``heads_per_layer[i]`` heads: new per-head projections and attention-output
    projection of the smaller shape (their values come from the checkpoint, or from the caller)."""
    layout = layout_of(model.config.model_type)
    layers = encoder_layers(model)
    if len(heads_per_layer) != len(layers):
        raise ValueError(f"{HEADS_KEY} lists {len(heads_per_layer)} layers; the model has {len(layers)}")
    for layer, heads in zip(layers, heads_per_layer):
        attention = get_path(layer, layout.attention)
        total = getattr(attention, layout.heads_attribute)
        if not 1 <= heads <= total:
            raise ValueError(f"a layer keeps 1..{total} heads, got {heads}")
        if heads == total:
            continue
        size = heads * attention.attention_head_size
        for path, old in head_projections(layer, layout):
            set_path(layer, path, nn.Linear(old.in_features, size, bias=old.bias is not None))
        setattr(attention, layout.heads_attribute, heads)
        if hasattr(attention, "all_head_size"):
            attention.all_head_size = size
        old = get_path(layer, layout.attention_output)
        set_path(layer, layout.attention_output, nn.Linear(size, old.out_features, bias=old.bias is not None))


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


class DebertaV2WithPrunedHeadsForSequenceClassification(PrunedHeadsMixin, DebertaV2ForSequenceClassification):
    """``DebertaV2ForSequenceClassification`` (mDeBERTa-v3) with per-layer head counts."""


class DistilBertWithPrunedHeadsForSequenceClassification(PrunedHeadsMixin, DistilBertForSequenceClassification):
    """``DistilBertForSequenceClassification`` with per-layer head counts."""


#: the plain classifier class -> its pruned-heads counterpart
PRUNED_HEADS_CLASSES: Dict[Type[PreTrainedModel], Type[PreTrainedModel]] = {
    BertForSequenceClassification: BertWithPrunedHeadsForSequenceClassification,
    RobertaForSequenceClassification: RobertaWithPrunedHeadsForSequenceClassification,
    XLMRobertaForSequenceClassification: XLMRobertaWithPrunedHeadsForSequenceClassification,
    ElectraForSequenceClassification: ElectraWithPrunedHeadsForSequenceClassification,
    DebertaV2ForSequenceClassification: DebertaV2WithPrunedHeadsForSequenceClassification,
    DistilBertForSequenceClassification: DistilBertWithPrunedHeadsForSequenceClassification,
}
