"""Building students: cut from the teacher (kept layers copied), a smaller config, or a checkpoint."""

from __future__ import annotations

import copy
import re
from typing import Any, Dict, List, Optional, Sequence

import torch
from transformers import AutoModelForSequenceClassification, PreTrainedModel

from ..errors import ModelError

_LAYER_KEY = re.compile(r"(^|\.)(encoder\.layer|layer|layers|h)\.(\d+)\.")


def default_layers(teacher_layers: int, student_layers: int) -> List[int]:
    """Teacher layers a cut student keeps: every k-th from the bottom (DistilBERT style)."""
    if not 1 <= student_layers <= teacher_layers:
        raise ModelError(f"a cut student keeps 1..{teacher_layers} layers, got {student_layers}")
    return [i * teacher_layers // student_layers for i in range(student_layers)]


def cut_config(teacher_config: Any, keep: Sequence[int]) -> Any:
    """The config of a student made of the teacher layers ``keep`` (checked to exist); the teacher's is not
    changed."""
    n_teacher = teacher_config.num_hidden_layers
    bad = [i for i in keep if not 0 <= i < n_teacher]
    if bad or not keep:
        raise ModelError(f"layers to keep must be in 0..{n_teacher - 1} (the teacher has {n_teacher}), "
                         f"got {list(keep)}")
    config = copy.deepcopy(teacher_config)
    config.num_hidden_layers = len(keep)
    heads = getattr(config, "attention_heads_per_layer", None)
    if heads:  # a head-pruned teacher: the kept layers keep their head counts
        config.attention_heads_per_layer = [heads[i] for i in keep]
    return config


def cut_student(teacher: PreTrainedModel, num_layers: Optional[int] = None,
                layers: Optional[Sequence[int]] = None) -> PreTrainedModel:
    """A student with ``layers`` of the teacher (or ``num_layers`` evenly spaced ones).

    Embeddings, pooler, classifier and the kept layers' weights are copied from the teacher.
    """
    n_teacher = teacher.config.num_hidden_layers
    keep = list(layers) if layers is not None else default_layers(n_teacher, num_layers or n_teacher // 2)
    student = type(teacher)(cut_config(teacher.config, keep))
    new_index = {old: new for new, old in enumerate(keep)}
    state: Dict[str, torch.Tensor] = {}
    for key, value in teacher.state_dict().items():
        match = _LAYER_KEY.search(key)
        if match is None:
            state[key] = value
            continue
        old = int(match.group(3))
        if old in new_index:
            start, end = match.span(3)
            state[key[:start] + str(new_index[old]) + key[end:]] = value
    missing, unexpected = student.load_state_dict(state, strict=False)
    if unexpected or [k for k in missing if "position_ids" not in k]:
        raise ModelError(f"could not copy teacher weights into the student: missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]}")
    return student


def config_student(teacher: PreTrainedModel, num_layers: int, hidden_size: Optional[int],
                   num_attention_heads: Optional[int], intermediate_size: Optional[int],
                   seed: int) -> PreTrainedModel:
    """A randomly initialised student of the teacher's architecture with smaller dimensions."""
    config = shaped_config(teacher.config, num_layers, hidden_size, num_attention_heads, intermediate_size)
    torch.manual_seed(seed)
    return type(teacher)(config)


def shaped_config(teacher_config: Any, num_layers: int, hidden_size: Optional[int],
                  num_attention_heads: Optional[int], intermediate_size: Optional[int]) -> Any:
    """The config of a ``config`` student: the teacher's with the given dimensions (checked to fit)."""
    config = copy.deepcopy(teacher_config)
    config.num_hidden_layers = num_layers
    if getattr(config, "attention_heads_per_layer", None):
        config.attention_heads_per_layer = None  # a new model: every layer has num_attention_heads heads
    for name, value in (("hidden_size", hidden_size), ("num_attention_heads", num_attention_heads),
                        ("intermediate_size", intermediate_size)):
        if value is not None:
            setattr(config, name, value)
    if config.hidden_size % config.num_attention_heads:
        raise ModelError(f"hidden_size {config.hidden_size} is not a multiple of num_attention_heads "
                         f"{config.num_attention_heads}")
    return config


def checkpoint_student(path: str, label_names: List[str]) -> PreTrainedModel:
    """A student loaded from a checkpoint; its label set must be the teacher's."""
    student = AutoModelForSequenceClassification.from_pretrained(path, num_labels=len(label_names))
    names = [student.config.id2label[i] for i in sorted(student.config.id2label)]
    if not all(re.fullmatch(r"LABEL_\d+", n) for n in names) and names != list(label_names):
        raise ModelError(f"student {path} has labels {names} but the teacher has {list(label_names)}; "
                         "the label sets must be the same, in the same order")
    student.config.id2label = dict(enumerate(label_names))
    student.config.label2id = {n: i for i, n in enumerate(label_names)}
    return student
