import numpy as np
import pytest
import torch
import torch.nn.functional as F

from optimum_bengali import ModelError, apply_recipe
from optimum_bengali.distillation import attention_kl, cut_student, default_layers, hidden_mse, kd_loss
from optimum_bengali.distillation.cache import cached_teacher_logits


def test_default_layers_are_evenly_spaced():
    assert default_layers(12, 6) == [0, 2, 4, 6, 8, 10]
    assert default_layers(12, 4) == [0, 3, 6, 9]
    assert default_layers(12, 3) == [0, 4, 8]
    with pytest.raises(ModelError):
        default_layers(4, 5)


def test_cut_student_copies_kept_layers(tiny_teacher):
    teacher, _ = tiny_teacher
    student = cut_student(teacher, layers=[1, 3])
    assert student.config.num_hidden_layers == 2 and len(student.bert.encoder.layer) == 2
    assert student.config.id2label == teacher.config.id2label
    for new, old in ((0, 1), (1, 3)):
        for (n1, p1), (n2, p2) in zip(student.bert.encoder.layer[new].named_parameters(),
                                      teacher.bert.encoder.layer[old].named_parameters()):
            assert n1 == n2 and torch.equal(p1, p2)
    assert torch.equal(student.bert.embeddings.word_embeddings.weight, teacher.bert.embeddings.word_embeddings.weight)
    assert torch.equal(student.classifier.weight, teacher.classifier.weight)
    with pytest.raises(ModelError, match="0..3"):
        cut_student(teacher, layers=[0, 7])


def test_kd_loss_equals_hand_computation():
    s = torch.tensor([[1.0, 0.0, -1.0], [0.5, 0.5, 0.0]])
    t = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    y = torch.tensor([0, 1])
    T, a = 2.0, 0.7
    ps, pt = F.softmax(s / T, -1), F.softmax(t / T, -1)
    kl = float((pt * (pt.log() - ps.log())).sum(-1).mean())  # batchmean
    ce = float(-(F.log_softmax(s, -1)[torch.arange(2), y]).mean())
    expected = a * T * T * kl + (1 - a) * ce
    assert float(kd_loss(s, t, y, T, a)) == pytest.approx(expected, rel=1e-5)
    assert float(kd_loss(s, None, y, T, a)) == pytest.approx(ce, rel=1e-5)
    with pytest.raises(ValueError):
        kd_loss(s, t, y, 0.0, a)


def test_hidden_and_attention_losses_ignore_padding():
    mask = torch.tensor([[1, 1, 0]])
    h1, h2 = torch.zeros(1, 3, 4), torch.zeros(1, 3, 4)
    h2[0, 2] = 100.0  # only on the padding position
    assert float(hidden_mse(h1, h2, mask)) == 0.0
    a = torch.full((1, 2, 3, 3), 1 / 3)
    assert float(attention_kl(a, a, mask)) == pytest.approx(0.0, abs=1e-6)
    b = torch.softmax(torch.randn(1, 2, 3, 3), -1)
    assert float(attention_kl(b, a, mask)) > 0


def test_teacher_logits_cache_hit_and_invalidation(tiny_teacher, data, tmp_path):
    teacher, tok = tiny_teacher
    texts = data.texts("train")[:40]
    first, hit1 = cached_teacher_logits(teacher, tok, texts, "fp-a", cache_dir=tmp_path, progress=False)
    second, hit2 = cached_teacher_logits(teacher, tok, texts, "fp-a", cache_dir=tmp_path, progress=False)
    assert (hit1, hit2) == (False, True)
    np.testing.assert_array_equal(first, second)
    changed = texts[:-1] + ["একদম নতুন একটি বাক্য"]
    third, hit3 = cached_teacher_logits(teacher, tok, changed, "fp-b", cache_dir=tmp_path, progress=False)
    assert hit3 is False and not np.array_equal(third[-1], first[-1])
    # an entry whose rows do not match the data is rebuilt, never used
    key_files = sorted(tmp_path.glob("*.npy"))
    np.save(key_files[0], np.zeros((3, 6), dtype=np.float32))
    again = [cached_teacher_logits(teacher, tok, t, fp, cache_dir=tmp_path, progress=False)
             for t, fp in ((texts, "fp-a"), (changed, "fp-b"))]
    assert sorted(h for _, h in again) == [False, True]
    np.testing.assert_array_equal(again[0][0], first)


def _recipe(mode, **extra):
    step = {"type": "distil", "num_layers": 2, "mode": mode, "max_steps": 12, "batch_size": 8,
            "learning_rate": 1e-3, **extra}
    return {"name": f"kd-{mode}", "steps": [step]}


