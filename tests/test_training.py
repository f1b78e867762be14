"""Every training step ends with exactly the best evaluation's weights."""

import pytest
import torch
from transformers import TrainerCallback


class Snapshots(TrainerCallback):
    """Copies of the weights at every evaluation."""

    def __init__(self):
        self.weights = []

    def on_evaluate(self, args, state, control, model=None, **kwargs):
        self.weights.append({k: v.detach().clone() for k, v in model.state_dict().items()})


@pytest.mark.slow
def test_best_weights_are_restored_whole_when_the_best_epoch_is_not_the_last(tiny_teacher, small_data,
                                                                              monkeypatch, tmp_path):
    from optimum_bengali.data import load_data
    from optimum_bengali.training import trainer as trainer_module

    scores = iter([0.9, 0.5, 0.1])  # the first evaluation is the best one
    monkeypatch.setattr(trainer_module, "_compute_metrics",
                        lambda pred: {"accuracy": 0.0, "macro_f1": next(scores), "weighted_f1": 0.0})
    model, tokenizer = tiny_teacher
    data = load_data(small_data)
    snaps, record = Snapshots(), {}
    best = trainer_module.train_classifier(model, tokenizer, data, tmp_path / "train", epochs=3,
                                           learning_rate=1e-3, batch_size=32, callbacks=[snaps], progress=False,
                                           record=record)
    assert len(snaps.weights) == 3
    # the record lists every evaluation and names the kept one (what a step's report says it chose)
    assert [value for _, value in record["validation_macro_f1"]] == [0.9, 0.5, 0.1]
    assert record["kept_step"] == record["validation_macro_f1"][0][0] == 10  # 300 rows / 32 a step
    final = best.state_dict()
    first, last = snaps.weights[0], snaps.weights[-1]
    assert set(final) == set(first)
    for name, tensor in final.items():  # every tensor, LayerNorms included, is the first evaluation's
        assert torch.equal(tensor, first[name]), name
    assert any(not torch.equal(first[k], last[k]) for k in first), "training changed nothing"
    assert not any(p.name.startswith("checkpoint-") for p in (tmp_path / "train").glob("*"))


def test_balanced_class_weights_make_every_class_weigh_the_same():
    from optimum_bengali.training.trainer import balanced_class_weights

    labels = [0] * 6 + [1] * 3 + [2] * 1  # class 3 has no rows
    weights = balanced_class_weights(labels, 4)
    assert weights[3] == 0.0
    counts = [6, 3, 1]
    # n / k per class, k = the 3 classes with rows (scikit-learn's "balanced")
    assert [round(w * c, 6) for w, c in zip(weights, counts)] == [round(10 / 3, 6)] * 3


def test_weighted_loss_counts_a_rare_class_more():
    from optimum_bengali.training.trainer import WeightedCrossEntropy

    logits = torch.tensor([[2.0, 0.0], [2.0, 0.0]])
    labels = torch.tensor([0, 1])  # the rare class 1 is predicted wrong
    plain = torch.nn.functional.cross_entropy(logits, labels)
    weighted = WeightedCrossEntropy([0.5, 5.0])({"logits": logits}, labels)
    assert weighted > plain


@pytest.mark.slow
def test_finetune_with_class_weights_and_trimmed_vocabulary(tiny_teacher_dir, small_data, tmp_path, monkeypatch):
    import json

    import numpy as np
    from sklearn.utils.class_weight import compute_class_weight

    from optimum_bengali.data import load_data
    from optimum_bengali.pipeline import finetune
    from optimum_bengali.training import trainer as trainer_module

    losses = []  # every training loss goes through the weighted cross-entropy, with the balanced weights
    original = trainer_module.WeightedCrossEntropy.__call__

    def spy(self, outputs, labels, num_items_in_batch=None):
        loss = original(self, outputs, labels, num_items_in_batch)
        logits = outputs["logits"] if isinstance(outputs, dict) else outputs[0]
        if logits.requires_grad:  # training steps (evaluation batches come through here too)
            losses.append((self.weights.clone(), logits.detach(), labels.clone(), loss.detach()))
        return loss

    monkeypatch.setattr(trainer_module.WeightedCrossEntropy, "__call__", spy)
    result = finetune(str(tiny_teacher_dir), small_data, str(tmp_path / "out"), max_steps=4, batch_size=8,
                      class_weights="balanced", early_stopping_patience=1, trim_vocab=True,
                      measure_memory=False, progress=False)
    train_labels = np.asarray(load_data(small_data).labels("train"))
    balanced = compute_class_weight("balanced", classes=np.unique(train_labels), y=train_labels)
    assert len(losses) == 4  # one per optimizer step
    for weights, logits, labels, loss in losses:
        np.testing.assert_allclose(weights.numpy(), balanced, rtol=1e-6)
        expected = torch.nn.functional.cross_entropy(logits, labels, weight=weights)
        assert float(loss) == pytest.approx(float(expected), rel=1e-5)
        assert float(loss) != pytest.approx(float(torch.nn.functional.cross_entropy(logits, labels)), rel=1e-4)
    report = json.loads((tmp_path / "out" / "compression_report.json").read_text())
    steps = {s["type"]: s for s in report["steps"]}
    assert set(steps) == {"trim_vocab", "finetune"}
    weights = steps["finetune"]["class_weights"]
    assert len(weights) == 6 and max(weights.values()) > min(weights.values())
    # the report keeps every validation evaluation (4 steps, evaluated every 2) and the kept, best one
    history = dict(steps["finetune"]["validation_macro_f1"])
    assert sorted(history) == [2, 4]
    assert history[steps["finetune"]["kept_step"]] == max(history.values())
    assert report["metrics"]["validation"]["macro_f1"] == pytest.approx(max(history.values()), abs=1e-5)
    assert result.output_dir == tmp_path / "out"


