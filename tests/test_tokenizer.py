import pytest
from transformers import BertTokenizerFast

from optimum_bengali import ModelError
from optimum_bengali.modeling import (build_from_config, check_bengali_tokenizer, train_wordpiece_tokenizer, unk_rate,
                                      wordpiece_tokenizer)


@pytest.fixture(scope="module")
def tok(data):
    return train_wordpiece_tokenizer(data.texts("train"), vocab_size=8000)


def test_trained_tokenizer_keeps_bengali_words(tok, data):
    assert tok.tokenize("খুব") == ["খুব"]
    assert tok.tokenize("আমি খুব খুশি") == ["আমি", "খুব", "খুশি"]
    assert unk_rate(tok, data.texts("test")) < 0.01
    lengths = [len(ids) for ids in tok(data.texts("test"))["input_ids"]]
    assert 15 < sum(lengths) / len(lengths) < 80


def test_saved_tokenizer_reloads_cased(tok, tmp_path, data):
    tok.save_pretrained(tmp_path)
    again = BertTokenizerFast.from_pretrained(tmp_path)
    sample = data.texts("test")[:20]
    assert again(sample)["input_ids"] == tok(sample)["input_ids"]
    check_bengali_tokenizer(again)


def _pieces(tokenizer):
    """The vocabulary of ``tokenizer`` as a list of pieces in id order (what a ``vocab.txt`` holds)."""
    return [piece for piece, _ in sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])]


def test_lowercasing_tokenizer_is_rejected(tok):
    from tokenizers import normalizers

    lowercasing = wordpiece_tokenizer(_pieces(tok))  # a copy: the module's ``tok`` stays cased
    lowercasing.backend_tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=True)
    with pytest.raises(ModelError, match="deletes Bengali vowel signs"):
        check_bengali_tokenizer(lowercasing)


def test_saved_vocabulary_gives_the_trained_tokenizer_back(tok, data):
    again = wordpiece_tokenizer(_pieces(tok))
    texts = data.texts("train") + data.texts("validation")
    assert again(texts)["input_ids"] == tok(texts)["input_ids"]
    assert again.pad_token_id == tok.pad_token_id and again.model_max_length == tok.model_max_length


def test_wordpiece_vocabulary_without_special_pieces_is_refused(tok):
    with pytest.raises(ModelError, match=r"lacks the special pieces \['\[MASK\]'\]"):
        wordpiece_tokenizer([p for p in _pieces(tok) if p != "[MASK]"])


def test_model_built_from_a_saved_vocabulary_is_the_same_on_every_build(tiny_tokenizer, data):
    def build(seed):
        model, tok = build_from_config("bert-tiny-shape", [], data.label_names, tokenizer=tiny_tokenizer, seed=seed)
        assert tok is tiny_tokenizer
        return model.state_dict()

    first, second, other = build(7), build(7), build(8)
    assert all(first[k].equal(second[k]) for k in first)
    assert not all(first[k].equal(other[k]) for k in first)
