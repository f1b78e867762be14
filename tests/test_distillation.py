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
    assert float(hidden_mse(h1, h2, torch.ones_like(mask))) > 0
    a = torch.full((1, 2, 3, 3), 1 / 3)
    b = a.clone()
    b[0, :, 2] = torch.tensor([0.9, 0.05, 0.05])  # only the padded query row differs
    assert float(attention_kl(b, a, mask)) == pytest.approx(0.0, abs=1e-7)
    assert float(attention_kl(b, a, torch.ones_like(mask))) > 0.1
    c = torch.softmax(torch.randn(1, 2, 3, 3), -1)
    assert float(attention_kl(c, a, mask)) > 0


def _trainer(teacher, layer_map, alpha=0.5, hidden_weight=1.0, attention_weight=1.0, value_weight=0.0):
    from optimum_bengali.distillation.trainer import DistillationTrainer

    trainer = DistillationTrainer.__new__(DistillationTrainer)  # the loss alone, without a Trainer run
    trainer.temperature, trainer.alpha, trainer.teacher = 2.0, alpha, teacher
    trainer.layer_map, trainer.hidden_weight, trainer.attention_weight = layer_map, hidden_weight, attention_weight
    trainer.value_weight = value_weight
    return trainer


def _batch(tok, texts):
    from optimum_bengali.training.trainer import PaddingCollator

    rows = [dict(tok(t, truncation=True, max_length=64), labels=i % 6) for i, t in enumerate(texts)]
    return PaddingCollator(tok)(rows)


def _teacher_and_perturbed_student(teacher_dir):
    """A teacher without dropout, its tokenizer, and a student cut from layers 0 and 2 with noise added to its
    encoder (a student that is not the teacher: every white-box term is non-zero); both on eager attention."""
    from optimum_bengali import load_model, load_tokenizer

    teacher, tok = load_model(teacher_dir), load_tokenizer(teacher_dir)
    teacher.config.hidden_dropout_prob = teacher.config.attention_probs_dropout_prob = 0.0
    for m in teacher.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    student = cut_student(teacher, layers=[0, 2])
    with torch.no_grad():
        for p in student.bert.encoder.parameters():
            p.add_(0.05 * torch.randn_like(p))
    for m in (student, teacher):
        m.set_attn_implementation("eager")
    return teacher, tok, student


def test_white_box_terms_equal_a_hand_computation_at_the_mapped_layers(varied_teacher_dir, data):
    """Hidden MSE over real tokens of student layer s's output against teacher layer t's, and KL(teacher ||
    student) per real query row, averaged over heads, summed over the map; the total adds the KD loss."""
    teacher, tok, student = _teacher_and_perturbed_student(varied_teacher_dir)
    layer_map = {0: 1, 1: 3}
    trainer = _trainer(teacher, layer_map)
    batch = _batch(tok, data.texts("train")[:8])
    mask = batch["attention_mask"]
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    with torch.no_grad():
        s_out = student.train()(**inputs, output_hidden_states=True, output_attentions=True)
        t_out = teacher.eval()(**inputs, output_hidden_states=True, output_attentions=True)
        hidden = attention = 0.0
        real = mask.bool()
        for s, t in layer_map.items():
            hs, ht = s_out.hidden_states[s + 1][real], t_out.hidden_states[t + 1][real]  # tokens x hidden
            hidden += float(((hs - ht) ** 2).mean())
            sa, ta = s_out.attentions[s], t_out.attentions[t]  # B, H, Q, K
            kl = (ta * (torch.log(ta + 1e-8) - torch.log(sa + 1e-8))).sum(-1)  # B, H, Q
            attention += float(kl.permute(0, 2, 1)[real].mean())
        terms = trainer.white_box_terms(s_out, t_out, mask)
        assert float(terms["hidden"]) == pytest.approx(hidden, rel=1e-5) and hidden > 0
        assert float(terms["attention"]) == pytest.approx(attention, rel=1e-5) and attention > 0
        total = float(trainer.compute_loss(student, dict(batch)))
        expected = float(kd_loss(s_out.logits, t_out.logits, batch["labels"], 2.0, 0.5)) + hidden + attention
        assert total == pytest.approx(expected, rel=1e-5)


