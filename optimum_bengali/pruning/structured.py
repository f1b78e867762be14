"""Structured pruning of FFN intermediate neurons: the saved model has smaller matrices.

Each encoder layer keeps the same number of neurons (``config.intermediate_size`` is one number), so
the result reloads with plain ``AutoModelForSequenceClassification.from_pretrained``.

Attention heads are not removed: transformers 5 dropped ``prune_heads``/``config.pruned_heads``, so a
model with fewer heads than ``hidden_size / head_dim`` would not reload with plain ``from_pretrained``.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, List, Tuple

import torch
from torch import nn
from transformers.pytorch_utils import prune_linear_layer

from ..errors import ModelError
from ..training.trainer import PaddingCollator, tokenize_split, train_classifier

if TYPE_CHECKING:  # pragma: no cover
    from ..state import CompressionState
    from .step import PruneStep


def ffn_pairs(model: nn.Module) -> List[Tuple[nn.Linear, nn.Linear]]:
    """``(intermediate.dense, output.dense)`` of every encoder layer (BERT, ELECTRA, XLM-R, ...)."""
    base = getattr(model, "base_model", model)
    layers = getattr(getattr(base, "encoder", None), "layer", None)
    if layers is None:
        raise ModelError(f"structured pruning supports BERT-family encoders (encoder.layer.N.intermediate); "
                         f"{type(model).__name__} has no encoder.layer")
    return [(layer.intermediate.dense, layer.output.dense) for layer in layers]


def neuron_importance(model: nn.Module, state: "CompressionState", method: str, samples: int,
                      max_length: int) -> List[torch.Tensor]:
    """Importance of each FFN neuron per layer: ``|w * dL/dw|`` summed over its weights (gradient) or L1 norm."""
    pairs = ffn_pairs(model)
    if method == "magnitude":
        return [w_in.weight.detach().abs().sum(1) + w_out.weight.detach().abs().sum(0) for w_in, w_out in pairs]
    train = state.data.splits["train"]
    rows = random.Random(state.seed).sample(range(len(train)), min(samples, len(train)))
    ds = tokenize_split(state.tokenizer, train.select(rows), max_length)
    collate = PaddingCollator(state.tokenizer)
    scores = [torch.zeros(w_in.out_features) for w_in, _ in pairs]
    was_training = model.training
    model.eval()  # no dropout: the scores are then deterministic
    for i in range(0, len(ds), 16):
        batch = collate([dict(ds[j]) for j in range(i, min(i + 16, len(ds)))])
        model.zero_grad()
        model(**batch).loss.backward()
        for k, (w_in, w_out) in enumerate(pairs):
            scores[k] += (w_in.weight * w_in.weight.grad).detach().abs().sum(1)
            scores[k] += (w_out.weight * w_out.weight.grad).detach().abs().sum(0)
    model.zero_grad()
    model.train(was_training)
    return scores


def prune_ffn(model: nn.Module, keep: int, scores: List[torch.Tensor]) -> nn.Module:
    """Keep the ``keep`` highest-scoring FFN neurons in every layer (in place); updates the config."""
    for (w_in, w_out), score, layer in zip(ffn_pairs(model), scores, model.base_model.encoder.layer):
        idx = torch.topk(score, keep).indices.sort().values
        layer.intermediate.dense = prune_linear_layer(w_in, idx, dim=0)  # fewer output neurons
        layer.output.dense = prune_linear_layer(w_out, idx, dim=1)  # fewer inputs
    model.config.intermediate_size = keep
    return model


def run(step: "PruneStep", state: "CompressionState") -> None:
    """Apply the ``structured`` method of a ``prune`` step to ``state.model``."""
    model = state.model
    before = model.config.intermediate_size
    keep = max(1, int(round(step.ffn_keep * before)))
    scores = neuron_importance(model, state, step.importance, step.importance_samples, step.max_length)
    params_before = sum(p.numel() for p in model.parameters())
    prune_ffn(model, keep, scores)
    if step.max_steps != 0:
        model = train_classifier(
            model, state.tokenizer, state.data, state.work_dir / "prune", epochs=step.epochs,
            learning_rate=step.learning_rate, batch_size=step.batch_size, max_length=step.max_length,
            seed=step.seed if step.seed is not None else state.seed, max_steps=step.max_steps,
            progress=state.progress)
    state.model = model
    state.note(method="structured", intermediate_size_before=before, intermediate_size_after=keep,
               parameters_before=params_before, parameters_after=sum(p.numel() for p in model.parameters()))