def test_saved_folders_use_standard_layernorm_names(tiny_teacher_dir, small_data, tmp_path):
    """A teacher stored with legacy ``LayerNorm.gamma``/``beta`` keys comes out with ``weight``/``bias``."""
    import shutil

    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from optimum_bengali.pipeline import apply_recipe
    from optimum_bengali.recipe import Recipe

    legacy = tmp_path / "legacy"
    shutil.copytree(tiny_teacher_dir, legacy)
    tensors = load_file(legacy / "model.safetensors")
    renamed = {k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"): v
               for k, v in tensors.items()}
    assert renamed.keys() != tensors.keys()
    save_file(renamed, legacy / "model.safetensors", metadata={"format": "pt"})

    recipe = Recipe.from_dict({"name": "trim", "steps": [{"type": "trim_vocab"}]})
    apply_recipe(str(legacy), recipe, small_data, str(tmp_path / "out"), measure_baseline=False,
                 measure_memory=False, progress=False)
    with safe_open(str(tmp_path / "out" / "model.safetensors"), "pt") as fh:
        keys = list(fh.keys())
    assert any(k.endswith("LayerNorm.weight") for k in keys)
    assert not any(k.endswith(("LayerNorm.gamma", "LayerNorm.beta")) for k in keys)


@pytest.mark.slow
def test_learning_rate_is_chosen_by_measured_trials(tiny_teacher_dir, small_data, tmp_path, monkeypatch):
    import json

    from optimum_bengali.cli import main
    from optimum_bengali.training import trainer as trainer_module

    # validation macro-F1 as a function of the learning rate the Trainer runs with: 3e-4 is the best
    seen = []

    def scores(pred):
        lr = seen[-1]
        return {"accuracy": 0.0, "macro_f1": {1e-5: 0.2, 3e-4: 0.6, 1e-3: 0.4}.get(lr, 0.1), "weighted_f1": 0.0}

    original = trainer_module.TrainingArguments

    def recording(*args, **kwargs):
        seen.append(kwargs["learning_rate"])
        return original(*args, **kwargs)

    monkeypatch.setattr(trainer_module, "_compute_metrics", scores)
    monkeypatch.setattr(trainer_module, "TrainingArguments", recording)
    out = tmp_path / "t"
    code = main(["finetune", "--model", str(tiny_teacher_dir), "--data", str(small_data), "--output", str(out),
                 "--learning-rate", "1e-5,3e-4,1e-3", "--trial-epochs", "1", "--epochs", "1", "--batch-size", "16"])
    assert code == 0
    assert seen == [1e-5, 3e-4, 1e-3, 3e-4]  # three trials, then the full run with the best
    step = json.loads((out / "compression_report.json").read_text())["steps"][0]
    assert step["learning_rate"] == 3e-4
    assert step["learning_rate_trials"] == {"1e-05": 0.2, "0.0003": 0.6, "0.001": 0.4}


def test_finetune_defaults_are_the_measured_teacher_defaults_and_help_shows_them(capsys):
    from optimum_bengali import finetune
    from optimum_bengali.cli import build_parser, main
    from optimum_bengali.training.finetune import TEACHER_DEFAULTS, FinetuneStep

    args = build_parser().parse_args(["finetune", "--model", "m", "--data", "d", "--output", "o"])
    cli = {"epochs": args.epochs, "learning_rate": args.learning_rate[0], "batch_size": args.batch_size,
           "early_stopping_patience": args.early_stopping_patience}
    assert cli == TEACHER_DEFAULTS

    class Built(Exception):
        pass

    seen = {}

    def spy(settings):
        seen.update(settings)
        raise Built

    original = FinetuneStep.from_dict
    FinetuneStep.from_dict = spy  # finetune() builds its step first, before any file is read
    try:
        with pytest.raises(Built):
            finetune("m", "d", "o", epochs=2.0)
    finally:
        FinetuneStep.from_dict = original
    assert seen == {**TEACHER_DEFAULTS, "epochs": 2.0}

    assert main(["finetune", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for shown in ("--epochs EPOCHS (default: 6.0)", "(default: 32)", "(default: [0.00015])", "(default: 2)"):
        assert shown in text, shown