def test_value_relation_term_equals_a_hand_computation_at_the_mapped_layers(varied_teacher_dir, data):
    """MiniLM's value relation: layer l's value projection of its input, per head softmax(V V^T / sqrt(d)) over
    real keys, KL(teacher || student) per real query averaged over heads, summed over the map and weighted."""
    teacher, tok, student = _teacher_and_perturbed_student(varied_teacher_dir)
    layer_map = {0: 1, 1: 3}
    trainer = _trainer(teacher, layer_map, value_weight=0.5)
    batch = _batch(tok, data.texts("train")[:8])
    mask = batch["attention_mask"]
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    heads = teacher.config.num_attention_heads
    d = teacher.config.hidden_size // heads

    def relation(model, out, layer):
        v = model.bert.encoder.layer[layer].attention.self.value(out.hidden_states[layer])  # the layer's input
        v = v.view(v.shape[0], v.shape[1], heads, d).transpose(1, 2)
        scores = (v @ v.transpose(-1, -2)) / d ** 0.5
        scores = scores.masked_fill(mask[:, None, None, :] == 0, float("-inf"))
        return scores.softmax(-1)

    with torch.no_grad():
        s_out = student.train()(**inputs, output_hidden_states=True, output_attentions=True)
        t_out = teacher.eval()(**inputs, output_hidden_states=True, output_attentions=True)
        value = 0.0
        real = mask.bool()
        for s, t in layer_map.items():
            rs, rt = relation(student, s_out, s), relation(teacher, t_out, t)
            kl = (rt * (torch.log(rt + 1e-8) - torch.log(rs + 1e-8))).sum(-1)  # B, H, Q
            value += float(kl.permute(0, 2, 1)[real].mean())
        terms = trainer.white_box_terms(s_out, t_out, mask)  # without captured values: no value term
        assert float(terms["value"]) == 0.0
        total = float(trainer.compute_loss(student, dict(batch)))
        expected = (float(kd_loss(s_out.logits, t_out.logits, batch["labels"], 2.0, 0.5)) + float(terms["hidden"])
                    + float(terms["attention"]) + 0.5 * value)
        assert value > 0 and total == pytest.approx(expected, rel=1e-5)


def test_an_exact_copy_in_training_mode_has_no_attention_loss(varied_teacher_dir, data):
    """With attention dropout 0.1, a training student's returned maps are dropped and rescaled; the loss must
    compare its attention probabilities, so a copy of the teacher has (soft + attention + value relation) loss 0."""
    from optimum_bengali import load_model, load_tokenizer

    teacher, tok = load_model(varied_teacher_dir), load_tokenizer(varied_teacher_dir)
    teacher.set_attn_implementation("eager")
    student = cut_student(teacher, layers=[0, 1, 2, 3])  # every layer: the teacher itself
    student.config.attention_probs_dropout_prob = 0.1
    for m in student.modules():  # hidden-state dropout off, attention dropout 0.1
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    from optimum_bengali.distillation.trainer import attention_dropouts

    for d in attention_dropouts(student):
        d.p = 0.1
    student.set_attn_implementation("eager")
    trainer = _trainer(teacher, {i: i for i in range(4)}, alpha=1.0, hidden_weight=0.0, value_weight=1.0)
    batch = _batch(tok, data.texts("train")[:8])
    batch.pop("labels")
    torch.manual_seed(0)
    loss = float(trainer.compute_loss(student.train(), dict(batch)))
    assert loss == pytest.approx(0.0, abs=1e-5)
    assert all(d.p == 0.1 for d in attention_dropouts(student))  # the student's own setting is put back


