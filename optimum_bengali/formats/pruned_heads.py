"""Head-pruned classifiers: a plain transformers folder whose layers keep different numbers of attention heads.

The config lists the heads each layer keeps (``attention_heads_per_layer``) and names the folder's own loader,
``modeling_pruned_heads.py``, in its ``auto_map``: ``AutoModelForSequenceClassification.from_pretrained(folder,
trust_remote_code=True)`` loads it without this package (the Hub's custom-code convention), and
:class:`PrunedHeadsModelForSequenceClassification` loads it without running code from the folder. An
OpenVINO export of such a model needs no custom code at all.
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any, Union

from transformers import AutoConfig, AutoModelForSequenceClassification, PreTrainedModel

from ..errors import ModelError
from .pruned_heads_modeling import HEADS_KEY, PRUNED_HEADS_CLASSES, EncoderLayout, layout_of
from .pytorch import save_pytorch
from .registry import ModelFormat, register_format

LOADER_FILE = "modeling_pruned_heads.py"


def pruned_heads_class(model_or_config: Any) -> type:
    """The pruned-heads class for a classifier or its config (BERT, RoBERTa, XLM-R, ELECTRA)."""
    config = getattr(model_or_config, "config", model_or_config)
    if isinstance(model_or_config, PreTrainedModel):
        kind = type(model_or_config)
        if kind in PRUNED_HEADS_CLASSES.values():
            return kind
        plain = kind
    else:
        plain = AutoModelForSequenceClassification._model_mapping.get(type(config), None)
    if plain not in PRUNED_HEADS_CLASSES:
        names = ", ".join(sorted(c.__name__ for c in PRUNED_HEADS_CLASSES))
        raise ModelError(f"attention-head pruning supports {names}; the model is {config.model_type!r}")
    return PRUNED_HEADS_CLASSES[plain]


def structured_layout(config: Any) -> EncoderLayout:
    """The layout of the config's architecture (where its heads and FFN neurons are); a one-line
    :class:`ModelError` when structured pruning cannot change it (an unknown architecture, ALBERT)."""
    try:
        return layout_of(config.model_type)
    except ValueError as exc:
        raise ModelError(str(exc)) from None


def save_pruned_heads(model: PreTrainedModel, folder: Union[str, Path]) -> None:
    """The usual PyTorch folder plus ``modeling_pruned_heads.py`` and an ``auto_map`` naming its class."""
    folder = Path(folder)
    save_pytorch(model, folder)
    config = copy.deepcopy(model.config)
    config.auto_map = {"AutoModelForSequenceClassification":
                       f"{Path(LOADER_FILE).stem}.{pruned_heads_class(model).__name__}"}
    config.save_pretrained(folder)
    shutil.copyfile(Path(__file__).with_name("pruned_heads_modeling.py"), folder / LOADER_FILE)


def is_head_pruned(model: Any) -> bool:
    """True when some layer of ``model`` (a PyTorch classifier) keeps fewer heads than its config names."""
    heads = getattr(getattr(model, "config", None), HEADS_KEY, None)
    return bool(heads) and min(heads) < model.config.num_attention_heads


class PrunedHeadsModelForSequenceClassification:
    """Loader for head-pruned folders: ``.from_pretrained(folder)`` returns the classifier (a subclass of the
    architecture's own, e.g. ``BertForSequenceClassification``) without running code from the folder."""

    @classmethod
    def from_pretrained(cls, folder: Union[str, Path], **kwargs: Any) -> PreTrainedModel:
        config = AutoConfig.from_pretrained(str(folder), trust_remote_code=False)
        config.auto_map = {}
        kwargs.pop("trust_remote_code", None)
        return pruned_heads_class(config).from_pretrained(str(folder), config=config, **kwargs)


PRUNED_HEADS = register_format(ModelFormat(
    name="pruned-heads", marker=LOADER_FILE, load=PrunedHeadsModelForSequenceClassification.from_pretrained,
    save=save_pruned_heads, loader="transformers import AutoModelForSequenceClassification",
    loader_kwargs="trust_remote_code=True", trainable=True))
