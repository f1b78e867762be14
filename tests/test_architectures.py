"""Any Bengali classifier: the architectures users bring (tiny models built from configs, each with its own kind
of tokenizer; see ``tests/zoo.py``), through both shipped recipes, and the preflight that refuses what cannot
run before any weights load."""

import copy
import importlib
import re
import time

import numpy as np
import pytest
import torch

from optimum_bengali import ModelError, apply_recipe, load_model, load_recipe
from optimum_bengali.evaluation import predict_logits
from optimum_bengali.formats import loader_kwargs_of, loader_of, model_format
from optimum_bengali.formats.pruned_heads import save_pruned_heads
from optimum_bengali.formats.pruned_heads_modeling import encoder_layers, get_path, layout_of
from optimum_bengali.modeling import check_bengali_tokenizer, load_tokenizer
from optimum_bengali.pruning.heads import head_counts, prune_heads
from optimum_bengali.pruning.structured import ffn_pairs, prune_ffn
from zoo import build_classifier, save_classifier

#: the seven architectures of the matrix (DeBERTa-v2 also with its own position projections)
MATRIX = ["bert", "electra", "xlm-roberta", "deberta-v2", "distilbert", "albert", "roberta"]
#: (architecture, recipe) -> the words of the preflight's refusal; every other cell must finish
REFUSED = {("albert", "bengali-fast"): "step 2 (prune) cannot run on this model: ALBERT's layers share one set"}


@pytest.fixture(scope="module")
def zoo_dir(data, tiny_tokenizer, tmp_path_factory):
    """``zoo_dir(arch)``: the folder of a tiny saved classifier of ``arch`` (built once per module)."""
    made = {}

    def make(arch):
        if arch not in made:
            made[arch] = save_classifier(arch, tmp_path_factory.mktemp(arch), data.texts("train")[:2000],
                                         data.label_names, tiny_tokenizer)
        return made[arch]

    return make


def _readme_loader(folder):
    """The folder loaded the way its card and the README say: ``loader_of(format)`` with its keyword arguments."""
    fmt = model_format(folder)
    module, name = loader_of(fmt).split(" import ")
    kwargs = {"trust_remote_code": True} if "trust_remote_code=True" in loader_kwargs_of(fmt) else {}
    return getattr(importlib.import_module(module), name).from_pretrained(str(folder), **kwargs)


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["bengali-fast", "bengali-accurate"])
@pytest.mark.parametrize("arch", MATRIX)
def test_shipped_recipes_finish_or_are_refused_before_any_training(arch, recipe, zoo_dir, small_data, data,
                                                                    tmp_path, shortened_recipe):
    folder = zoo_dir(arch)
    teacher = load_model(folder)
    if (arch, recipe) in REFUSED:
        t0 = time.perf_counter()
        with pytest.raises(ModelError, match=re.escape(REFUSED[arch, recipe])):
            apply_recipe(folder, shortened_recipe(recipe), small_data, tmp_path / "out", progress=False)
        assert time.perf_counter() - t0 < 30 and not (tmp_path / "out").exists()
        return
    result = apply_recipe(folder, shortened_recipe(recipe), small_data, tmp_path / "out", progress=False,
                          measure_baseline=False, measure_memory=False, max_latency_batches=2)
    assert result.metrics["format"] == "openvino"
    assert result.metrics["parameters"] < sum(p.numel() for p in teacher.parameters())
    if recipe == "bengali-fast":
        prune = next(s for s in result.steps if s["type"] == "prune")
        assert prune["intermediate_size_after"] == prune["intermediate_size_before"] // 2
        assert sum(prune["heads_per_layer_after"]) == sum(prune["heads_per_layer_before"]) // 2
    # the README's loader for the format gives the labels and logits of the package's own loader
    texts = data.texts("test")[:12]
    plain = _readme_loader(tmp_path / "out")
    ours = load_model(tmp_path / "out")
    assert plain.config.id2label == teacher.config.id2label == ours.config.id2label
    tok = load_tokenizer(tmp_path / "out")
    np.testing.assert_allclose(predict_logits(plain, tok, texts), predict_logits(ours, tok, texts), atol=2e-2)
    assert "auto_map" not in (tmp_path / "out" / "config.json").read_text()  # an IR runs no modeling code


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["bert", "deberta-v2", "deberta-v2-own-pos-proj", "distilbert", "xlm-roberta"])
def test_pruned_heads_compute_what_the_model_does_with_those_heads_silenced(arch, data, tiny_tokenizer, tmp_path):
    """Reference without the pruning code: a head whose value rows are zero contributes nothing."""
    model, tok = build_classifier(arch, data.texts("train")[:2000], data.label_names, tiny_tokenizer)
    texts = data.texts("test")[:16]
    keep = [[0, 3], [1], [0, 1, 2], [2]]
    layout = layout_of(model.config.model_type)
    silenced = copy.deepcopy(model)
    for layer, heads in zip(encoder_layers(silenced), keep):
        attention = get_path(layer, layout.attention)
        value, d = getattr(attention, layout.value), attention.attention_head_size
        with torch.no_grad():
            for h in set(range(4)) - set(heads):
                value.weight[h * d:(h + 1) * d] = 0
                value.bias[h * d:(h + 1) * d] = 0
    expected = predict_logits(silenced, tok, texts)
    pruned = prune_heads(model, keep)
    assert head_counts(pruned) == [2, 1, 3, 1] and head_counts(model) == [4, 4, 4, 4]
    np.testing.assert_allclose(predict_logits(pruned.eval(), tok, texts), expected, atol=1e-5)
    save_pruned_heads(pruned, tmp_path)
    assert model_format(tmp_path) == "pruned-heads"
    again = load_model(tmp_path)  # the pruned-heads class, from the config's per-layer head counts
    np.testing.assert_allclose(predict_logits(again, tok, texts), expected, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["distilbert", "deberta-v2"])