def test_black_box_loss_uses_the_teacher_logits_in_the_batch(tiny_teacher, data):
    from optimum_bengali.distillation.trainer import TEACHER_LOGITS

    teacher, tok = tiny_teacher
    student = cut_student(teacher, layers=[0, 1]).eval()
    trainer = _trainer(None, {}, alpha=0.7)
    batch = _batch(tok, data.texts("train")[:8])
    teacher_logits = 3 * torch.randn(8, 6)
    batch[TEACHER_LOGITS] = teacher_logits
    student.train()
    for m in student.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    with torch.no_grad():
        logits = student(**{k: v for k, v in batch.items() if k not in ("labels", TEACHER_LOGITS)}).logits
        T = 2.0
        soft = F.kl_div(F.log_softmax(logits / T, -1), F.softmax(teacher_logits / T, -1), reduction="batchmean")
        expected = 0.7 * T * T * float(soft) + 0.3 * float(F.cross_entropy(logits, batch["labels"]))
        assert float(trainer.compute_loss(student, dict(batch))) == pytest.approx(expected, rel=1e-5)


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


def test_a_teacher_with_other_weights_does_not_reuse_the_cached_logits(tiny_teacher, data, tmp_path):
    """Same config, tokenizer and texts; one weight changed: a new entry, with that teacher's own logits."""
    from optimum_bengali.evaluation import predict_logits

    teacher, tok = tiny_teacher
    texts = data.texts("train")[:24]
    first, _ = cached_teacher_logits(teacher, tok, texts, "fp", cache_dir=tmp_path, progress=False)
    with torch.no_grad():
        teacher.classifier.bias += 1.0
    second, hit = cached_teacher_logits(teacher, tok, texts, "fp", cache_dir=tmp_path, progress=False)
    assert hit is False and len(list(tmp_path.glob("*.npy"))) == 2
    np.testing.assert_allclose(second, predict_logits(teacher, tok, texts), atol=1e-5)
    np.testing.assert_allclose(second - first, 1.0, atol=1e-4)


def _recipe(mode, **extra):
    step = {"type": "distil", "num_layers": 2, "mode": mode, "max_steps": 12, "batch_size": 8,
            "learning_rate": 1e-3, **extra}
    return {"name": f"kd-{mode}", "steps": [step]}


def spy_kd_loss(monkeypatch):
    """Record, for every training step of the distillation trainer, the batch it got (inputs and the teacher
    logits in it) and the teacher logits and labels its KD loss was given."""
    from optimum_bengali.distillation import trainer as trainer_module

    calls = []
    original_loss, original_compute = trainer_module.kd_loss, trainer_module.DistillationTrainer.compute_loss

    def compute(self, model, inputs, *args, **kwargs):
        if model.training:
            calls.append({"input_ids": inputs["input_ids"].clone(), "attention_mask": inputs["attention_mask"].clone(),
                          "batch_teacher": inputs.get(trainer_module.TEACHER_LOGITS)})
        return original_compute(self, model, inputs, *args, **kwargs)

    def loss(student_logits, teacher_logits, labels, *args, **kwargs):
        if student_logits.requires_grad:
            calls[-1].update(kd_teacher=teacher_logits, labels=labels)
        return original_loss(student_logits, teacher_logits, labels, *args, **kwargs)

    monkeypatch.setattr(trainer_module, "kd_loss", loss)
    monkeypatch.setattr(trainer_module.DistillationTrainer, "compute_loss", compute)
    return calls


