"""Structured pruning: FFN intermediate neurons and attention heads go; the saved model has smaller matrices.

FFN: each encoder layer keeps the same number of neurons (``config.intermediate_size`` is one number), so the
result reloads with plain ``AutoModelForSequenceClassification.from_pretrained``. Heads (:mod:`.heads`): layers
may keep different numbers, so the model is saved in the ``pruned-heads`` format (its own small modeling file,
``trust_remote_code=True``; an OpenVINO export of it needs no custom code).
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any, Dict, List, Tuple

import torch
from torch import nn
from transformers.pytorch_utils import prune_linear_layer

from ..formats.pruned_heads import structured_layout
from ..formats.pruned_heads_modeling import encoder_layers, get_path, set_path
from ..training.trainer import PaddingCollator, tokenize_split, train_classifier
from .heads import head_counts, head_importance, heads_to_keep, prune_heads
from .methods import PRUNING_METHODS

if TYPE_CHECKING:  # pragma: no cover
    from ..state import CompressionState
    from .step import PruneStep


def ffn_pairs(model: nn.Module) -> List[Tuple[nn.Linear, nn.Linear]]:
    """``(FFN input, FFN output)`` Linear of every encoder layer (``intermediate.dense`` / ``output.dense`` in
    BERT, ELECTRA, XLM-R, DeBERTa-v2; ``ffn.lin1`` / ``ffn.lin2`` in DistilBERT)."""
    layout = structured_layout(model.config)
    return [(get_path(layer, layout.ffn_in), get_path(layer, layout.ffn_out)) for layer in encoder_layers(model)]


def importance_batches(state: "CompressionState", samples: int, max_length: int) -> List[Dict[str, Any]]:
    """``samples`` training rows (drawn with the recipe's seed) as padded batches of 16 with labels."""
    train = state.data.splits["train"]
    rows = random.Random(state.seed).sample(range(len(train)), min(samples, len(train)))
    ds = tokenize_split(state.tokenizer, train.select(rows), max_length)
    collate = PaddingCollator(state.tokenizer)
    return [collate([dict(ds[j]) for j in range(i, min(i + 16, len(ds)))]) for i in range(0, len(ds), 16)]


def neuron_importance(model: nn.Module, state: "CompressionState", method: str, samples: int,
                      max_length: int) -> List[torch.Tensor]:
    """Importance of each FFN neuron per layer: ``|w * dL/dw|`` summed over its weights (gradient) or L1 norm."""
    pairs = ffn_pairs(model)
    if method == "magnitude":
        return [w_in.weight.detach().abs().sum(1) + w_out.weight.detach().abs().sum(0) for w_in, w_out in pairs]
    scores = [torch.zeros(w_in.out_features) for w_in, _ in pairs]
    was_training = model.training
    model.eval()  # no dropout: the scores are then deterministic
    for batch in importance_batches(state, samples, max_length):
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
    layout = structured_layout(model.config)
    for (w_in, w_out), score, layer in zip(ffn_pairs(model), scores, encoder_layers(model)):
        idx = torch.topk(score, keep).indices.sort().values
        set_path(layer, layout.ffn_in, prune_linear_layer(w_in, idx, dim=0))  # fewer output neurons
        set_path(layer, layout.ffn_out, prune_linear_layer(w_out, idx, dim=1))  # fewer inputs
    setattr(model.config, layout.ffn_size_key, keep)
    return model


@PRUNING_METHODS.register("structured")
def run(step: "PruneStep", state: "CompressionState") -> None:
    """Apply the ``structured`` method of a ``prune`` step to ``state.model``: score FFN neurons and heads on the
    unpruned model, remove the least important, then recover by fine-tuning or by distilling from the
    unpruned model (``recovery``)."""
    model = state.model
    params_before = sum(p.numel() for p in model.parameters())
    info: Dict[str, Any] = {"method": "structured", "importance": step.importance}
    extra: Dict[str, Any] = {}
    if step.recovery == "distil" and step.max_steps != 0:  # the unpruned model's logits, before it changes
        from ..distillation.cache import cached_teacher_logits
        from ..distillation.trainer import DistillationTrainer

        logits, hit = cached_teacher_logits(model.eval(), state.tokenizer, state.data.texts("train"),
                                            state.data.fingerprint("train"), step.max_length,
                                            progress=state.progress)
        extra = {"trainer_class": DistillationTrainer, "train_extra": {"teacher_logits": logits},
                 "trainer_kwargs": {"temperature": step.temperature, "alpha": step.alpha}}
        info.update(recovery="distil from the unpruned model", teacher_logits_cache_hit=hit)
    ffn_scores = head_scores = None
    if step.ffn_keep < 1:
        ffn_scores = neuron_importance(model, state, step.importance, step.importance_samples, step.max_length)
    if step.heads_keep < 1:
        batches = importance_batches(state, step.importance_samples, step.max_length) \
            if step.importance == "gradient" else []
        head_scores = head_importance(model, batches, step.importance)
    if ffn_scores is not None:
        size_key = structured_layout(model.config).ffn_size_key
        before = getattr(model.config, size_key)
        prune_ffn(model, max(1, int(round(step.ffn_keep * before))), ffn_scores)
        info.update(intermediate_size_before=before, intermediate_size_after=getattr(model.config, size_key))
    if head_scores is not None:
        info["heads_per_layer_before"] = head_counts(model)
        keep = heads_to_keep(head_scores, step.heads_keep, step.scope)
        model = prune_heads(model, keep)
        info.update(heads_per_layer_after=head_counts(model), heads_kept=keep, heads_scope=step.scope)
        state.format = "pruned-heads"
    if step.max_steps != 0:
        info.setdefault("recovery", "fine-tune")
        model = train_classifier(
            model, state.tokenizer, state.data, state.work_dir / "prune", epochs=step.epochs,
            learning_rate=step.learning_rate, batch_size=step.batch_size, max_length=step.max_length,
            seed=step.seed if step.seed is not None else state.seed, max_steps=step.max_steps,
            progress=state.progress, record=info, **extra)
    state.model = model
    state.note(**info, parameters_before=params_before,
               parameters_after=sum(p.numel() for p in model.parameters()))
