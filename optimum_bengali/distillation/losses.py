"""Distillation losses, written out so that each is a few lines a reader can check by hand."""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

#: label of a row without a gold label (teacher-labelled augmentation): left out of the cross-entropy
UNLABELLED = -100


def kd_loss(student_logits: torch.Tensor, teacher_logits: Optional[torch.Tensor], labels: Optional[torch.Tensor],
            temperature: float = 2.0, alpha: float = 0.5) -> torch.Tensor:
    """``alpha * T^2 * KL(softmax(t/T) || softmax(s/T)) + (1 - alpha) * CE(s, labels)``.

    KL is averaged over the batch (``batchmean``). With no teacher logits only the cross-entropy counts;
    with no labels only the soft term. Rows labelled -100 (teacher-labelled augmentation) count in the soft
    term only; the cross-entropy is the mean over the other rows.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    loss = student_logits.new_zeros(())
    if teacher_logits is not None and alpha > 0:
        soft = F.kl_div(F.log_softmax(student_logits / temperature, dim=-1),
                        F.softmax(teacher_logits.to(student_logits.dtype) / temperature, dim=-1),
                        reduction="batchmean") * temperature ** 2
        loss = loss + (alpha if labels is not None else 1.0) * soft
    if labels is not None and (teacher_logits is None or alpha < 1):
        weight = 1.0 if teacher_logits is None else 1.0 - alpha
        labelled = labels != UNLABELLED
        if bool(labelled.all()):
            loss = loss + weight * F.cross_entropy(student_logits, labels)
        elif bool(labelled.any()):
            loss = loss + weight * F.cross_entropy(student_logits[labelled], labels[labelled])
    return loss


def hidden_mse(student_hidden: torch.Tensor, teacher_hidden: torch.Tensor,
               attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error between hidden states over real (non-padding) tokens."""
    mask = attention_mask.unsqueeze(-1).to(student_hidden.dtype)
    diff = (student_hidden - teacher_hidden.to(student_hidden.dtype)) ** 2 * mask
    return diff.sum() / (mask.sum() * student_hidden.shape[-1]).clamp(min=1)


def attention_kl(student_attn: torch.Tensor, teacher_attn: torch.Tensor,
                 attention_mask: torch.Tensor) -> torch.Tensor:
    """KL(teacher || student) between attention distributions (MiniLM/TinyBERT style).

    Heads are averaged first when the two models have a different number of heads.
    """
    if student_attn.shape[1] != teacher_attn.shape[1]:
        student_attn, teacher_attn = student_attn.mean(1, keepdim=True), teacher_attn.mean(1, keepdim=True)
    eps = 1e-8
    kl = (teacher_attn * ((teacher_attn + eps).log() - (student_attn + eps).log())).sum(-1)  # B,H,Q
    mask = attention_mask[:, None, :].to(kl.dtype)
    return (kl * mask).sum() / (mask.sum() * kl.shape[1]).clamp(min=1)


def value_relation(values: torch.Tensor, head_size: int, attention_mask: torch.Tensor) -> torch.Tensor:
    """MiniLM's value relation of one layer: ``softmax(V_h V_h^T / sqrt(head_size))`` per head ``h``.

    ``values`` is the output of the layer's value projection (batch, tokens, heads * head_size); padding keys
    get no weight. Returns (batch, heads, tokens, tokens) rows that sum to 1, comparable with
    :func:`attention_kl` like attention maps.
    """
    if values.shape[-1] % head_size:
        raise ValueError(f"value width {values.shape[-1]} is not a multiple of the head size {head_size}")
    b, n, width = values.shape
    v = values.view(b, n, width // head_size, head_size).transpose(1, 2)  # B, H, N, d
    scores = v @ v.transpose(-1, -2) / head_size ** 0.5
    scores = scores.masked_fill(~attention_mask[:, None, None, :].bool(), torch.finfo(scores.dtype).min)
    return scores.softmax(-1)