@pytest.mark.slow
def test_black_box_student_trains_saves_and_reloads(varied_teacher_dir, small_data, tmp_path, monkeypatch):
    from transformers import AutoModelForSequenceClassification

    from optimum_bengali import load_model

    monkeypatch.setenv("OPTIMUM_BENGALI_CACHE", str(tmp_path / "cache"))
    calls = spy_kd_loss(monkeypatch)
    out = tmp_path / "student"
    result = apply_recipe(varied_teacher_dir, _recipe("black_box"), small_data, out, measure_memory=False,
                          progress=False)
    # each of the 12 steps' KD loss got the teacher's logits of that batch's own sentences
    teacher = load_model(varied_teacher_dir)
    assert len(calls) == 12
    for call in calls:
        assert call["kd_teacher"] is not None and torch.equal(call["kd_teacher"], call["batch_teacher"])
        with torch.no_grad():
            fresh = teacher(input_ids=call["input_ids"], attention_mask=call["attention_mask"]).logits
        np.testing.assert_allclose(call["kd_teacher"].numpy(), fresh.numpy(), atol=1e-4)
    step = result.steps[0]
    assert step["student_layers"] == 2 and step["teacher_layers"] == 4 and step["teacher_logits_cache_hit"] is False
    student = AutoModelForSequenceClassification.from_pretrained(out)
    assert student.config.num_hidden_layers == 2
    assert result.metrics["parameters"] < result.baseline["parameters"]
    again = apply_recipe(varied_teacher_dir, _recipe("black_box"), small_data, tmp_path / "s2", measure_memory=False,
                         measure_baseline=False, progress=False)
    assert again.steps[0]["teacher_logits_cache_hit"] is True


def test_white_box_training_brings_the_student_to_the_teacher_maps(varied_teacher_dir, data):
    """Twenty steps on the white-box loss (dropout on, as in a real run) shrink both white-box terms, measured
    without dropout before and after; cross-entropy alone would not pull the student's layers anywhere."""
    from optimum_bengali import load_model, load_tokenizer

    teacher, tok = load_model(varied_teacher_dir), load_tokenizer(varied_teacher_dir)
    student = cut_student(teacher, layers=[0, 2])
    with torch.no_grad():
        for p in student.bert.encoder.parameters():
            p.add_(0.05 * torch.randn_like(p))
    for m in (student, teacher):
        m.set_attn_implementation("eager")
    trainer = _trainer(teacher.eval(), {0: 1, 1: 3})
    batch = _batch(tok, data.texts("train")[:16])
    inputs = {k: v for k, v in batch.items() if k != "labels"}

    def terms():
        with torch.no_grad():
            s_out = student.eval()(**inputs, output_hidden_states=True, output_attentions=True)
            t_out = teacher(**inputs, output_hidden_states=True, output_attentions=True)
            return {k: float(v) for k, v in trainer.white_box_terms(s_out, t_out, batch["attention_mask"]).items()}

    before = terms()
    opt = torch.optim.AdamW(student.parameters(), lr=1e-3)
    student.train()
    for _ in range(20):
        loss = trainer.compute_loss(student.train(), dict(batch))
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = terms()
    assert after["hidden"] < 0.7 * before["hidden"], (before, after)
    assert after["attention"] < 0.7 * before["attention"], (before, after)


@pytest.mark.slow
def test_white_box_step_runs_and_layer_map_is_checked(tiny_teacher_dir, small_data, tmp_path):
    result = apply_recipe(tiny_teacher_dir, _recipe("white_box", max_steps=4), small_data, tmp_path / "wb",
                          measure_memory=False, measure_baseline=False, progress=False)
    assert result.steps[0]["layer_map"] == {0: 0, 1: 2} and result.steps[0]["copied_layers"] == [0, 2]
    # the report keeps every validation evaluation and which one's weights were kept: the best
    history = {step: value for step, value in result.steps[0]["validation_macro_f1"]}
    assert sorted(history) == [2, 4]
    assert history[result.steps[0]["kept_step"]] == max(history.values())
    assert result.metrics["validation"]["macro_f1"] == pytest.approx(max(history.values()), abs=1e-5)
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