def test_black_box_student_trains_saves_and_reloads(tiny_teacher_dir, small_data, tmp_path, monkeypatch):
    from transformers import AutoModelForSequenceClassification

    monkeypatch.setenv("OPTIMUM_BENGALI_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "student"
    result = apply_recipe(tiny_teacher_dir, _recipe("black_box"), small_data, out, measure_memory=False,
                          progress=False)
    step = result.steps[0]
    assert step["student_layers"] == 2 and step["teacher_layers"] == 4 and step["teacher_logits_cache_hit"] is False
    student = AutoModelForSequenceClassification.from_pretrained(out)
    assert student.config.num_hidden_layers == 2
    assert result.metrics["parameters"] < result.baseline["parameters"]
    again = apply_recipe(tiny_teacher_dir, _recipe("black_box"), small_data, tmp_path / "s2", measure_memory=False,
                         measure_baseline=False, progress=False)
    assert again.steps[0]["teacher_logits_cache_hit"] is True


def test_white_box_loss_decreases(tiny_teacher, small_data):
    from optimum_bengali.data import load_data
    from optimum_bengali.distillation.trainer import DistillationTrainer
    from optimum_bengali.training.trainer import PaddingCollator, tokenize_split

    teacher, tok = tiny_teacher
    data = load_data(small_data)
    student = cut_student(teacher, layers=[0, 2])
    for m in (student, teacher):
        m.set_attn_implementation("eager")
    ds = tokenize_split(tok, data.splits["train"].select(range(16)), 64)
    batch = PaddingCollator(tok)([dict(ds[i]) for i in range(16)])
    trainer = DistillationTrainer.__new__(DistillationTrainer)  # the loss alone, without a Trainer run
    trainer.temperature, trainer.alpha, trainer.teacher = 2.0, 0.5, teacher
    trainer.layer_map, trainer.hidden_weight, trainer.attention_weight = {0: 1, 1: 3}, 1.0, 1.0
    opt = torch.optim.AdamW(student.parameters(), lr=1e-3)
    student.train()
    for m in student.modules():  # no dropout noise: the loss alone should fall
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    losses = []
    for _ in range(20):
        loss = trainer.compute_loss(student, dict(batch))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    # the floor is the label cross-entropy against a random teacher; hidden/attention terms must fall to it
    assert losses[-1] < 0.95 * losses[0]
    assert all(b <= a + 1e-3 for a, b in zip(losses[:10], losses[1:11]))


def test_white_box_step_runs_and_layer_map_is_checked(tiny_teacher_dir, small_data, tmp_path):
    result = apply_recipe(tiny_teacher_dir, _recipe("white_box", max_steps=4), small_data, tmp_path / "wb",
                          measure_memory=False, measure_baseline=False, progress=False)
    assert result.steps[0]["layer_map"] == {0: 0, 1: 2}
    with pytest.raises(ModelError, match="out of range"):
        apply_recipe(tiny_teacher_dir, _recipe("white_box", layer_map={0: 9}), small_data, tmp_path / "bad",
                     measure_memory=False, measure_baseline=False, progress=False)
    assert not (tmp_path / "bad").exists()


def test_student_with_other_labels_is_rejected(tiny_teacher, tmp_path):
    from optimum_bengali.distillation.student import checkpoint_student

    teacher, _ = tiny_teacher
    teacher.config.id2label = {i: n for i, n in enumerate(["a", "b", "c", "d", "e", "f"])}
    teacher.save_pretrained(tmp_path)
    with pytest.raises(ModelError, match="label sets must be the same"):
        checkpoint_student(str(tmp_path), ["anger", "disgust", "fear", "joy", "sadness", "surprise"])


def test_augmented_rows_train_on_the_teacher_only():
    from optimum_bengali.distillation.augment import UNLABELLED, augment_texts

    texts = ["আমি আজ খুব খুশি হয়েছি", "সে অন্ধকারে ভয় পেয়েছে", "এই খবরে আমরা সবাই দুঃখিত"]
    a, b = augment_texts(texts, 3, seed=7), augment_texts(texts, 3, seed=7)
    assert a == b and 0 < len(a) <= 9 and not set(a) & set(texts)
    words = {w for t in texts for w in t.split()}
    assert all(t.split() and set(t.split()) <= words for t in a)  # whole words only: no vowel sign cut off
    s = torch.tensor([[1.0, 0.0, -1.0], [0.5, 0.5, 0.0], [0.0, 2.0, 0.0]])
    t = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 3.0]])
    y = torch.tensor([0, 1, UNLABELLED])
    T, a_ = 2.0, 0.5
    soft = float(F.kl_div(F.log_softmax(s / T, -1), F.softmax(t / T, -1), reduction="batchmean")) * T * T
    ce = float(F.cross_entropy(s[:2], y[:2]))  # the augmented row is left out of the hard loss
    assert float(kd_loss(s, t, y, T, a_)) == pytest.approx(a_ * soft + (1 - a_) * ce, rel=1e-5)
    only_aug = torch.full((3,), UNLABELLED)
    assert float(kd_loss(s, t, only_aug, T, a_)) == pytest.approx(a_ * soft, rel=1e-5)


def test_distil_with_augmentation_labels_extra_rows_by_teacher(tiny_teacher_dir, small_data, tmp_path, monkeypatch):
    monkeypatch.setenv("OPTIMUM_BENGALI_CACHE", str(tmp_path / "cache"))
    result = apply_recipe(tiny_teacher_dir, _recipe("black_box", augment=2), small_data, tmp_path / "aug",
                          measure_memory=False, measure_baseline=False, progress=False)
    step = result.steps[0]
    assert 300 < step["augmented_rows"] <= 600 and step["teacher_logits_cache_hit"] is False
    assert np.isfinite(result.metrics["macro_f1"])
