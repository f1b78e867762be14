import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification

from optimum_bengali import apply_recipe
from optimum_bengali.evaluation import predict_logits
from optimum_bengali.pruning import apply_sparsity, measure_sparsity, prune_ffn
from optimum_bengali.pruning.magnitude import cubic_sparsity, make_permanent, prunable_linears
from optimum_bengali.pruning.vocab import trim_vocabulary, used_ids


@pytest.mark.parametrize("scope", ["global", "local"])
@pytest.mark.parametrize("target", [0.5, 0.7, 0.9])
def test_magnitude_sparsity_hits_target(tiny_teacher, scope, target):
    model, _ = tiny_teacher
    apply_sparsity(model, target, scope)
    measured = measure_sparsity(model)
    assert abs(measured["overall"] - target) <= 0.01
    if scope == "local":
        assert all(abs(v - target) <= 0.01 for k, v in measured.items() if k != "overall")
    # embeddings and the head stay dense
    assert float((model.bert.embeddings.word_embeddings.weight == 0).float().mean()) < 0.01


def test_cubic_schedule():
    assert cubic_sparsity(0, 100, 0.0, 0.8) == pytest.approx(0.0)
    assert cubic_sparsity(100, 100, 0.0, 0.8) == pytest.approx(0.8)
    assert cubic_sparsity(50, 100, 0.0, 0.8) == pytest.approx(0.8 - 0.8 * 0.125)
    assert cubic_sparsity(200, 100, 0.1, 0.8) == pytest.approx(0.8)


def test_masks_survive_optimizer_steps(tiny_teacher):
    model, tok = tiny_teacher
    apply_sparsity(model, 0.6)
    masks = {n: m.weight_mask.clone() for n, m in prunable_linears(model)}
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    batch = tok(["আমি খুব খুশি", "খুব খারাপ লাগছে"], return_tensors="pt", padding=True)
    for _ in range(3):
        loss = model(**batch, labels=torch.tensor([3, 4])).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    for name, m in prunable_linears(model):
        assert torch.all(m.weight[masks[name] == 0] == 0)
    make_permanent(model)
    assert not any(hasattr(m, "weight_mask") for _, m in prunable_linears(model))
    assert abs(measure_sparsity(model)["overall"] - 0.6) <= 0.01


@pytest.mark.slow
def test_gradual_pruning_step_reaches_target_and_reports(tiny_teacher_dir, small_data, tmp_path):
    recipe = {"name": "p", "steps": [{"type": "prune", "method": "magnitude", "sparsity": 0.7, "max_steps": 20,
                                      "update_every": 2, "batch_size": 8}]}
    result = apply_recipe(tiny_teacher_dir, recipe, small_data, tmp_path / "p", measure_memory=False,
                          progress=False)
    step = result.steps[0]
    assert abs(step["sparsity"] - 0.7) <= 0.01 and len(step["sparsity_per_layer"]) == 4 * 6
    saved = AutoModelForSequenceClassification.from_pretrained(tmp_path / "p")
    assert abs(measure_sparsity(saved)["overall"] - 0.7) <= 0.01
    m = result.metrics
    assert m["parameters"] == result.baseline["parameters"]  # unstructured: same count ...
    assert m["nonzero_parameters"] < 0.8 * m["parameters"]  # ... fewer non-zeros


def _ffn_gated(model, keep_per_layer):
    """A copy of ``model`` whose FFN neurons not in ``keep_per_layer[i]`` are switched off (their output weights
    zeroed): what pruning those neurons must compute."""
    import copy

    gated = copy.deepcopy(model)
    with torch.no_grad():
        for layer, keep in zip(gated.bert.encoder.layer, keep_per_layer):
            off = torch.ones(layer.output.dense.in_features, dtype=torch.bool)
            off[keep] = False
            layer.output.dense.weight[:, off] = 0.0
    return gated


def test_structured_ffn_pruning_keeps_the_highest_scored_neurons(varied_teacher_dir, data, tmp_path):
    from optimum_bengali import load_model, load_tokenizer

    model, tok = load_model(varied_teacher_dir), load_tokenizer(varied_teacher_dir)
    before = sum(p.numel() for p in model.parameters())
    scores = [torch.randn(128, generator=torch.Generator().manual_seed(i)) for i in range(4)]
    kept = [torch.topk(s, 48).indices for s in scores]
    texts = data.texts("test")[:16]
    expected = predict_logits(_ffn_gated(model, kept), tok, texts)
    prune_ffn(model, 48, scores)
    assert model.bert.encoder.layer[0].intermediate.dense.weight.shape == (48, 64)
    assert model.bert.encoder.layer[3].output.dense.weight.shape == (64, 48)
    assert sum(p.numel() for p in model.parameters()) < before
    # the smaller model computes what the original does with every other neuron switched off
    np.testing.assert_allclose(predict_logits(model.eval(), tok, texts), expected, atol=1e-5)
    model.save_pretrained(tmp_path)
    again = AutoModelForSequenceClassification.from_pretrained(tmp_path)
    assert again.config.intermediate_size == 48
    np.testing.assert_allclose(predict_logits(model.eval(), tok, texts), predict_logits(again, tok, texts), atol=1e-5)