def test_ffn_pruning_of_other_layouts_keeps_the_chosen_neurons(arch, data, tiny_tokenizer, tmp_path):
    from transformers import AutoModelForSequenceClassification

    model, tok = build_classifier(arch, data.texts("train")[:2000], data.label_names, tiny_tokenizer)
    texts = data.texts("test")[:16]
    scores = [torch.randn(64, generator=torch.Generator().manual_seed(i)) for i in range(4)]
    silenced = copy.deepcopy(model)
    for (w_in, _), score in zip(ffn_pairs(silenced), scores):
        with torch.no_grad():  # a neuron with zero input weights and bias outputs act(0) = 0 (GELU)
            drop = torch.topk(score, 64 - 24, largest=False).indices
            w_in.weight[drop] = 0
            w_in.bias[drop] = 0
    expected = predict_logits(silenced, tok, texts)
    prune_ffn(model, 24, scores)
    assert [w_in.out_features for w_in, _ in ffn_pairs(model)] == [24] * 4
    np.testing.assert_allclose(predict_logits(model.eval(), tok, texts), expected, atol=1e-5)
    model.save_pretrained(tmp_path)  # one FFN width: plain transformers reloads it
    again = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    np.testing.assert_allclose(predict_logits(again, tok, texts), expected, atol=1e-5)


@pytest.fixture()
def no_weight_loading(monkeypatch):
    from transformers import AutoModelForSequenceClassification, PreTrainedModel

    def refuse(*args, **kwargs):
        raise AssertionError("weights were loaded before the preflight refused the recipe")

    monkeypatch.setattr(AutoModelForSequenceClassification, "from_pretrained", refuse)
    monkeypatch.setattr(PreTrainedModel, "from_pretrained", classmethod(refuse))


@pytest.mark.parametrize("steps,expected", [
    ([{"type": "distil", "num_layers": 6, "max_steps": 1}],
     "step 0 (distil) cannot run on this model: a cut student keeps 1..4 layers, got 6"),
    ([{"type": "distil", "layers": [0, 7], "max_steps": 1}],
     "step 0 (distil) cannot run on this model: layers to keep must be in 0..3 (the teacher has 4), got [0, 7]"),
    ([{"type": "distil", "student": "config", "hidden_size": 48, "num_attention_heads": 5, "max_steps": 1}],
     "hidden_size 48 is not a multiple of num_attention_heads 5"),
    ([{"type": "distil", "student": "config", "hidden_size": 48, "num_attention_heads": 4, "mode": "white_box",
       "max_steps": 1}], "white-box hidden-state loss needs equal hidden sizes (student 48, teacher 64)"),
    ([{"type": "distil", "num_layers": 2, "mode": "white_box", "layer_map": {0: 9}, "max_steps": 1}],
     "layer_map 0->9 is out of range"),
    ([{"type": "distil", "num_layers": 2, "max_steps": 1},
      {"type": "distil", "num_layers": 3, "max_steps": 1}],  # the second cut sees the first one's 2 layers
     "step 1 (distil) cannot run on this model: a cut student keeps 1..2 layers, got 3"),
])
def test_preflight_refuses_before_any_weights_load(steps, expected, tiny_teacher_dir, small_data, tmp_path,
                                                   no_weight_loading):
    with pytest.raises(ModelError) as err:
        apply_recipe(tiny_teacher_dir, {"name": "p", "steps": steps}, small_data, tmp_path / "o", progress=False)
    assert expected in str(err.value) and "\n" not in str(err.value)
    assert str(err.value).startswith("recipe 'p': step ")


