"""The ``prune`` recipe step: ``method: magnitude`` (unstructured) or ``method: structured`` (FFN neurons and
attention heads)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Dict, Literal, Optional

from ..registry import register_step
from ..steps import MAX_EPOCHS, SettingError, Step, only_for, setting
from .methods import PRUNING_METHODS

if TYPE_CHECKING:  # pragma: no cover
    from ..state import CompressionState, ModelFacts

_ONLY = {"magnitude": ("sparsity", "schedule", "initial_sparsity", "update_every", "save"),
         "structured": ("ffn_keep", "heads_keep", "importance", "importance_samples", "recovery", "temperature",
                        "alpha")}


@register_step("prune")
@dataclass
class PruneStep(Step):
    """Prune, then fine-tune to recover (set ``epochs``/``max_steps``; ``max_steps: 0`` skips training).

    ``magnitude``: unstructured L1 magnitude pruning of the encoder's Linear weights (``torch.nn.utils.prune``),
    ``global`` or per-layer (``local``), one-shot or on a gradual cubic schedule (Zhu & Gupta 2017) during
    fine-tuning; masks stay applied after every optimizer step and are made permanent at the end.
    Sparse weights run on dense kernels: this saves no time. ``save: sparse`` stores the final model as a
    bitmask plus non-zero values (:mod:`optimum_bengali.formats.sparse`), which saves disk; ``dense`` (the
    default) keeps the plain ``from_pretrained`` folder.
    ``structured``: remove the least important FFN intermediate neurons (``importance``: ``gradient``
    x weight over ``importance_samples`` training rows, or ``magnitude``), keeping ``ffn_keep`` of them in
    every layer, so the saved model has smaller matrices and reloads with plain ``from_pretrained``; and the
    least important attention heads, keeping ``heads_keep`` of them (Michel et al. 2019: gradient of the loss
    w.r.t. a gate on each head), over all layers (``scope: global``, layers may keep different counts) or in
    each layer (``local``). A head-pruned model is saved in the ``pruned-heads`` format (loads with
    ``trust_remote_code=True``). ``recovery``: ``finetune`` on the labels, or ``distil`` (black-box, with
    ``temperature`` and ``alpha``) from the model as it was before this step.
    """

    method: Literal["magnitude", "structured"] = "magnitude"
    sparsity: float = setting(0.5, min=0, max=1, max_exclusive=True)
    scope: Literal["global", "local"] = "global"
    schedule: Literal["oneshot", "cubic"] = "cubic"
    initial_sparsity: float = setting(0.0, min=0, max=1, max_exclusive=True)
    update_every: int = setting(10, min=1, help="optimizer steps between mask updates (cubic)")
    save: Literal["dense", "sparse"] = "dense"
    ffn_keep: float = setting(0.5, min=0, max=1, min_exclusive=True, help="share of FFN neurons kept")
    heads_keep: float = setting(1.0, min=0, max=1, min_exclusive=True, help="share of attention heads kept")
    recovery: Literal["finetune", "distil"] = "finetune"
    temperature: float = setting(2.0, min=0, min_exclusive=True)
    alpha: float = setting(0.5, min=0, max=1, help="weight of the soft (unpruned model) loss")
    importance: Literal["gradient", "magnitude"] = "gradient"
    importance_samples: int = setting(256, min=1)
    epochs: float = setting(1.0, min=0, min_exclusive=True, max=MAX_EPOCHS)
    learning_rate: float = setting(3e-5, min=0, min_exclusive=True)
    batch_size: int = setting(16, min=1)
    max_length: int = setting(128, min=8)
    max_steps: int = -1
    seed: Optional[int] = None

    trains = True

    def leaves_sparse_weights(self) -> bool:
        return self.method == "magnitude"

    def saves_sparse(self) -> bool:
        return self.save == "sparse"

    def not_applicable(self) -> Dict[str, str]:
        out = only_for("method", self.method, _ONLY)
        if self.method == "structured" and self.recovery != "distil":
            out.update({n: "applies to recovery 'distil', not 'finetune'" for n in ("temperature", "alpha")})
        return out

    def check(self) -> None:
        if self.method == "structured" and self.ffn_keep == 1 and self.heads_keep == 1:
            raise SettingError("ffn_keep", "structured pruning with ffn_keep 1 and heads_keep 1 removes nothing")
        if self.initial_sparsity > self.sparsity:
            raise SettingError("initial_sparsity", f"must not exceed sparsity {self.sparsity}")

    def preflight(self, facts: "ModelFacts") -> None:
        """Structured pruning needs an architecture with a known layout (and, for heads, a pruned-heads class);
        ``facts`` then hold the smaller FFN width and the pruned-heads format."""
        if self.method != "structured":
            return
        from ..formats.pruned_heads import pruned_heads_class, structured_layout

        layout = structured_layout(facts.config)
        if self.ffn_keep < 1:
            width = getattr(facts.config, layout.ffn_size_key)
            setattr(facts.config, layout.ffn_size_key, max(1, int(round(self.ffn_keep * width))))
        if self.heads_keep < 1:
            pruned_heads_class(facts.config)
            facts.format = "pruned-heads"

    def apply(self, state: "CompressionState") -> None:
        state.torch_model("prune")
        PRUNING_METHODS[self.method](self, state)  # registered by the package's method modules