@pytest.mark.slow
def test_distil_with_augmentation_labels_extra_rows_by_teacher(tiny_teacher_dir, small_data, tmp_path, monkeypatch):
    from optimum_bengali.distillation.losses import UNLABELLED

    monkeypatch.setenv("OPTIMUM_BENGALI_CACHE", str(tmp_path / "cache"))
    calls = spy_kd_loss(monkeypatch)
    result = apply_recipe(tiny_teacher_dir, _recipe("black_box", augment=2), small_data, tmp_path / "aug",
                          measure_memory=False, measure_baseline=False, progress=False)
    step = result.steps[0]
    assert 300 < step["augmented_rows"] <= 600 and step["teacher_logits_cache_hit"] is False
    # the augmented rows (label -100) train on the teacher's logits: every step gets them
    assert calls and all(c["kd_teacher"] is not None and torch.equal(c["kd_teacher"], c["batch_teacher"])
                         for c in calls)
    assert any(bool((c["labels"] == UNLABELLED).any()) for c in calls)


def test_transfer_set_is_read_normalized_deduplicated_and_sampled(tmp_path):
    import unicodedata

    from optimum_bengali import DataError
    from optimum_bengali.distillation.transfer import read_transfer_texts

    decomposed = unicodedata.normalize("NFD", "কোথায় যাচ্ছ")  # ো as two code points: NFKC composes it
    assert decomposed != unicodedata.normalize("NFKC", decomposed)
    path = tmp_path / "comments.txt"
    path.write_text(f"{decomposed}\n\n  আমি খুশি  \nআমি খুশি\nসে দুঃখিত\n", encoding="utf-8")
    texts = read_transfer_texts(path, "nfkc")
    assert texts == [unicodedata.normalize("NFKC", decomposed), "আমি খুশি", "সে দুঃখিত"]
    assert read_transfer_texts(path, None)[0] == decomposed
    two = read_transfer_texts(path, "nfkc", max_rows=2, seed=1)
    assert len(two) == 2 and two == read_transfer_texts(path, "nfkc", max_rows=2, seed=1) and set(two) <= set(texts)
    with pytest.raises(DataError, match="has no text"):
        (tmp_path / "empty.txt").write_text("\n \n", encoding="utf-8")
        read_transfer_texts(tmp_path / "empty.txt", "nfkc")


@pytest.mark.slow
def test_distil_on_a_transfer_set_trains_the_soft_terms_on_teacher_labelled_rows(varied_teacher_dir, small_data,
                                                                                 data, tmp_path, monkeypatch):
    from optimum_bengali import RecipeError, load_recipe
    from optimum_bengali.distillation.losses import UNLABELLED

    monkeypatch.setenv("OPTIMUM_BENGALI_CACHE", str(tmp_path / "cache"))
    unlabelled = data.texts("train")[1000:1040]  # BEmoC rows the small data set does not hold
    from optimum_bengali.data import load_data

    small = load_data(small_data)
    test_sentence = small.texts("test")[0]
    transfer = tmp_path / "transfer.txt"
    transfer.write_text("\n".join(unlabelled + [test_sentence]), encoding="utf-8")
    calls = spy_kd_loss(monkeypatch)
    recipe = _recipe("black_box", transfer_set=str(transfer))
    result = apply_recipe(varied_teacher_dir, recipe, small_data, tmp_path / "tr", measure_memory=False,
                          measure_baseline=False, progress=False)
    step = result.steps[0]
    in_splits = {t for split in small.splits for t in small.texts(split)}
    new_rows = [t for t in dict.fromkeys(unlabelled) if t not in in_splits]
    assert len(new_rows) >= 30 and test_sentence in in_splits
    assert step["transfer_rows"] == len(new_rows)
    assert step["transfer_rows_left_out_in_a_split"] == len(dict.fromkeys(unlabelled + [test_sentence])) - len(new_rows)
    assert any(bool((c["labels"] == UNLABELLED).any()) for c in calls)
    assert all(c["kd_teacher"] is not None for c in calls)
    with pytest.raises(RecipeError, match="transfer_set"):
        load_recipe(_recipe("black_box", transfer_set=str(tmp_path / "missing.txt")))
    with pytest.raises(RecipeError, match="transfer_max_rows"):
        load_recipe(_recipe("black_box", transfer_max_rows=10))
