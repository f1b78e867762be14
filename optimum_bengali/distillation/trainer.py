"""``transformers.Trainer`` with a distillation loss (so ``accelerate launch`` works unchanged)."""

from __future__ import annotations

from typing import Any, Dict, Optional

import torch
from transformers import PreTrainedModel, Trainer

from .losses import attention_kl, hidden_mse, kd_loss

TEACHER_LOGITS = "extra_teacher_logits"


class DistillationTrainer(Trainer):
    """Black-box: soft targets come in the batch (``extra_teacher_logits``). White-box: the teacher runs
    in the same process and hidden states / attention maps of ``layer_map`` are matched too."""

    def __init__(self, *args: Any, temperature: float = 2.0, alpha: float = 0.5,
                 teacher: Optional[PreTrainedModel] = None, layer_map: Optional[Dict[int, int]] = None,
                 hidden_weight: float = 1.0, attention_weight: float = 1.0, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.temperature, self.alpha = temperature, alpha
        self.teacher = teacher
        self.layer_map = layer_map or {}
        self.hidden_weight, self.attention_weight = hidden_weight, attention_weight
        if teacher is not None:
            teacher.eval()
            for p in teacher.parameters():
                p.requires_grad_(False)

    def compute_loss(self, model: PreTrainedModel, inputs: Dict[str, torch.Tensor], return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> Any:
        labels = inputs.pop("labels", None)
        teacher_logits = inputs.pop(TEACHER_LOGITS, None)
        white = self.teacher is not None and model.training
        outputs = model(**inputs, output_hidden_states=white, output_attentions=white)
        extra = outputs.logits.new_zeros(())
        if white:
            device = outputs.logits.device
            if next(self.teacher.parameters()).device != device:  # the Trainer moved only the student
                self.teacher.to(device)
            with torch.no_grad():
                t_out = self.teacher(**inputs, output_hidden_states=True, output_attentions=True)
            teacher_logits = t_out.logits
            mask = inputs["attention_mask"]
            for s, t in self.layer_map.items():
                # hidden_states[0] is the embedding output, so layer i is at i + 1
                extra = extra + self.hidden_weight * hidden_mse(outputs.hidden_states[s + 1],
                                                                t_out.hidden_states[t + 1], mask)
                extra = extra + self.attention_weight * attention_kl(outputs.attentions[s], t_out.attentions[t], mask)
        loss = kd_loss(outputs.logits, teacher_logits if model.training else None, labels,
                       self.temperature, self.alpha) + extra
        return (loss, outputs) if return_outputs else loss
