"""Attention-head pruning: importance, slicing, the pruned-heads format and its OpenVINO export."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification

from optimum_bengali import apply_recipe, load_model, load_tokenizer
from optimum_bengali.evaluation import predict_logits
from optimum_bengali.formats import model_format
from optimum_bengali.formats.pruned_heads import save_pruned_heads
from optimum_bengali.pruning.heads import head_counts, head_importance, heads_to_keep, prune_heads


@pytest.fixture(scope="module")
def four_head_dir(data, tiny_tokenizer, tmp_path_factory):
    """A tiny BERT classifier with 4 heads of size 16 in each of 3 layers."""
    from optimum_bengali.modeling import build_from_config

    model, tok = build_from_config("bert-tiny-shape", data.texts("train"), data.label_names,
                                   tokenizer=tiny_tokenizer, num_hidden_layers=3, num_attention_heads=4)
    out = tmp_path_factory.mktemp("four_heads")
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def _gated_logits(model, tok, texts, keep):
    """Logits of ``model`` with the heads not in ``keep`` switched off by zeroing their output."""
    hooks = []
    for layer, heads in zip(model.bert.encoder.layer, keep):
        n = layer.attention.self.num_attention_heads
        gate = torch.zeros(n)
        gate[heads] = 1.0

        def hook(module, inputs, output, gate=gate):
            ctx = output[0]
            return ((ctx.view(*ctx.shape[:-1], len(gate), -1) * gate.view(-1, 1)).view(ctx.shape), *output[1:])

        hooks.append(layer.attention.self.register_forward_hook(hook))
    try:
        return predict_logits(model, tok, texts)
    finally:
        for h in hooks:
            h.remove()


def test_pruned_model_equals_the_model_with_those_heads_switched_off(four_head_dir, data, tmp_path):
    model, tok = load_model(four_head_dir).eval(), load_tokenizer(four_head_dir)
    texts = data.texts("test")[:16]
    keep = [[0, 3], [1], [0, 1, 2]]
    expected = _gated_logits(model, tok, texts, keep)
    before = sum(p.numel() for p in model.parameters())
    pruned = prune_heads(model, keep)
    assert head_counts(pruned) == [2, 1, 3]
    assert head_counts(model) == [4, 4, 4] and not hasattr(model.config, "attention_heads_per_layer")
    assert pruned.bert.encoder.layer[1].attention.self.query.weight.shape == (16, 64)
    assert pruned.bert.encoder.layer[1].attention.output.dense.weight.shape == (64, 16)
    assert sum(p.numel() for p in pruned.parameters()) < before
    np.testing.assert_allclose(predict_logits(pruned, tok, texts), expected, atol=1e-5)
    save_pruned_heads(pruned, tmp_path / "p")
    assert model_format(tmp_path / "p") == "pruned-heads"
    again = load_model(tmp_path / "p")
    assert head_counts(again) == [2, 1, 3]
    np.testing.assert_allclose(predict_logits(again, tok, texts), expected, atol=1e-5)


def test_importance_ranks_a_head_that_matters_above_a_silenced_one(four_head_dir, data):
    from optimum_bengali.training.trainer import PaddingCollator

    model, tok = load_model(four_head_dir), load_tokenizer(four_head_dir)
    with torch.no_grad():  # head 2 of layer 0 writes nothing: removing it cannot change the loss
        model.bert.encoder.layer[0].attention.output.dense.weight[:, 32:48] = 0
    enc = tok(data.texts("train")[:32], truncation=True, max_length=64)
    rows = [{"input_ids": enc["input_ids"][i], "attention_mask": enc["attention_mask"][i],
             "labels": data.splits["train"][i]["label"]} for i in range(32)]
    batches = [PaddingCollator(tok)(rows[i:i + 16]) for i in (0, 16)]
    scores = head_importance(model, batches)
    assert [len(s) for s in scores] == [4, 4, 4]
    assert scores[0][2] == 0 and scores[0].max() > 0
    assert all(torch.isclose(s.norm(), torch.tensor(1.0)) for s in scores)
    keep = heads_to_keep(scores, 0.75, "local")
    assert 2 not in keep[0] and [len(k) for k in keep] == [3, 3, 3]
    keep = heads_to_keep(scores, 0.25, "global")
    assert sum(len(k) for k in keep) == 3 and all(keep)  # every layer keeps at least one head


@pytest.mark.slow
def test_head_pruned_folder_loads_with_plain_transformers_in_a_process_without_this_package(four_head_dir, tmp_path):
    model = prune_heads(load_model(four_head_dir).eval(), [[1, 2], [0], [3]])
    save_pruned_heads(model, tmp_path / "p")
    load_tokenizer(four_head_dir).save_pretrained(tmp_path / "p")
    ids = torch.randint(5, 100, (2, 9))
    expected = model(input_ids=ids).logits.detach()
    torch.save({"ids": ids, "logits": expected}, tmp_path / "expected.pt")
    script = f"""
