"""Loading labelled Bengali text: a folder of CSV/JSON(L) splits, a ``DatasetDict`` or a Hub id.

Every source ends up as a :class:`LabelledData`: a ``DatasetDict`` with a ``text`` column and an
integer ``label`` column, plus the label names in id order.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from datasets import ClassLabel, Dataset, DatasetDict, load_dataset

from .errors import DataError
from .paths import looks_like_local_path

SPLIT_ALIASES: Dict[str, Sequence[str]] = {
    "train": ("train", "training"),
    "validation": ("validation", "val", "valid", "dev"),
    "test": ("test", "testing"),
}
_EXTENSIONS = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json"}


@dataclass
class LabelledData:
    """Splits with ``text`` and integer ``label`` columns, and the label names in id order."""

    splits: DatasetDict
    label_names: List[str]
    normalization: Optional[str] = "nfkc"  # what the texts went through: "nfkc", "banglabert" or None
    name: Optional[str] = None  # the data set's name for reports and cards: a Hub id or a folder's name

    @property
    def id2label(self) -> Dict[int, str]:
        return dict(enumerate(self.label_names))

    @property
    def label2id(self) -> Dict[str, int]:
        return {name: i for i, name in enumerate(self.label_names)}

    def texts(self, split: str) -> List[str]:
        return list(self.splits[split]["text"])

    def labels(self, split: str) -> List[int]:
        return list(self.splits[split]["label"])

    def aligned_to(self, label_names: Sequence[str]) -> "LabelledData":
        """The same data with label ids following ``label_names`` (a model's ``id2label`` order), matched by
        name. Raise :class:`DataError` listing both sides when the names differ."""
        names = [str(n) for n in label_names]
        if names == self.label_names:
            return self
        if sorted(names) != sorted(self.label_names):
            raise DataError(f"the data's labels ({', '.join(self.label_names)}) are not the model's "
                            f"({', '.join(names)}); rename them to match, or fine-tune on this data first")
        new_id = {old: names.index(name) for old, name in enumerate(self.label_names)}
        splits = DatasetDict({s: Dataset.from_dict({"text": list(ds["text"]),
                                                    "label": [new_id[v] for v in ds["label"]]})
                              for s, ds in self.splits.items()})
        return LabelledData(splits, names, normalization=self.normalization, name=self.name)

    def fingerprint(self, split: str) -> str:
        """A hash of a split's texts and labels (used to key caches)."""
        h = hashlib.sha256()
        for text, label in zip(self.splits[split]["text"], self.splits[split]["label"]):
            h.update(text.encode("utf-8"))
            h.update(b"\x00%d\x01" % label)
        return h.hexdigest()[:16]


def normalize_bengali(text: str, banglabert: bool = False) -> str:
    """Unicode NFKC; with ``banglabert=True`` also the csebuetnlp normalizer BanglaBERT expects."""
    text = unicodedata.normalize("NFKC", text)
    if banglabert:
        try:
            from normalizer import normalize  # package csebuetnlp-normalizer
        except ImportError as exc:  # pragma: no cover - depends on the extra
            raise DataError("normalization 'banglabert' needs the csebuetnlp normalizer: "
                            "pip install 'optimum-bengali[bangla]'") from exc
        text = normalize(text)
    return text


#: file in an output folder that records the text normalization the model was trained and measured with
NORMALIZATION_FILE = "normalization.json"


def save_normalization(folder: Union[str, Path], normalization: Optional[str]) -> bool:
    """Make the saved tokenizer in ``folder`` normalize text as training did, and record the choice.

    NFKC is prepended to the normalizer in ``tokenizer.json``, so that raw text sent at serving time gets
    the tokens the model was trained and measured on, with any loader (WordPiece tokenizers do not apply
    NFKC themselves). The csebuetnlp normalizer of ``"banglabert"`` cannot live in a tokenizer: it is
    recorded in ``normalization.json`` and shown in the model card's usage example
    (``normalize_bengali(text, banglabert=True)`` before the tokenizer).
    Returns True when the tokenizer now normalizes (False: no ``tokenizer.json``, or no normalization).
    """
    from tokenizers import Tokenizer, normalizers

    folder = Path(folder)
    (folder / NORMALIZATION_FILE).write_text(json.dumps({
        "normalization": normalization,
        "in_tokenizer": "NFKC" if normalization else None,
        "apply_before_tokenizer": "csebuetnlp-normalizer" if normalization == "banglabert" else None,
    }, indent=2), encoding="utf-8")
    path = folder / "tokenizer.json"
    if not normalization or not path.is_file():
        return False
    tok = Tokenizer.from_file(str(path))
    current = tok.normalizer
    if current is not None and '"type":"NFKC"' in current.__getstate__().decode("utf-8", "ignore"):
        return True  # already there (e.g. a model saved by this package before)
    config_path = folder / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8")) if config_path.is_file() else {}
    if config.get("tokenizer_class") not in (None, "PreTrainedTokenizerFast", "TokenizersBackend"):
        # model-specific classes (BertTokenizer in transformers 5) rebuild their normalizer in __init__ and
        # would drop the one in tokenizer.json; the generic fast class loads the file's pipeline as it is
        from transformers import AutoTokenizer

        config["model_input_names"] = list(AutoTokenizer.from_pretrained(str(folder)).model_input_names)
        config["tokenizer_class"] = "PreTrainedTokenizerFast"
        config_path.write_text(json.dumps(config, indent=2, ensure_ascii=False), encoding="utf-8")
    tok.normalizer = normalizers.NFKC() if current is None else normalizers.Sequence([normalizers.NFKC(), current])
    tok.save(str(path))
    return True


def _banglabert_normalized(text: Any) -> Any:
    if isinstance(text, str):
        return normalize_bengali(text, banglabert=True)
    if isinstance(text, (list, tuple)) and all(isinstance(t, str) for t in text):
        return [normalize_bengali(t, banglabert=True) for t in text]
    return text  # None, pre-split words: left as they are


def apply_saved_normalization(tokenizer: Any, folder: Union[str, Path]) -> Any:
    """Make ``tokenizer`` apply, to every text it is called with, the normalization recorded in ``folder``'s
    ``normalization.json`` that cannot live inside a tokenizer (the csebuetnlp normalizer of
    ``normalization="banglabert"``). NFKC is in the tokenizer already. Returns the same object."""
    path = Path(folder) / NORMALIZATION_FILE
    if not path.is_file():
        return tokenizer
    record = json.loads(path.read_text(encoding="utf-8"))
    if record.get("apply_before_tokenizer") != "csebuetnlp-normalizer" or getattr(
            tokenizer, "applies_banglabert_normalizer", False):
        return tokenizer
    normalize_bengali("", banglabert=True)  # fail now, with the install hint, if the normalizer is missing
    base = type(tokenizer)

    class BanglaNormalizing(base):  # type: ignore[misc, valid-type]
        applies_banglabert_normalizer = True

        def __call__(self, text: Any = None, text_pair: Any = None, *args: Any, **kwargs: Any) -> Any:
            return super().__call__(_banglabert_normalized(text), _banglabert_normalized(text_pair), *args, **kwargs)

        def tokenize(self, text: str, *args: Any, **kwargs: Any) -> List[str]:
            return super().tokenize(_banglabert_normalized(text), *args, **kwargs)

        def encode(self, text: Any, text_pair: Any = None, *args: Any, **kwargs: Any) -> Any:
            return super().encode(_banglabert_normalized(text), _banglabert_normalized(text_pair), *args, **kwargs)

    BanglaNormalizing.__name__ = BanglaNormalizing.__qualname__ = base.__name__  # saves as the base class
    tokenizer.__class__ = BanglaNormalizing
    return tokenizer


def _read_folder(folder: Path) -> DatasetDict:
    files: Dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in _EXTENSIONS:
            continue
        for split, aliases in SPLIT_ALIASES.items():
            if path.stem.lower() in aliases and split not in files:
                files[split] = path
    if not files:
        raise DataError(f"{folder}: no train/val/test files found; expected e.g. train.csv, val.csv, "
                        "test.csv (or .tsv, .json, .jsonl)")
    import pandas as pd

    out = {}
    for split, path in files.items():
        suffix = path.suffix.lower()
        try:
            if _EXTENSIONS[suffix] == "csv":
                frame = pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",", keep_default_na=False)
            else:
                frame = pd.read_json(path, lines=suffix == ".jsonl")
        except (ValueError, pd.errors.ParserError) as exc:
            raise DataError(f"{path}: cannot be read as {suffix[1:].upper()}: {exc}") from None
        out[split] = Dataset.from_pandas(frame, preserve_index=False)
    return DatasetDict(out)


