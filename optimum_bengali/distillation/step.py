"""The ``distil`` recipe step: build a student, train it against the current model as teacher."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Literal, Optional

from ..errors import ModelError
from ..registry import register_step
from ..steps import MAX_EPOCHS, SettingError, Step, only_for, setting
from ..training.trainer import step_training_settings, train_classifier
from .augment import with_augmented_train
from .cache import cached_teacher_logits
from .student import checkpoint_student, config_student, cut_config, cut_student, default_layers, shaped_config
from .trainer import DistillationTrainer
from .transfer import read_transfer_texts, with_teacher_rows

if TYPE_CHECKING:  # pragma: no cover
    from ..state import CompressionState, ModelFacts


def _set_attention(model, implementation: str) -> None:
    """Attention maps are only returned by the ``eager`` implementation; ``sdpa`` is faster."""
    if hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation(implementation)
    else:  # pragma: no cover - older transformers
        model.config._attn_implementation = implementation


@register_step("distil")
@dataclass
class DistilStep(Step):
    """Knowledge distillation into a smaller student, on ``transformers.Trainer``.

    ``student``: ``cut`` keeps ``num_layers`` (or ``layers``) of the teacher and copies their weights;
    ``config`` builds a smaller model of the teacher's architecture (``hidden_size``, ...);
    ``checkpoint`` loads ``checkpoint`` (same label set required).
    ``mode``: ``black_box`` uses teacher logits only (computed once, cached on disk);
    ``white_box`` also matches hidden states (MSE) and attention maps (KL) over ``layer_map``, and with
    ``value_weight`` > 0 the value relations of those layers (KL of ``softmax(V V^T / sqrt(d))`` per head,
    MiniLM, Wang et al. 2020).
    ``augment``: this many noisy copies of each training sentence (word replacement, word dropout, span crop;
    see :mod:`.augment`) are added to the training rows; only the teacher labels them.
    ``transfer_set``: a UTF-8 text file of unlabelled in-domain sentences (one per line; ``transfer_max_rows``
    of them, drawn with the seed), added to the training rows for the teacher to label (:mod:`.transfer`);
    they train the soft and white-box terms, never the cross-entropy. ``epochs`` count passes over the
    enlarged training set.
    """

    trains = True

    student: Literal["cut", "config", "checkpoint"] = "cut"
    num_layers: int = setting(6, min=1)
    layers: Optional[List[int]] = None
    hidden_size: Optional[int] = None
    num_attention_heads: Optional[int] = None
    intermediate_size: Optional[int] = None
    checkpoint: Optional[str] = None
    mode: Literal["black_box", "white_box"] = "black_box"
    temperature: float = setting(2.0, min=0, min_exclusive=True)
    alpha: float = setting(0.5, min=0, max=1, help="weight of the soft (teacher) loss")
    layer_map: Optional[Dict[int, int]] = None
    hidden_weight: float = setting(1.0, min=0)
    attention_weight: float = setting(1.0, min=0)
    value_weight: float = setting(0.0, min=0, help="weight of the MiniLM value-relation KL (white_box)")
    epochs: float = setting(3.0, min=0, min_exclusive=True, max=MAX_EPOCHS)
    learning_rate: float = setting(5e-5, min=0, min_exclusive=True)
    batch_size: int = setting(16, min=1)
    max_length: int = setting(128, min=8)
    max_steps: int = -1
    warmup_ratio: float = setting(0.1, min=0, max=1)
    early_stopping_patience: Optional[int] = None
    augment: int = setting(0, min=0, help="teacher-labelled noisy copies of each training sentence")
    transfer_set: Optional[str] = setting(None, help="unlabelled sentences (text file) the teacher labels")
    transfer_max_rows: Optional[int] = setting(None, min=1, help="use at most this many transfer-set lines")
    seed: Optional[int] = None
    cache_dir: Optional[str] = None

    def not_applicable(self) -> Dict[str, str]:
        out = only_for("student", self.student, {"cut": ("num_layers", "layers"),
                                                 "config": ("num_layers", "hidden_size", "num_attention_heads",
                                                            "intermediate_size"),
                                                 "checkpoint": ("checkpoint",)})
        out.update(only_for("mode", self.mode, {"black_box": ("cache_dir",),
                                                "white_box": ("layer_map", "hidden_weight", "attention_weight",
                                                              "value_weight")}))
        return out

    def check(self) -> None:
        if self.layers is not None and self.num_layers != type(self).__dataclass_fields__["num_layers"].default:
            raise SettingError("num_layers", "give layers (the teacher layers to keep) or num_layers, not both")
        if self.student == "checkpoint" and not self.checkpoint:
            raise SettingError("checkpoint", "student 'checkpoint' needs the checkpoint path or Hub id")
        if self.layers is not None and len(self.layers) == 0:
            raise SettingError("layers", "give at least one layer to keep")
        if self.transfer_set is not None and not Path(self.transfer_set).is_file():
            raise SettingError("transfer_set", f"file {self.transfer_set!r} does not exist; give a UTF-8 text file "
                                               "of unlabelled sentences, one per line")
        if self.transfer_max_rows is not None and self.transfer_set is None:
            raise SettingError("transfer_max_rows", "applies to a transfer_set; give one or drop it")

    def preflight(self, facts: "ModelFacts") -> None:
        """The student can be built from this teacher, and white-box terms can compare the two; ``facts.config``
        becomes the student's shape."""
        teacher = facts.config
        if self.student == "cut":
            student = cut_config(teacher, self.copied_layers(teacher.num_hidden_layers))
        elif self.student == "config":
            n = len(self.layers) if self.layers is not None else self.num_layers
            student = shaped_config(teacher, n, self.hidden_size, self.num_attention_heads, self.intermediate_size)
        else:
            from ..modeling import load_config

            student = load_config(self.checkpoint)
        if self.mode == "white_box":
            self.check_white_box(student, teacher, shares_tokenizer=self.student != "checkpoint")
        facts.config = student

    def check_white_box(self, student: Any, teacher: Any, shares_tokenizer: bool) -> None:
        """White-box terms compare the two models layer by layer: one tokenizer, equal hidden sizes (when the
        hidden-state term is on) and a layer map inside both (``student``/``teacher``: their configs)."""
        if not shares_tokenizer:
            raise ModelError("white-box distillation needs the student to share the teacher's tokenizer; "
                             "use mode: black_box for a student with its own tokenizer")
        if self.hidden_weight > 0 and student.hidden_size != teacher.hidden_size:
            raise ModelError(f"white-box hidden-state loss needs equal hidden sizes (student "
                             f"{student.hidden_size}, teacher {teacher.hidden_size}); "
                             "set hidden_weight: 0 (attention maps only) or use mode: black_box")
        self.resolved_layer_map(teacher.num_hidden_layers, student.num_hidden_layers)

    def build_student(self, state: "CompressionState"):
        teacher = state.model
        if self.student == "cut":
            return cut_student(teacher, layers=self.copied_layers(teacher.config.num_hidden_layers)), state.tokenizer
        n = len(self.layers) if self.layers is not None else self.num_layers
        if self.student == "config":
            return config_student(teacher, n, self.hidden_size, self.num_attention_heads, self.intermediate_size,
                                  self.seed if self.seed is not None else state.seed), state.tokenizer
        from ..modeling import load_tokenizer

        return (checkpoint_student(self.checkpoint, state.data.label_names),
                load_tokenizer(self.checkpoint, apply_normalization=False))

    def copied_layers(self, teacher_layers: int) -> List[int]:
        """The teacher layers a ``cut`` student is made of: ``layers``, or ``num_layers`` evenly spaced ones."""
        return list(self.layers) if self.layers is not None else default_layers(teacher_layers, self.num_layers)

    def resolved_layer_map(self, teacher_layers: int, student_layers: int) -> Dict[int, int]:
        """Student layer -> teacher layer. Default: the kept layers (cut) or evenly spaced ones."""
        if self.layer_map is not None:
            lm = dict(self.layer_map)
        elif self.student == "cut":
            lm = dict(enumerate(self.copied_layers(teacher_layers)))
        else:
            lm = {i: (i + 1) * teacher_layers // student_layers - 1 for i in range(student_layers)}
        for s, t in lm.items():
            if not (0 <= s < student_layers and 0 <= t < teacher_layers):
                raise ModelError(f"layer_map {s}->{t} is out of range: the student has {student_layers} "
                                 f"layers, the teacher {teacher_layers}")
        return lm

    def apply(self, state: "CompressionState") -> None:
        teacher = state.torch_model("distil")
        student, student_tok = self.build_student(state)
        seed = self.seed if self.seed is not None else state.seed
        kwargs = {"temperature": self.temperature, "alpha": self.alpha}
        extra = None
        info = {"student_layers": student.config.num_hidden_layers,
                "teacher_layers": teacher.config.num_hidden_layers, "mode": self.mode}
        if self.student == "cut":
            info["copied_layers"] = self.copied_layers(teacher.config.num_hidden_layers)
        data = with_augmented_train(state.data, self.augment, seed)
        if self.augment:
            info["augmented_rows"] = len(data.splits["train"]) - len(state.data.splits["train"])
        if self.transfer_set is not None:
            texts = read_transfer_texts(self.transfer_set, data.normalization, self.transfer_max_rows, seed)
            data, counts = with_teacher_rows(data, texts)
            info.update(transfer_set=Path(self.transfer_set).name, transfer_rows=counts["added"],
                        transfer_rows_left_out_in_a_split=counts["left_out_in_a_split"])
        if self.mode == "black_box":
            logits, hit = cached_teacher_logits(teacher, state.tokenizer, data.texts("train"),
                                                data.fingerprint("train"), self.max_length,
                                                self.cache_dir, progress=state.progress)
            extra = {"teacher_logits": logits}
            info["teacher_logits_cache_hit"] = hit
        else:
            self.check_white_box(student.config, teacher.config, shares_tokenizer=student_tok is state.tokenizer)
            lm = self.resolved_layer_map(teacher.config.num_hidden_layers, student.config.num_hidden_layers)
            _set_attention(student, "eager")
            _set_attention(teacher, "eager")
            kwargs.update(teacher=teacher, layer_map=lm, hidden_weight=self.hidden_weight,
                          attention_weight=self.attention_weight, value_weight=self.value_weight)
            info["layer_map"] = lm
        state.model = train_classifier(student, student_tok, data, state.work_dir / "distil",
                                       trainer_class=DistillationTrainer, trainer_kwargs=kwargs, train_extra=extra,
                                       record=info, **step_training_settings(self, state))
        if self.mode == "white_box":
            _set_attention(state.model, "sdpa")
            _set_attention(teacher, "sdpa")
            teacher.to("cpu")  # it ran beside the student on the training device
        state.tokenizer = student_tok
        state.note(**info)