import sys
import torch
from transformers import AutoModelForSequenceClassification
model = AutoModelForSequenceClassification.from_pretrained({str(tmp_path / "p")!r}, trust_remote_code=True).eval()
assert not [m for m in sys.modules if m.startswith("optimum_bengali")], "the package was imported"
ref = torch.load({str(tmp_path / "expected.pt")!r})
assert [l.attention.self.num_attention_heads for l in model.bert.encoder.layer] == [2, 1, 1]
assert torch.allclose(model(input_ids=ref["ids"]).logits, ref["logits"], atol=1e-5)
print("ok")
"""
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert res.returncode == 0 and res.stdout.strip().endswith("ok"), res.stderr[-2000:]
    with pytest.raises(Exception):  # without its modeling file the shapes do not fit the plain class
        AutoModelForSequenceClassification.from_pretrained(tmp_path / "p")


@pytest.mark.slow
def test_structured_step_prunes_heads_and_ffn_then_exports_to_openvino(four_head_dir, small_data, tmp_path):
    recipe = {"name": "h", "steps": [
        {"type": "prune", "method": "structured", "ffn_keep": 0.5, "heads_keep": 0.5, "scope": "global",
         "importance_samples": 32, "recovery": "distil", "max_steps": 2, "batch_size": 8},
        {"type": "export"}]}
    result = apply_recipe(four_head_dir, recipe, small_data, tmp_path / "h", measure_memory=False, progress=False)
    step = result.steps[0]
    assert step["heads_per_layer_before"] == [4, 4, 4]
    assert sum(step["heads_per_layer_after"]) == 6 and min(step["heads_per_layer_after"]) >= 1
    assert step["intermediate_size_after"] == 64 and step["recovery"].startswith("distil")
    assert result.metrics["format"] == "openvino"
    assert result.metrics["parameters"] < result.baseline["parameters"]
    from optimum.intel import OVModelForSequenceClassification

    ov = OVModelForSequenceClassification.from_pretrained(tmp_path / "h")  # no custom code needed
    assert ov.config.attention_heads_per_layer == step["heads_per_layer_after"]


@pytest.mark.slow
def test_head_pruned_pytorch_output_and_a_student_cut_from_it(four_head_dir, small_data, tmp_path):
    recipe = {"name": "hp", "steps": [
        {"type": "prune", "method": "structured", "ffn_keep": 1.0, "heads_keep": 0.5, "scope": "local",
         "importance": "magnitude", "max_steps": 1, "batch_size": 8},
        {"type": "distil", "num_layers": 2, "max_steps": 1, "batch_size": 8, "mode": "white_box"}]}
    result = apply_recipe(four_head_dir, recipe, small_data, tmp_path / "hp", measure_memory=False, progress=False)
    assert result.steps[0]["heads_per_layer_after"] == [2, 2, 2]
    assert result.metrics["format"] == "pruned-heads"
    assert model_format(tmp_path / "hp") == "pruned-heads"
    model = load_model(tmp_path / "hp")
    assert head_counts(model) == [2, 2]
    assert "from_pretrained(\"path/or/repo-id\", trust_remote_code=True)" in (tmp_path / "hp" / "README.md").read_text()


@pytest.mark.slow
def test_shipped_bengali_fast_prunes_a_distilled_student_then_quantizes(varied_teacher_dir, small_data, tmp_path,
                                                                         shortened_recipe):
    """The shipped ``bengali-fast`` (shortened): trim, white-box distil, remove half the heads and half the FFN
    neurons of the student (not of the teacher), static int8 with length buckets."""
    from optimum_bengali import load_recipe

    shipped = load_recipe("bengali-fast")
    assert [s.type_name for s in shipped.steps] == ["trim_vocab", "distil", "prune", "quantize"]
    teacher = load_model(varied_teacher_dir).config
    result = apply_recipe(varied_teacher_dir, shortened_recipe("bengali-fast"), small_data, tmp_path / "fast",
                          measure_memory=False, progress=False)
    prune = next(s for s in result.steps if s["type"] == "prune")
    assert len(prune["heads_per_layer_before"]) == 2  # the distilled student is pruned
    assert sum(prune["heads_per_layer_after"]) == teacher.num_attention_heads  # half of 2 layers' heads
    assert prune["intermediate_size_after"] == teacher.intermediate_size // 2
    assert result.metrics["format"] == "openvino"
    assert result.metrics["runtime"]["static_lengths"] == [16, 32, 48, 64, 96, 128]


def test_global_scope_keeps_the_highest_scored_heads_across_layers():
    """By hand: every layer keeps its best head (0.9 in layer 0, 0.8 in layer 1); the third of the three kept
    heads (half of six, rounded) is the best of the rest over both layers, 0.5 in layer 0, not 0.3 or 0.1."""
    scores = [torch.tensor([0.9, 0.1, 0.5]), torch.tensor([0.2, 0.8, 0.3])]
    assert heads_to_keep(scores, 0.5, "global") == [[0, 2], [1]]
    assert heads_to_keep(scores, 0.5, "local") == [[0, 2], [1, 2]]  # round(1.5) = 2 per layer: the two best
    assert heads_to_keep(scores, 0.17, "global") == [[0], [1]]  # one head in all: still one per layer