def _canonical_splits(dd: Mapping[str, Dataset]) -> DatasetDict:
    out = {}
    for split, aliases in SPLIT_ALIASES.items():
        for name in aliases:
            if name in dd:
                out[split] = dd[name]
                break
    return DatasetDict(out)


def load_data(
    source: Union[str, Path, DatasetDict, LabelledData],
    text_column: str = "text",
    label_column: str = "label",
    label_names: Optional[Sequence[str]] = None,
    required_splits: Sequence[str] = ("train", "validation", "test"),
    normalization: Optional[str] = "nfkc",
) -> LabelledData:
    """Load labelled text from a folder, a ``DatasetDict`` or a Hub id.

    Args:
        source: folder of ``train``/``val``/``test`` CSV, TSV, JSON or JSONL files; a ``DatasetDict``;
            or a Hugging Face Hub data set id.
        text_column, label_column: column names in the source.
        label_names: the label names in id order (e.g. from a model's ``id2label``). If omitted they are
            the sorted distinct training labels (integer labels are kept as they are).
        required_splits: splits that must be present and non-empty.
        normalization: ``"nfkc"`` (default), ``"banglabert"`` (NFKC + csebuetnlp normalizer) or ``None``.
    """
    if isinstance(source, LabelledData):
        return source.aligned_to(label_names) if label_names is not None else source
    if isinstance(source, (DatasetDict, dict)):
        raw = _canonical_splits(source)
        where = "the given DatasetDict"
    else:
        path = Path(source)
        where = str(source)
        if path.is_dir():
            raw = _canonical_splits(_read_folder(path))
        elif path.exists():
            raise DataError(f"{source}: give a folder holding train/val/test files, not a single file")
        elif looks_like_local_path(str(source)):
            raise DataError(f"data {str(source)!r} not found: no such folder (and not a Hub data set id, owner/name)")
        else:
            try:
                raw = _canonical_splits(load_dataset(str(source)))
            except Exception as exc:
                raise DataError(f"{source}: not a local folder, and loading it from the Hub failed "
                                f"({type(exc).__name__}: {exc})") from None
    for split in required_splits:
        if split not in raw:
            raise DataError(f"{where}: missing split {split!r} (found: {', '.join(raw) or 'none'}); "
                            f"name files like {'/'.join(SPLIT_ALIASES[split][:2])}.csv")
    for split, ds in raw.items():
        for column in (text_column, label_column):
            if column not in ds.column_names:
                raise DataError(f"{where}: split {split!r} has no column {column!r} (columns: "
                                f"{', '.join(ds.column_names)}); pass text_column=/label_column= "
                                "(--text-column/--label-column) to name yours")
        if len(ds) == 0:
            raise DataError(f"{where}: split {split!r} is empty")

    first = raw["train"] if "train" in raw else next(iter(raw.values()))
    feature = first.features[label_column]
    class_names = list(feature.names) if isinstance(feature, ClassLabel) else None
    if label_names is None:
        train_labels = first[label_column]
        if class_names:
            label_names = class_names  # a datasets.ClassLabel: its names, in its order
        elif all(isinstance(v, int) and not isinstance(v, bool) for v in train_labels):
            label_names = [str(i) for i in range(max(train_labels) + 1)]
        else:
            distinct = {str(v) for v in train_labels}
            # digit strings sort as numbers ("2" before "10"), other names alphabetically
            label_names = sorted(distinct, key=int) if all(v.isdigit() for v in distinct) else sorted(distinct)
    label_names = [str(n) for n in label_names]
    to_id = {name: i for i, name in enumerate(label_names)}

    out = {}
    for split, ds in raw.items():
        values = ds[label_column]
        split_feature = ds.features[label_column]
        if isinstance(split_feature, ClassLabel):  # integer ids of the data set's own names: map by name
            values = [split_feature.int2str(v) for v in values]
        ids = []
        unknown = set()
        for v in values:
            if isinstance(v, int) and not isinstance(v, bool) and str(v) not in to_id and 0 <= v < len(label_names):
                ids.append(v)
            elif str(v) in to_id:
                ids.append(to_id[str(v)])
            else:
                unknown.add(str(v))
        if unknown:
            raise DataError(f"{where}: split {split!r} has labels the model does not know: "
                            f"{', '.join(sorted(unknown)[:10])}; known labels: {', '.join(label_names)}")
        texts = [normalize_bengali(str(t), normalization == "banglabert") if normalization else str(t)
                 for t in ds[text_column]]
        out[split] = Dataset.from_dict({"text": texts, "label": ids})
    name = None if isinstance(source, (DatasetDict, dict)) else (
        Path(source).resolve().name if Path(source).is_dir() else str(source))
    return LabelledData(DatasetDict(out), label_names, normalization=normalization, name=name)