@pytest.mark.slow
def test_structured_step_with_gradient_importance_drops_silent_neurons(varied_teacher_dir, small_data, data,
                                                                        tmp_path):
    """Neurons whose output weights are zero contribute nothing and get gradient importance 0: the step must
    drop exactly those, so the pruned model computes what the unpruned one did."""
    from optimum_bengali import load_model, load_tokenizer

    model, tok = load_model(varied_teacher_dir), load_tokenizer(varied_teacher_dir)
    alive = [torch.randperm(128, generator=torch.Generator().manual_seed(i))[:32].sort().values for i in range(4)]
    silenced = _ffn_gated(model, alive)
    teacher = tmp_path / "silenced"
    silenced.save_pretrained(teacher)
    tok.save_pretrained(teacher)
    recipe = {"name": "s", "steps": [{"type": "prune", "method": "structured", "ffn_keep": 0.25,
                                      "importance": "gradient", "importance_samples": 32, "max_steps": 0}]}
    result = apply_recipe(teacher, recipe, small_data, tmp_path / "s", measure_memory=False, progress=False)
    assert result.steps[0]["intermediate_size_after"] == 32
    assert result.metrics["parameters"] < result.baseline["parameters"]
    pruned = AutoModelForSequenceClassification.from_pretrained(tmp_path / "s")
    assert pruned.config.intermediate_size == 32
    for layer, old, keep in zip(pruned.bert.encoder.layer, silenced.bert.encoder.layer, alive):
        assert torch.equal(layer.intermediate.dense.weight, old.intermediate.dense.weight[keep])
    texts = data.texts("test")[:16]
    np.testing.assert_allclose(predict_logits(pruned, tok, texts), predict_logits(silenced.eval(), tok, texts),
                               atol=1e-5)


def test_vocabulary_trimming_keeps_corpus_tokenization_and_logits(tiny_teacher, data):
    model, tok = tiny_teacher
    corpus = data.texts("train")[:200]
    keep = used_ids(tok, corpus)
    assert len(keep) < len(tok)
    old_ids = tok(corpus)["input_ids"]
    ref = predict_logits(model, tok, corpus[:32])
    old2new = {o: n for n, o in enumerate(keep)}
    model, new_tok = trim_vocabulary(model, tok, keep)
    assert new_tok(corpus)["input_ids"] == [[old2new[i] for i in ids] for ids in old_ids]
    assert model.get_input_embeddings().weight.shape[0] == len(keep) == model.config.vocab_size
    np.testing.assert_allclose(predict_logits(model, new_tok, corpus[:32]), ref, atol=1e-5)
    assert new_tok.tokenize("খুব") == ["খুব"]


@pytest.mark.slow
def test_trim_vocab_step_warns_with_counts(tiny_teacher_dir, small_data, tmp_path):
    from transformers import AutoTokenizer

    recipe = {"name": "t", "steps": [{"type": "trim_vocab"}]}
    with pytest.warns(UserWarning, match=r"word pieces in the (validation|test) split"):
        result = apply_recipe(tiny_teacher_dir, recipe, small_data, tmp_path / "t", measure_memory=False,
                              progress=False)
    step = result.steps[0]
    assert step["vocab_after"] < step["vocab_before"]
    assert step["eval_pieces_dropped"]["test"]["pieces_dropped"] > 0
    tok = AutoTokenizer.from_pretrained(tmp_path / "t")
    assert len(tok) == step["vocab_after"]
    assert result.metrics["parameters"] < result.baseline["parameters"]


def test_trim_vocab_refuses_the_test_split():
    from optimum_bengali import RecipeError, load_recipe

    with pytest.raises(RecipeError, match="the test split is only read to report results"):
        load_recipe({"name": "t", "steps": [{"type": "trim_vocab", "splits": ["train", "test"]}]})
    assert load_recipe({"name": "t", "steps": [{"type": "trim_vocab", "splits": ["train", "validation"]}]})


