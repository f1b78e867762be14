import json

import pandas as pd
import pytest
from datasets import Dataset, DatasetDict

from optimum_bengali import DataError, load_data
from optimum_bengali.normalization import normalize_bengali


def test_bemoc_folder_loads_with_all_rows(data):
    assert {s: len(data.splits[s]) for s in data.splits} == {"train": 4994, "validation": 624, "test": 625}
    assert data.label_names == ["anger", "disgust", "fear", "joy", "sadness", "surprise"]
    assert set(data.labels("test")) == set(range(6))
    assert data.texts("train")[0].startswith("মেডিকেলে")


def _write(tmp_path, frames, ext="csv"):
    for split, df in frames.items():
        if ext == "csv":
            df.to_csv(tmp_path / f"{split}.csv", index=False)
        else:
            (tmp_path / f"{split}.jsonl").write_text(
                "\n".join(json.dumps(r, ensure_ascii=False) for r in df.to_dict("records")), encoding="utf-8")
    return tmp_path


def frames(**overrides):
    base = pd.DataFrame({"text": ["আমি খুব খুশি", "খুব খারাপ লাগছে"], "label": ["joy", "sadness"]})
    out = {"train": base, "val": base, "test": base}
    out.update(overrides)
    return out


def test_jsonl_folder_and_custom_columns(tmp_path):
    renamed = {k: v.rename(columns={"text": "sentence", "label": "emotion"}) for k, v in frames().items()}
    loaded = load_data(_write(tmp_path, renamed, "jsonl"), text_column="sentence", label_column="emotion")
    assert loaded.label_names == ["joy", "sadness"] and loaded.labels("test") == [0, 1]


def test_csv_and_json_keep_na_looking_texts_and_drop_empty_ones_with_a_count(tmp_path, caplog):
    """Words pandas reads as missing ("NA", "null") stay text; empty texts (nothing to learn from or to score)
    are dropped with a warning naming the file, the count and the rows; a JSON array of records loads."""
    (tmp_path / "train.csv").write_text('text,label\n"",joy\nNA,sadness\nnull,joy\n"  ",sadness\n',
                                        encoding="utf-8")
    (tmp_path / "val.tsv").write_text("text\tlabel\nNA\tjoy\n", encoding="utf-8")
    (tmp_path / "test.json").write_text('[{"text": "খুব খুশি", "label": "joy"}, {"text": "", "label": "sadness"}]',
                                        encoding="utf-8")
    with caplog.at_level("WARNING"):
        loaded = load_data(tmp_path)
    assert loaded.texts("train") == ["NA", "null"] and loaded.labels("train") == [1, 0]
    assert loaded.texts("validation") == ["NA"]
    assert loaded.texts("test") == ["খুব খুশি"] and loaded.labels("test") == [0]
    assert f"{tmp_path / 'train.csv'}: 2 rows with empty 'text' dropped (row 1, 4); the train split keeps 2 rows" \
        in caplog.text
    assert f"{tmp_path / 'test.json'}: 1 rows with empty 'text' dropped (row 2)" in caplog.text


