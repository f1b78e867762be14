"""Knowledge distillation: black-box (cached teacher logits) and white-box (hidden states, attention maps,
value relations)."""

from .losses import attention_kl, hidden_mse, kd_loss, value_relation
from .student import cut_student, default_layers

__all__ = ["kd_loss", "hidden_mse", "attention_kl", "value_relation", "cut_student", "default_layers"]
