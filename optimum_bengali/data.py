"""Loading labelled Bengali text: a folder of CSV/JSON(L) splits, a ``DatasetDict`` or a Hub id.

Every source ends up as a :class:`LabelledData`: a ``DatasetDict`` with a ``text`` column and an
integer ``label`` column, plus the label names in id order.
"""

from __future__ import annotations

import hashlib
import logging
from itertools import islice
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from datasets import ClassLabel, Dataset, DatasetDict, load_dataset

from .errors import DataError
from .normalization import normalize_bengali
from .paths import looks_like_local_path

SPLIT_ALIASES: Dict[str, Sequence[str]] = {
    "train": ("train", "training"),
    "validation": ("validation", "val", "valid", "dev"),
    "test": ("test", "testing"),
}
logger = logging.getLogger(__name__)
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


def split_files(folder: Path) -> Dict[str, Path]:
    """The file of each split in a data folder (``train.csv``, ``val.jsonl``, ...), by the split aliases."""
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
    return files


def check_utf8(path: Path) -> None:
    """A one-line :class:`DataError` naming the file when it is not UTF-8 text (UTF-16 with its byte-order
    mark, or a legacy code page such as cp1252), with the command that converts it."""
    raw = path.read_bytes()
    fix = f"convert it, e.g. iconv -f {{}} -t UTF-8 {path.name} > {path.stem}.utf8{path.suffix}"
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DataError(f"{path}: the file is UTF-16, not UTF-8; {fix.format('UTF-16')}")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise DataError(f"{path}: the file is not UTF-8 (byte 0x{raw[exc.start]:02x} on line {line}); "
                        f"{fix.format('CP1252')} (name its real encoding)") from None


def _check_header(path: Path, sep: str) -> None:
    """A CSV/TSV header whose columns repeat a name (pandas would rename the second ``text.1`` and the first
    would be used without a word), or a ``.csv`` file whose header is separated by tabs."""
    import csv

    with path.open(encoding="utf-8-sig", newline="") as f:
        header_line = f.readline()
    if sep == "," and "\t" in header_line and "," not in header_line:
        raise DataError(f"{path}: the header is separated by tabs, not commas ({header_line.strip()!r}); "
                        f"name the file {path.stem}.tsv")
    header = next(csv.reader([header_line], delimiter=sep), [])
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise DataError(f"{path}: the header names column {repeated[0]!r} {header.count(repeated[0])} times; "
                        "rename or drop the extra ones so that each column has one name")


def _read_file(path: Path) -> Dataset:
    """One split file through ``datasets``' own CSV/JSON builders; an empty CSV field stays the empty string
    (``keep_default_na=False``), not NaN. The file must be UTF-8 (a UTF-8 byte-order mark is fine) with a header
    that names each column once."""
    suffix = path.suffix.lower()
    kind = _EXTENSIONS[suffix]
    sep = "\t" if suffix == ".tsv" else ","
    options: Dict[str, Any] = {"sep": sep, "keep_default_na": False, "encoding": "utf-8-sig"} if kind == "csv" else {}
    from datasets.utils.logging import disable_progress_bar, enable_progress_bar, is_progress_bar_enabled

    check_utf8(path)
    if kind == "csv":
        _check_header(path, sep)
    if not _has_rows(path, kind):
        return Dataset.from_dict({})  # datasets' builders refuse a file with no rows; load_data says it is empty
    shown = is_progress_bar_enabled()
    disable_progress_bar()  # one bar per split file for a few thousand rows says nothing
    try:
        return load_dataset(kind, data_files=str(path), split="train", **options)
    except Exception as exc:  # the builders raise DatasetGenerationError, ArrowInvalid, ValueError, ...
        cause = exc.__cause__ or exc
        raise DataError(f"{path}: cannot be read as {suffix[1:].upper()}: {type(cause).__name__}: {cause}") from None
    finally:
        if shown:
            enable_progress_bar()


def _has_rows(path: Path, kind: str) -> bool:
    """Whether a split file holds at least one row (a CSV line after the header, a JSON record), read only as
    far as needed."""
    wanted = 2 if kind == "csv" else 1
    with path.open(encoding="utf-8-sig", errors="replace") as f:
        filled = (line for line in map(str.strip, f) if line and line not in ("[", "[]", "]"))
        return len(list(islice(filled, wanted))) == wanted


def _check_no_missing(ds: Dataset, columns: Sequence[str], where: str) -> None:
    """A one-line :class:`DataError` naming the first row (1-based, header not counted) whose value in one of
    ``columns`` is missing: a JSON record without the key, or a null, would otherwise be read as ``"None"``."""
    for column in columns:
        missing = [i for i, v in enumerate(ds[column]) if v is None]
        if missing:
            more = f" (and {len(missing) - 1} more rows)" if len(missing) > 1 else ""
            raise DataError(f"{where}: row {missing[0] + 1} has no {column!r} value (missing or null){more}; "
                            f"give every row its {column}")


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
    files: Dict[str, Path] = {}
    if isinstance(source, (DatasetDict, dict)):
        raw = _canonical_splits(source)
        where = "the given DatasetDict"
    else:
        path = Path(source)
        where = str(source)
        if path.is_dir():
            files = split_files(path)
            raw = DatasetDict({split: _read_file(file) for split, file in files.items()})
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
        if len(ds) == 0:
            raise DataError(f"{where}: split {split!r} is empty")
        for column in (text_column, label_column):
            if column not in ds.column_names:
                raise DataError(f"{where}: split {split!r} has no column {column!r} (columns: "
                                f"{', '.join(ds.column_names)}); pass text_column=/label_column= "
                                "(--text-column/--label-column) to name yours")

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
        in_split = str(files[split]) if split in files else f"{where}: split {split!r}"
        _check_no_missing(ds, (text_column, label_column), in_split)
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
        empty = [i for i, t in enumerate(texts) if not t.strip()]
        if empty:  # nothing to learn from or to score: dropped, and said
            logger.warning("%s: %d rows with empty %r dropped (row %s); the %s split keeps %d rows", in_split,
                           len(empty), text_column, ", ".join(str(i + 1) for i in empty[:5])
                           + (", ..." if len(empty) > 5 else ""), split, len(texts) - len(empty))
            dropped = set(empty)
            texts = [t for i, t in enumerate(texts) if i not in dropped]
            ids = [v for i, v in enumerate(ids) if i not in dropped]
            if not texts:
                raise DataError(f"{in_split}: every row's {text_column!r} is empty")
        out[split] = Dataset.from_dict({"text": texts, "label": ids})
    name = None if isinstance(source, (DatasetDict, dict)) else (
        Path(source).resolve().name if Path(source).is_dir() else str(source))
    return LabelledData(DatasetDict(out), label_names, normalization=normalization, name=name)
