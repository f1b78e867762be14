"""Loading labelled Bengali text: a folder of CSV/JSON(L) splits, a ``DatasetDict`` or a Hub id.

Every source ends up as a :class:`LabelledData`: a ``DatasetDict`` with a ``text`` column and an
integer ``label`` column, plus the label names in id order.
"""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Union

from datasets import Dataset, DatasetDict, load_dataset

from .errors import DataError

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
        return source
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

    if label_names is None:
        train_labels = raw["train"][label_column] if "train" in raw else next(iter(raw.values()))[label_column]
        if all(isinstance(v, int) for v in train_labels):
            label_names = [str(i) for i in range(max(train_labels) + 1)]
        else:
            label_names = sorted({str(v) for v in train_labels})
    label_names = [str(n) for n in label_names]
    to_id = {name: i for i, name in enumerate(label_names)}

    out = {}
    for split, ds in raw.items():
        values = ds[label_column]
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
    return LabelledData(DatasetDict(out), label_names)
