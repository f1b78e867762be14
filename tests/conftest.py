"""Shared fixtures: the real BEmoC data and tiny BERT classifiers built from configs (no downloads)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
if os.environ.get("MUTANT_UNDER_TEST"):  # a mutmut run: each mutant's tests run in a forked child, where torch's
    os.cpu_count = lambda: 1  # thread pool hangs once raised; "every core" (threads 0 or None) means one there

ROOT = Path(__file__).resolve().parents[1]
BEMOC = Path(os.environ.get("BEMOC_DIR", ROOT.parent / "shared" / "data" / "bemoc"))
#: The pieces of a 3,000-piece cased WordPiece tokenizer, one per line in id order, made once with
#: ``train_wordpiece_tokenizer(<BEmoC train texts>, vocab_size=3000)``. The trainer is not deterministic
#: (tokenizers breaks ties in hash order), so the tiny models are built over this saved list: every run, here
#: and in CI, tests the same models.
TINY_VOCAB = ROOT / "tests" / "fixtures" / "bemoc-wordpiece-3000.txt"


@pytest.fixture(scope="session")
def bemoc_dir() -> Path:
    if not (BEMOC / "train.csv").is_file():
        pytest.fail(f"BEmoC data not found at {BEMOC}; set BEMOC_DIR")
    return BEMOC


@pytest.fixture(scope="session")
def small_data(bemoc_dir, tmp_path_factory):
    """A folder with real BEmoC rows (300 train, 60 val, 60 test) so training tests stay fast."""
    import pandas as pd

    out = tmp_path_factory.mktemp("bemoc_small")
    for split, n in (("train", 300), ("val", 60), ("test", 60)):
        pd.read_csv(bemoc_dir / f"{split}.csv").head(n).to_csv(out / f"{split}.csv", index=False)
    return out


@pytest.fixture(scope="session")
def data(bemoc_dir):
    from optimum_bengali.data import load_data

    return load_data(bemoc_dir)


@pytest.fixture(scope="session")
def tiny_tokenizer():
    """The saved 3,000-piece WordPiece tokenizer of BEmoC train (the same on every run)."""
    from optimum_bengali.modeling import wordpiece_tokenizer

    return wordpiece_tokenizer(TINY_VOCAB.read_text(encoding="utf-8").splitlines())


@pytest.fixture(scope="session")
def tiny_teacher_dir(data, tiny_tokenizer, tmp_path_factory) -> Path:
    """A tiny BERT classifier (random weights, seed 42, the saved BEmoC WordPiece tokenizer) saved to a folder."""
    from optimum_bengali.modeling import build_from_config

    model, tok = build_from_config("bert-tiny-shape", data.texts("train"), data.label_names,
                                   tokenizer=tiny_tokenizer, num_hidden_layers=4)
    out = tmp_path_factory.mktemp("tiny_teacher")
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture()
def tiny_teacher(tiny_teacher_dir):
    from optimum_bengali import load_model, load_tokenizer

    return load_model(tiny_teacher_dir), load_tokenizer(tiny_teacher_dir)


@pytest.fixture(scope="session")
def varied_teacher_dir(data, tiny_tokenizer, tmp_path_factory) -> Path:
    """A tiny random BERT classifier whose logits differ from sentence to sentence (larger initial weights,
    classifier bias centred on the training sentences' mean logit): its predictions spread over every class,
    so a quantized model that outputs constants or zeros cannot pass for it. The default tiny teacher's logits
    are ~0.04 and predict one class for every sentence."""
    import torch

    from optimum_bengali.evaluation import predict_logits
    from optimum_bengali.modeling import build_from_config

    model, tok = build_from_config("bert-tiny-shape", data.texts("train"), data.label_names,
                                   tokenizer=tiny_tokenizer, seed=0, num_hidden_layers=4, initializer_range=0.2)
    with torch.no_grad():
        model.classifier.bias -= torch.tensor(predict_logits(model, tok, data.texts("train")[:300]).mean(0))
    out = tmp_path_factory.mktemp("varied_teacher")
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


#: what a shipped recipe is cut to for a tiny model: two training steps of batch 8, 16 sentences to calibrate
#: quantizers or to score pruning importance
SHORT_SETTINGS = {"max_steps": 2, "batch_size": 8, "num_samples": 16, "importance_samples": 16}


@pytest.fixture(scope="session")
def shortened_recipe():
    """``shortened_recipe(name, num_layers=2)``: the shipped recipe ``name`` with every step cut to
    :data:`SHORT_SETTINGS` and its distilled student ``num_layers`` deep (the tiny teachers have 4 layers)."""
    from optimum_bengali import Recipe, load_recipe

    def make(name: str, num_layers: int = 2) -> "Recipe":
        data = load_recipe(name).to_dict()
        for step in data["steps"]:
            step.update({k: v for k, v in SHORT_SETTINGS.items() if k in step})
            if step["type"] == "distil":
                step["num_layers"] = num_layers
        return Recipe.from_dict(data)

    return make