def test_preflight_refuses_structured_pruning_of_albert_through_the_cli(zoo_dir, small_data, tmp_path, capsys,
                                                                        shortened_recipe, no_weight_loading):
    from optimum_bengali.cli import main

    teacher = zoo_dir("albert")
    shortened_recipe("bengali-fast").save(tmp_path / "fast.yaml")  # a 2-layer student of the 4-layer model
    capsys.readouterr()
    code = main(["compress", "--model", str(teacher), "--recipe", str(tmp_path / "fast.yaml"), "--data",
                 str(small_data), "--output", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: recipe 'bengali-fast': step 2 (prune) cannot run") and "\n" not in err


def test_preflight_leaves_the_config_it_checks_unchanged(tiny_teacher_dir, small_data, shortened_recipe):
    from transformers import AutoConfig

    from optimum_bengali.data import load_data

    config = AutoConfig.from_pretrained(tiny_teacher_dir)
    before = config.to_dict()
    shortened_recipe("bengali-fast").preflight(config, load_tokenizer(tiny_teacher_dir), load_data(small_data))
    assert config.to_dict() == before
    with pytest.raises(ModelError, match=r"step 1 \(distil\) cannot run on this model: a cut student keeps 1..4 "
                                         r"layers, got 6"):  # the shipped recipe cuts 12 layers to 6
        load_recipe("bengali-fast").preflight(config, load_tokenizer(tiny_teacher_dir), load_data(small_data))


def test_a_step_without_apply_says_so():
    from dataclasses import dataclass

    from optimum_bengali.steps import Step

    @dataclass
    class Incomplete(Step):
        type_name = "incomplete"

    with pytest.raises(NotImplementedError, match="does not implement apply"):
        Incomplete().apply(None)


def test_byte_level_bpe_tokenizer_keeps_vowel_signs_and_is_accepted(data):
    from zoo import byte_bpe_tokenizer

    tok = byte_bpe_tokenizer(data.texts("train")[:2000])
    assert any("à" in p for p in tok.tokenize("আমি খুশি"))  # pieces look like mojibake ...
    check_bengali_tokenizer(tok)  # ... but decode back to the sentence: not refused


def test_bpe_vocabulary_trimming_keeps_tokenization_and_unseen_text(data):
    from transformers import RobertaConfig, RobertaForSequenceClassification

    from optimum_bengali.pruning.vocab import trim_vocabulary, used_ids
    from zoo import byte_bpe_tokenizer

    tok = byte_bpe_tokenizer(data.texts("train")[:2000])
    model = RobertaForSequenceClassification(RobertaConfig(
        vocab_size=len(tok), hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
        num_labels=6, pad_token_id=tok.pad_token_id)).eval()
    corpus = data.texts("train")[:100]
    keep = used_ids(tok, corpus)
    before = [tok.convert_ids_to_tokens(ids) for ids in tok(corpus)["input_ids"]]
    ref = predict_logits(model, tok, corpus[:16])
    model, new_tok = trim_vocabulary(model, tok, keep)
    assert len(keep) < len(new_tok) < len(tok)  # the merge parts and the byte alphabet are kept too
    assert [new_tok.convert_ids_to_tokens(ids) for ids in new_tok(corpus)["input_ids"]] == before
    np.testing.assert_allclose(predict_logits(model, new_tok, corpus[:16]), ref, atol=1e-5)
    unseen = data.texts("test")[0]
    assert new_tok.decode(new_tok(unseen)["input_ids"], skip_special_tokens=True) == unseen



def test_a_tokenizer_of_another_model_is_refused_before_training(tiny_teacher_dir, small_data, tmp_path, data,
                                                                  no_weight_loading):
    import shutil

    from zoo import unigram_tokenizer

    mixed = tmp_path / "mixed"
    shutil.copytree(tiny_teacher_dir, mixed)
    for f in mixed.glob("*token*"):
        f.unlink()
    (mixed / "vocab.txt").unlink(missing_ok=True)
    unigram_tokenizer(data.texts("train")[:2000], vocab_size=4000).save_pretrained(mixed)  # ids past 3,000 rows
    with pytest.raises(ModelError, match=r"the tokenizer gives id \d+ but the model's embedding has 3000 rows"):
        apply_recipe(mixed, "quant-dynamic-int8", small_data, tmp_path / "o", progress=False)