def test_a_missing_or_null_label_is_one_line_naming_the_row(tmp_path):
    (tmp_path / "train.jsonl").write_text('{"text": "খুশি", "label": "joy"}\n{"text": "খারাপ", "label": null}\n',
                                          encoding="utf-8")
    for split in ("val", "test"):
        (tmp_path / f"{split}.csv").write_text("text,label\nখুশি,joy\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"train.jsonl: row 2 has no 'label' value \(missing or null\)"):
        load_data(tmp_path)


def test_a_utf8_byte_order_mark_is_read_as_utf8(tmp_path):
    for split in ("train", "val", "test"):
        (tmp_path / f"{split}.csv").write_bytes("text,label\nখুশি,joy\n".encode("utf-8-sig"))
    assert load_data(tmp_path).texts("test") == ["খুশি"]


def test_unreadable_file_is_one_line(tmp_path):
    _write(tmp_path, frames())
    (tmp_path / "val.csv").write_text('text,label\n"never closed,joy\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"val.csv: cannot be read as CSV: ParserError"):
        load_data(tmp_path)


def test_missing_split(tmp_path):
    f = frames()
    del f["val"]
    with pytest.raises(DataError, match="missing split 'validation'"):
        load_data(_write(tmp_path, f))


def test_wrong_label_column_says_what_to_do(bemoc_dir):
    with pytest.raises(DataError) as err:
        load_data(bemoc_dir, label_column="emotion")
    assert "no column 'emotion'" in str(err.value) and "label_column" in str(err.value)


def test_empty_split(tmp_path):
    with pytest.raises(DataError, match="split 'test' is empty"):
        load_data(_write(tmp_path, frames(test=pd.DataFrame({"text": [], "label": []}))))


def test_labels_the_model_does_not_know(tmp_path):
    odd = pd.DataFrame({"text": ["ভয় পেয়েছি"], "label": ["fear"]})
    with pytest.raises(DataError, match="labels the model does not know: fear"):
        load_data(_write(tmp_path, frames(test=odd)))
    with pytest.raises(DataError, match="does not know: joy"):
        load_data(_write(tmp_path, frames()), label_names=["sadness", "anger"])


def test_datasetdict_source_and_model_label_order():
    ds = Dataset.from_dict({"text": ["ক", "খ"], "label": ["joy", "anger"]})
    loaded = load_data(DatasetDict(train=ds, validation=ds, test=ds), label_names=["joy", "anger"])
    assert loaded.labels("train") == [0, 1]


def test_not_a_folder_or_hub_id(tmp_path):
    with pytest.raises(DataError, match="not a single file"):
        path = tmp_path / "x.csv"
        path.write_text("text,label\n")
        load_data(path)


def test_nfkc_gives_one_encoding_for_the_same_letter():
    precomposed, decomposed = "\u09dc", "\u09a1\u09bc"  # ড় written two ways
    assert precomposed != decomposed
    assert normalize_bengali(precomposed) == normalize_bengali(decomposed)
    assert normalize_bengali("খুব") == "খুব"


def test_banglabert_normalizer():
    pytest.importorskip("normalizer")
    assert normalize_bengali("আমি  খুব খুশি", banglabert=True).split() == ["আমি", "খুব", "খুশি"]


@pytest.mark.slow
def test_saved_tokenizer_normalizes_raw_text_like_training(tiny_teacher_dir, bemoc_dir, small_data, tmp_path):
    """Raw text at serving time gets the tokens and logits of the NFKC text the model was trained on."""
    import json
    import unicodedata

    import numpy as np
    import pandas as pd

    from optimum_bengali import apply_recipe
    from optimum_bengali.evaluation import predict_logits
    from optimum_bengali import load_model, load_tokenizer

    out = tmp_path / "out"
    apply_recipe(tiny_teacher_dir, "quant-dynamic-int8", small_data, out, progress=False, measure_memory=False,
                 measure_baseline=False)
    raw = [str(t) for t in pd.read_csv(bemoc_dir / "test.csv")["text"]]
    nfkc = [unicodedata.normalize("NFKC", t) for t in raw]
    changed = [i for i, (a, b) in enumerate(zip(raw, nfkc)) if a != b]
    assert len(changed) > 400  # NFKC changes most BEmoC sentences (it decomposes য়, ড়, ঢ়)
    before = load_tokenizer(tiny_teacher_dir)  # a WordPiece tokenizer that does not normalize
    assert sum(before(raw[i])["input_ids"] != before(nfkc[i])["input_ids"] for i in changed) > 100
    tok = load_tokenizer(out)
    assert all(tok(raw[i])["input_ids"] == tok(nfkc[i])["input_ids"] for i in changed)
    model = load_model(out)
    sample = [raw[i] for i in changed[:32]]
    np.testing.assert_array_equal(predict_logits(model, tok, sample),
                                  predict_logits(model, tok, [nfkc[i] for i in changed[:32]]))
    assert json.loads((out / "normalization.json").read_text())["normalization"] == "nfkc"
    report = json.loads((out / "compression_report.json").read_text())
    assert report["normalization"] == {"training": "nfkc", "in_saved_tokenizer": True}
    assert "applies Unicode NFKC itself" in (out / "README.md").read_text(encoding="utf-8")


def test_package_loader_applies_the_recorded_banglabert_normalizer(tiny_teacher_dir, tmp_path):
    """What cannot live in tokenizer.json (the csebuetnlp normalizer) is applied by the package's loader."""
    import shutil

    from transformers import AutoTokenizer

    from optimum_bengali.normalization import normalize_bengali, save_normalization
    from optimum_bengali.modeling import load_tokenizer

    folder = tmp_path / "model"
    shutil.copytree(tiny_teacher_dir, folder)
    save_normalization(folder, "banglabert")
    raw = ["আমি আজ খুব খুশি৷", "সে – ভালো আছে৷"]  # ৷ (a currency sign) for the danda ।, an en dash
    normalized = [normalize_bengali(t, banglabert=True) for t in raw]
    plain = AutoTokenizer.from_pretrained(str(folder))  # NFKC only
    assert plain(raw)["input_ids"] != plain(normalized)["input_ids"]  # the normalizer changes these tokens
    tok = load_tokenizer(folder)
    assert tok(raw)["input_ids"] == plain(normalized)["input_ids"]
    assert tok(raw[0])["input_ids"] == plain(normalized[0])["input_ids"]
    assert tok.tokenize(raw[1]) == plain.tokenize(normalized[1])
    assert load_tokenizer(folder, apply_normalization=False)(raw)["input_ids"] == plain(raw)["input_ids"]
    tok.save_pretrained(tmp_path / "again")  # still saves as its own class
    assert type(AutoTokenizer.from_pretrained(str(tmp_path / "again"))).__name__ == type(plain).__name__


@pytest.mark.parametrize("missing,expected", [([1], "row 2 has no 'text' value (missing or null); give"),
                                              ([1, 3], "row 2 has no 'text' value (missing or null) (and 1 more rows)"),
                                              ([1, 2, 3], "(and 2 more rows)")])
def test_missing_texts_are_counted_past_the_first(tmp_path, missing, expected):
    rows = [{"text": "খুশি", "label": "joy"} for _ in range(4)]
    for i in missing:
        del rows[i]["text"]
    (tmp_path / "train.jsonl").write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    for split in ("val", "test"):
        (tmp_path / f"{split}.csv").write_text("text,label\nখুশি,joy\n", encoding="utf-8")
    with pytest.raises(DataError) as err:
        load_data(tmp_path)
    assert expected in str(err.value)


def test_big_endian_utf16_is_named_too(tmp_path):
    for split in ("train", "val", "test"):
        (tmp_path / f"{split}.csv").write_text("text,label\nখুশি,joy\n", encoding="utf-8")
    (tmp_path / "test.csv").write_bytes("text,label\nখুশি,joy\n".encode("utf-16-be").join([b"\xfe\xff", b""]))
    with pytest.raises(DataError, match=r"test.csv: the file is UTF-16, not UTF-8"):
        load_data(tmp_path)