def test_trim_vocab_on_unigram_tokenizer(data):
    """XLM-R style (Unigram) tokenizers are trimmed too."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

    raw = Tokenizer(models.Unigram())
    raw.pre_tokenizer = pre_tokenizers.Metaspace()
    raw.train_from_iterator(data.texts("train")[:500], trainers.UnigramTrainer(
        vocab_size=800, special_tokens=["<pad>", "<unk>", "<s>", "</s>"], unk_token="<unk>"))
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, unk_token="<unk>", pad_token="<pad>", bos_token="<s>",
                                  eos_token="</s>")
    model = BertForSequenceClassification(BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=1,
                                                     num_attention_heads=2, intermediate_size=64, num_labels=6)).eval()
    corpus = data.texts("train")[:100]
    keep = used_ids(tok, corpus)
    old2new = {o: n for n, o in enumerate(keep)}
    old = tok(corpus)["input_ids"]
    ref = predict_logits(model, tok, corpus[:16])
    model, new_tok = trim_vocabulary(model, tok, keep)
    assert new_tok(corpus)["input_ids"] == [[old2new[i] for i in ids] for ids in old]
    np.testing.assert_allclose(predict_logits(model, new_tok, corpus[:16]), ref, atol=1e-5)


def test_sparse_save_is_smaller_and_reloads_exactly(tiny_teacher, data, tmp_path):
    from optimum_bengali import SparseModelForSequenceClassification, save_sparse
    from optimum_bengali.formats import load_model, model_format

    model, tok = tiny_teacher
    apply_sparsity(model, 0.9, "global")
    make_permanent(model)
    model.save_pretrained(tmp_path / "dense")
    info = save_sparse(model, tmp_path / "sparse")
    assert info["sparse_tensors"] == len(prunable_linears(model))
    assert model_format(tmp_path / "sparse") == "sparse"
    reloaded = SparseModelForSequenceClassification.from_pretrained(tmp_path / "sparse")
    state = reloaded.state_dict()
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, state[name]), name
    texts = data.texts("test")[:16]
    tok.save_pretrained(tmp_path / "sparse")
    np.testing.assert_array_equal(predict_logits(model, tok, texts),
                                  predict_logits(load_model(tmp_path / "sparse"), tok, texts))
    # the pruned matrices shrink to ~13% (values + one bit per element); embeddings stay dense
    dense_linear = sum(m.weight.numel() * 4 for _, m in prunable_linears(model))
    saved = (tmp_path / "sparse" / "model.sparse.safetensors").stat().st_size
    dense = (tmp_path / "dense" / "model.safetensors").stat().st_size
    assert dense - saved > 0.8 * dense_linear


@pytest.mark.slow
def test_sparse_folder_loads_with_plain_transformers_in_a_process_without_this_package(tiny_teacher, tmp_path):
    """The folder carries its own loader (``auto_map`` + ``modeling_sparse.py``, trust_remote_code)."""
    import subprocess
    import sys

    from optimum_bengali import save_sparse

    model, _ = tiny_teacher
    apply_sparsity(model, 0.8, "global")
    make_permanent(model)
    save_sparse(model, tmp_path / "sparse")
    expected = tmp_path / "expected.pt"
    torch.save({k: v.clone() for k, v in model.state_dict().items()}, expected)
    script = f"""
import sys
import torch
from transformers import AutoModelForSequenceClassification
model = AutoModelForSequenceClassification.from_pretrained({str(tmp_path / "sparse")!r}, trust_remote_code=True)
assert not [m for m in sys.modules if m.startswith("optimum_bengali")], "the package was imported"
expected = torch.load({str(expected)!r})
state = model.state_dict()
assert type(model).__name__ == "BertForSequenceClassification", type(model)
assert all(torch.equal(t, state[k]) for k, t in expected.items())
print("ok")
"""
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                         cwd=tmp_path)
    assert res.returncode == 0 and res.stdout.strip().endswith("ok"), res.stderr[-2000:]


@pytest.mark.slow
def test_prune_step_with_sparse_save(tiny_teacher_dir, small_data, tmp_path):
    recipe = {"name": "sp", "steps": [{"type": "prune", "method": "magnitude", "sparsity": 0.7,
                                       "schedule": "oneshot", "max_steps": 0, "save": "sparse"}]}
    result = apply_recipe(tiny_teacher_dir, recipe, small_data, tmp_path / "sp", measure_memory=False,
                          progress=False)
    assert result.metrics["format"] == "sparse"
    assert result.metrics["weight_bytes"] < result.baseline["weight_bytes"]
    assert result.metrics["nonzero_parameters"] < 0.75 * result.baseline["nonzero_parameters"]
