"""Unstructured magnitude pruning with ``torch.nn.utils.prune`` (one-shot or gradual cubic schedule)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict, List, Tuple

import torch
from torch.nn.utils import prune
from transformers import TrainerCallback

from ..training.trainer import train_classifier
from .methods import PRUNING_METHODS

if TYPE_CHECKING:  # pragma: no cover
    from ..state import CompressionState
    from .step import PruneStep


def prunable_linears(model: torch.nn.Module) -> List[Tuple[str, torch.nn.Linear]]:
    """The encoder's Linear layers (embeddings and classification head are left dense)."""
    return [(name, m) for name, m in model.named_modules()
            if isinstance(m, torch.nn.Linear) and ".encoder." in f".{name}."]


def _weight(m: torch.nn.Linear) -> torch.Tensor:
    return m.weight_orig * m.weight_mask if hasattr(m, "weight_mask") else m.weight


def measure_sparsity(model: torch.nn.Module) -> Dict[str, float]:
    """True fraction of zero weights per prunable layer, and ``"overall"``."""
    out, zeros, total = {}, 0, 0
    for name, m in prunable_linears(model):
        w = _weight(m).detach()
        z = int((w == 0).sum())
        out[name] = z / w.numel()
        zeros, total = zeros + z, total + w.numel()
    out["overall"] = zeros / max(total, 1)
    return out


def apply_sparsity(model: torch.nn.Module, target: float, scope: str = "global") -> None:
    """Prune (more) weights by L1 magnitude so that the encoder's Linear weights reach ``target`` sparsity.

    Masks stack: weights already pruned stay pruned. ``scope="local"`` gives each layer the target.
    """
    layers = [m for _, m in prunable_linears(model)]
    if scope == "global":
        total = sum(m.weight.numel() for m in layers)
        already = sum(int((getattr(m, "weight_mask", torch.ones(1)) == 0).sum()) for m in layers)
        amount = int(round(target * total)) - already
        if amount > 0:
            prune.global_unstructured([(m, "weight") for m in layers], pruning_method=prune.L1Unstructured,
                                      amount=amount)
    else:
        for m in layers:
            already = int((getattr(m, "weight_mask", torch.ones(1)) == 0).sum())
            amount = int(round(target * m.weight.numel())) - already
            if amount > 0:
                prune.l1_unstructured(m, "weight", amount=amount)


def make_permanent(model: torch.nn.Module) -> None:
    """Fold masks into the weights (``prune.remove``) so the model saves as a plain checkpoint."""
    for _, m in prunable_linears(model):
        if hasattr(m, "weight_mask"):
            prune.remove(m, "weight")


def cubic_sparsity(step: int, total_steps: int, initial: float, final: float) -> float:
    """Zhu & Gupta: ``s_t = s_f + (s_i - s_f) (1 - t / T)^3``, reaching ``final`` at ``T``."""
    frac = min(max(step / max(total_steps, 1), 0.0), 1.0)
    return final + (initial - final) * (1.0 - frac) ** 3


class GradualPruningCallback(TrainerCallback):
    """Raises sparsity on the cubic schedule every ``update_every`` optimizer steps; the schedule ends at
    80% of training so the last steps recover accuracy at the final sparsity."""

    def __init__(self, model: torch.nn.Module, settings: "PruneStep"):
        self.model, self.s = model, settings

    def on_step_end(self, args, state, control, **kwargs):  # noqa: D401 - Trainer hook
        if state.global_step % self.s.update_every == 0:
            end = max(1, int(0.8 * state.max_steps))
            target = cubic_sparsity(state.global_step, end, self.s.initial_sparsity, self.s.sparsity)
            apply_sparsity(self.model, target, self.s.scope)
        return control


@PRUNING_METHODS.register("magnitude")
def run(step: "PruneStep", state: "CompressionState") -> None:
    """Apply the ``magnitude`` method of a ``prune`` step to ``state.model``."""
    model = state.model
    train = step.max_steps != 0
    if step.schedule == "oneshot" or not train:
        apply_sparsity(model, step.sparsity, step.scope)
        callbacks = []
    else:
        apply_sparsity(model, step.initial_sparsity, step.scope)
        callbacks = [GradualPruningCallback(model, step)]
    if train:
        model = train_classifier(
            model, state.tokenizer, state.data, state.work_dir / "prune", epochs=step.epochs,
            learning_rate=step.learning_rate, batch_size=step.batch_size, max_length=step.max_length,
            seed=step.seed if step.seed is not None else state.seed, max_steps=step.max_steps,
            callbacks=callbacks, progress=state.progress, load_best=False)
        apply_sparsity(model, step.sparsity, step.scope)  # a schedule cut short still ends at the target
    make_permanent(model)
    state.model = model
    measured = measure_sparsity(model)
    if step.save == "sparse":
        state.format = "sparse"  # still a PyTorch model; the pipeline saves it as bitmask + values
    state.note(method="magnitude", target_sparsity=step.sparsity, sparsity=measured.pop("overall"),
               sparsity_per_layer=measured)
