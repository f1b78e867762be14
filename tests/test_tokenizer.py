import pytest
from transformers import BertTokenizerFast

from optimum_bengali import ModelError
from optimum_bengali.modeling import check_bengali_tokenizer, train_wordpiece_tokenizer, unk_rate


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


def test_lowercasing_tokenizer_is_rejected(tok, tmp_path):
    from tokenizers import normalizers

    backend = tok.backend_tokenizer
    backend.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=True)
    with pytest.raises(ModelError, match="deletes Bengali vowel signs"):
        check_bengali_tokenizer(tok)
