"""Every training step ends with exactly the best evaluation's weights."""

import torch
from transformers import TrainerCallback


class Snapshots(TrainerCallback):
    """Copies of the weights at every evaluation."""

    def __init__(self):
        self.weights = []

    def on_evaluate(self, args, state, control, model=None, **kwargs):
        self.weights.append({k: v.detach().clone() for k, v in model.state_dict().items()})


def test_best_weights_are_restored_whole_when_the_best_epoch_is_not_the_last(tiny_teacher, small_data,
                                                                              monkeypatch, tmp_path):
    from optimum_bengali.data import load_data
    from optimum_bengali.training import trainer as trainer_module

    scores = iter([0.9, 0.5, 0.1])  # the first evaluation is the best one
    monkeypatch.setattr(trainer_module, "_compute_metrics",
                        lambda pred: {"accuracy": 0.0, "macro_f1": next(scores), "weighted_f1": 0.0})
    model, tokenizer = tiny_teacher
    data = load_data(small_data)
    snaps = Snapshots()
    best = trainer_module.train_classifier(model, tokenizer, data, tmp_path / "train", epochs=3,
                                           learning_rate=1e-3, batch_size=32, callbacks=[snaps], progress=False)
    assert len(snaps.weights) == 3
    final = best.state_dict()
    first, last = snaps.weights[0], snaps.weights[-1]
    assert set(final) == set(first)
    for name, tensor in final.items():  # every tensor, LayerNorms included, is the first evaluation's
        assert torch.equal(tensor, first[name]), name
    assert any(not torch.equal(first[k], last[k]) for k in first), "training changed nothing"
    assert not any(p.name.startswith("checkpoint-") for p in (tmp_path / "train").glob("*"))
