"""``transformers.Trainer`` with a distillation loss (so ``accelerate launch`` works unchanged)."""

from __future__ import annotations

from contextlib import ExitStack, contextmanager
from typing import Any, Dict, Iterator, List, Optional, Tuple

import torch
from torch import nn
from transformers import PreTrainedModel, Trainer

from ..formats.pruned_heads_modeling import LAYOUTS, encoder_layers, get_path
from .losses import attention_kl, hidden_mse, kd_loss, value_relation

TEACHER_LOGITS = "extra_teacher_logits"


def self_attentions(model: nn.Module) -> List[Tuple[nn.Module, nn.Linear]]:
    """``(attention block, value projection)`` of every layer, in layer order: the block holds the head size and
    the ``dropout`` on the attention probabilities. Architectures with a known layout (BERT, ELECTRA, XLM-R,
    DeBERTa-v2, DistilBERT and their pruned-heads variants) are read through it; any other, as a module with
    ``query``, ``key``, ``value`` and a ``dropout``."""
    layout = LAYOUTS.get(getattr(getattr(model, "config", None), "model_type", None))
    if layout is not None:
        blocks = [get_path(layer, layout.attention) for layer in encoder_layers(model)]
        return [(b, getattr(b, layout.value)) for b in blocks]
    return [(m, m.value) for m in model.modules()
            if isinstance(getattr(m, "dropout", None), nn.Dropout) and all(hasattr(m, n) for n in ("query", "key", "value"))]


def attention_dropouts(model: nn.Module) -> List[nn.Dropout]:
    """The dropout applied to the attention probabilities of every self-attention block."""
    return [block.dropout for block, _ in self_attentions(model)]


@contextmanager
def captured_values(model: nn.Module, layers: List[int]) -> Iterator[Dict[int, Tuple[torch.Tensor, int]]]:
    """While inside, every forward of ``model`` records the value projection of each of ``layers``:
    ``{layer: (values, head_size)}``, values of shape (batch, tokens, heads * head_size), still in the graph."""
    blocks = self_attentions(model)
    captured: Dict[int, Tuple[torch.Tensor, int]] = {}
    handles = []
    for i in layers:
        block, value = blocks[i]
        size = int(getattr(block, "attention_head_size", 0)
                   or model.config.hidden_size // model.config.num_attention_heads)
        handles.append(value.register_forward_hook(
            lambda _m, _inp, out, i=i, size=size: captured.__setitem__(i, (out, size))))
    try:
        yield captured
    finally:
        for h in handles:
            h.remove()


@contextmanager
def attention_dropout_off(model: nn.Module) -> Iterator[None]:
    """Run ``model`` with attention-probability dropout switched off (hidden-state dropout stays on).

    transformers' eager attention returns the weights *after* dropout in training mode: rows that no longer sum
    to 1, with zeros, which a KL against the teacher's maps can never bring to 0. With this the student's maps
    are its attention probabilities, the quantity the teacher's are compared with.
    """
    dropouts = attention_dropouts(model)
    rates = [d.p for d in dropouts]
    for d in dropouts:
        d.p = 0.0
    try:
        yield
    finally:
        for d, p in zip(dropouts, rates):
            d.p = p


class DistillationTrainer(Trainer):
    """Black-box: soft targets come in the batch (``extra_teacher_logits``). White-box: the teacher runs
    in the same process and hidden states / attention maps (and, with ``value_weight``, MiniLM value
    relations) of ``layer_map`` are matched too."""

    def __init__(self, *args: Any, temperature: float = 2.0, alpha: float = 0.5,
                 teacher: Optional[PreTrainedModel] = None, layer_map: Optional[Dict[int, int]] = None,
                 hidden_weight: float = 1.0, attention_weight: float = 1.0, value_weight: float = 0.0,
                 **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.temperature, self.alpha = temperature, alpha
        self.teacher = teacher
        self.layer_map = layer_map or {}
        self.hidden_weight, self.attention_weight = hidden_weight, attention_weight
        self.value_weight = value_weight
        if teacher is not None:
            teacher.eval()
            for p in teacher.parameters():
                p.requires_grad_(False)

    def white_box_terms(self, student_out: Any, teacher_out: Any, attention_mask: torch.Tensor,
                        student_values: Optional[Dict[int, Tuple[torch.Tensor, int]]] = None,
                        teacher_values: Optional[Dict[int, Tuple[torch.Tensor, int]]] = None,
                        ) -> Dict[str, torch.Tensor]:
        """The unweighted white-box terms summed over ``layer_map``: ``hidden`` (MSE of student layer ``s``'s
        output against teacher layer ``t``'s), ``attention`` (KL of their attention maps) and, given the
        captured value projections (:func:`captured_values`), ``value`` (KL of their value relations)."""
        hidden = attention = value = student_out.logits.new_zeros(())
        for s, t in self.layer_map.items():
            # hidden_states[0] is the embedding output, so layer i's output is at i + 1
            hidden = hidden + hidden_mse(student_out.hidden_states[s + 1], teacher_out.hidden_states[t + 1],
                                         attention_mask)
            attention = attention + attention_kl(student_out.attentions[s], teacher_out.attentions[t], attention_mask)
            if student_values is not None and teacher_values is not None:
                value = value + attention_kl(value_relation(*student_values[s], attention_mask),
                                             value_relation(*teacher_values[t], attention_mask), attention_mask)
        return {"hidden": hidden, "attention": attention, "value": value}

    def compute_loss(self, model: PreTrainedModel, inputs: Dict[str, torch.Tensor], return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> Any:
        labels = inputs.pop("labels", None)
        teacher_logits = inputs.pop(TEACHER_LOGITS, None)
        white = self.teacher is not None and model.training
        values = white and self.value_weight > 0
        with ExitStack() as stack:
            if white and self.attention_weight > 0:
                stack.enter_context(attention_dropout_off(model))
            s_values = stack.enter_context(captured_values(model, list(self.layer_map))) if values else None
            outputs = model(**inputs, output_hidden_states=white, output_attentions=white)
        extra = outputs.logits.new_zeros(())
        if white:
            device = outputs.logits.device
            if next(self.teacher.parameters()).device != device:  # the Trainer moved only the student
                self.teacher.to(device)
            with torch.no_grad(), ExitStack() as stack:
                t_values = (stack.enter_context(captured_values(self.teacher, list(self.layer_map.values())))
                            if values else None)
                t_out = self.teacher(**inputs, output_hidden_states=True, output_attentions=True)
            teacher_logits = t_out.logits
            terms = self.white_box_terms(outputs, t_out, inputs["attention_mask"], s_values, t_values)
            extra = (self.hidden_weight * terms["hidden"] + self.attention_weight * terms["attention"]
                     + self.value_weight * terms["value"])
        loss = kd_loss(outputs.logits, teacher_logits if model.training else None, labels,
                       self.temperature, self.alpha) + extra
        return (loss, outputs) if return_outputs else loss
