"""Attention-head pruning: score every head, keep the best, and rebuild the model with fewer heads.

Importance as in Michel et al. 2019 ("Are Sixteen Heads Really Better than One?"): a gate ``xi_h = 1`` multiplies
each head's output, and a head's importance is ``sum over batches |dL/dxi_h|``, the loss change its removal
would cause to first order; scores are normalised per layer (L2) so that layers compare for a global choice.
The gates are forward pre-hooks on the attention-output projections (transformers 5 has no ``head_mask``), whose
input is the heads' concatenated output in every supported architecture (:data:`LAYOUTS`).
"""

from __future__ import annotations

import copy
from typing import Callable, Iterable, List, Sequence

import torch
from torch import nn
from transformers import PreTrainedModel

from ..errors import ModelError
from ..formats.pruned_heads import pruned_heads_class
from ..formats.pruned_heads_modeling import HEADS_KEY, encoder_layers, get_path, head_projections, layout_of


def head_counts(model: nn.Module) -> List[int]:
    """Heads each encoder layer of ``model`` has now."""
    layout = layout_of(model.config.model_type)
    return [getattr(get_path(layer, layout.attention), layout.heads_attribute) for layer in encoder_layers(model)]


def head_importance(model: PreTrainedModel, batches: Iterable[dict], method: str = "gradient") -> List[torch.Tensor]:
    """A score per head and layer (higher: more important), each layer's scores L2-normalised.

    ``gradient``: ``|dL/dxi_h|`` summed over ``batches`` (dicts of model inputs with ``labels``); ``magnitude``:
    the L1 norm of the head's query, key and value rows and attention-output columns.
    """
    layers = encoder_layers(model)
    layout = layout_of(model.config.model_type)
    counts = head_counts(model)
    if method == "magnitude":
        scores = []
        for layer, heads in zip(layers, counts):
            d = get_path(layer, layout.attention).attention_head_size
            rows = sum(m.weight.detach().abs().reshape(-1, d, m.in_features).sum((1, 2))
                       for _, m in head_projections(layer, layout)[:3])  # query, key, value
            cols = get_path(layer, layout.attention_output).weight.detach().abs().reshape(-1, heads, d)
            scores.append(rows + cols.sum((0, 2)))
    else:
        gates = [torch.ones(heads, requires_grad=True) for heads in counts]
        hooks = [get_path(layer, layout.attention_output).register_forward_pre_hook(_gate(gate))
                 for layer, gate in zip(layers, gates)]
        scores = [torch.zeros_like(g) for g in gates]
        was_training = model.training
        model.eval()  # no dropout: the scores are deterministic
        try:
            for batch in batches:
                model.zero_grad()
                loss = model(**batch).loss
                grads = torch.autograd.grad(loss, gates)
                for score, grad in zip(scores, grads):
                    score += grad.detach().abs()
        finally:
            for hook in hooks:
                hook.remove()
            model.zero_grad()
            model.train(was_training)
    return [s / s.norm().clamp(min=1e-12) for s in scores]


def _gate(gate: torch.Tensor) -> Callable:
    def hook(module: nn.Module, inputs: tuple) -> tuple:
        context = inputs[0]  # (batch, tokens, heads * head_size): the input of the attention-output projection
        shape = context.shape
        gated = (context.reshape(*shape[:-1], gate.numel(), -1) * gate.view(-1, 1).to(context.dtype)).view(shape)
        return (gated, *inputs[1:])

    return hook


def heads_to_keep(scores: Sequence[torch.Tensor], keep: float, scope: str = "global") -> List[List[int]]:
    """Indices of the heads each layer keeps: the best ``keep`` share of all heads (``global``: layers may keep
    different counts) or of each layer's heads (``local``); every layer keeps at least one head."""
    if scope == "global":
        n = max(len(scores), int(round(keep * sum(len(s) for s in scores))))
        flat = sorted(((float(v), i, h) for i, s in enumerate(scores) for h, v in enumerate(s)), reverse=True)
        chosen = {(i, int(torch.argmax(s))) for i, s in enumerate(scores)}  # every layer keeps its best head
        for _, i, h in flat:
            if len(chosen) >= n:
                break
            chosen.add((i, h))
        return [sorted(h for (j, h) in chosen if j == i) for i in range(len(scores))]
    counts = [max(1, int(round(keep * len(s)))) for s in scores]
    return [sorted(torch.topk(s, c).indices.tolist()) for s, c in zip(scores, counts)]


def prune_heads(model: PreTrainedModel, keep: Sequence[Sequence[int]]) -> PreTrainedModel:
    """A new model whose layer ``i`` keeps only heads ``keep[i]``, with the kept heads' weights; ``model`` is
    left as it is.

    The result is the architecture's pruned-heads class (see :mod:`optimum_bengali.formats.pruned_heads`), with
    ``config.attention_heads_per_layer`` set; that class builds the smaller projections, so it trains, saves and
    reloads like any classifier."""
    layers = encoder_layers(model)
    layout = layout_of(model.config.model_type)
    if len(keep) != len(layers):
        raise ModelError(f"head lists for {len(keep)} layers; the model has {len(layers)}")
    names = {id(module): name for name, module in model.named_modules()}
    # the state dict is sliced, not the modules: the result is a new (pruned-heads) class built from its config,
    # which transformers' prune_linear_layer (it replaces a Linear in place) cannot give
    state = model.state_dict()
    for layer, heads, total in zip(layers, keep, head_counts(model)):
        if not heads or any(not 0 <= h < total for h in heads):
            raise ModelError(f"heads to keep must be 1..{total} indices in 0..{total - 1}, got {list(heads)}")
        d = get_path(layer, layout.attention).attention_head_size
        index = torch.tensor([h * d + k for h in sorted(heads) for k in range(d)])
        for _, module in head_projections(layer, layout):  # a head is a block of output rows ...
            for part in ("weight", "bias"):
                if getattr(module, part) is not None:
                    key = f"{names[id(module)]}.{part}"
                    state[key] = state[key].index_select(0, index)
        key = f"{names[id(get_path(layer, layout.attention_output))]}.weight"  # ... and of its input columns
        state[key] = state[key].index_select(1, index)
    config = copy.deepcopy(model.config)
    setattr(config, HEADS_KEY, [len(h) for h in keep])
    pruned = pruned_heads_class(model)(config)
    pruned.load_state_dict(state)
    return pruned.to(next(model.parameters()).device).train(model.training)
