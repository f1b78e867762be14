"""Distillation on unlabelled text the teacher labels (a transfer set).

Users usually have far more unlabelled in-domain text than labelled sentences. Each line of a UTF-8 text file
becomes a training row with the label :data:`~.losses.UNLABELLED` (-100): the cross-entropy skips it, and the soft
(teacher) term, the hidden states and the attention maps train on it. In black-box mode the teacher's logits of
these rows are cached with the others (:func:`.cache.cached_teacher_logits` keys on every training text).

>>> from optimum_bengali.distillation.transfer import read_transfer_texts, with_teacher_rows
>>> extra = read_transfer_texts("comments.txt", normalization="nfkc", max_rows=20000, seed=42)  # doctest: +SKIP
>>> data, counts = with_teacher_rows(data, extra)  # doctest: +SKIP
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

from datasets import Dataset, DatasetDict

from ..data import LabelledData
from ..normalization import normalize_bengali
from ..errors import DataError
from .losses import UNLABELLED


def read_transfer_texts(path: Union[str, Path], normalization: Optional[str], max_rows: Optional[int] = None,
                        seed: int = 42) -> List[str]:
    """The non-empty lines of a UTF-8 text file, normalized as the labelled data were (``"nfkc"``,
    ``"banglabert"`` or None), repeated lines once; ``max_rows`` draws that many of them (seeded), in file order."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read the transfer set {str(path)!r}: {exc}; give a UTF-8 text file, "
                        "one sentence per line") from None
    texts = [t.strip() for t in lines if t.strip()]
    if normalization:
        texts = [normalize_bengali(t, banglabert=normalization == "banglabert") for t in texts]
    texts = list(dict.fromkeys(texts))
    if not texts:
        raise DataError(f"the transfer set {str(path)!r} has no text; give one sentence per line")
    if max_rows is not None and max_rows < len(texts):
        keep = sorted(random.Random(seed).sample(range(len(texts)), max_rows))
        texts = [texts[i] for i in keep]
    return texts


def with_teacher_rows(data: LabelledData, texts: Sequence[str]) -> Tuple[LabelledData, Dict[str, int]]:
    """``data`` with ``texts`` appended to its train split as teacher-only rows (label :data:`UNLABELLED`); the
    other splits are unchanged. A text already in any split (a validation or test sentence above all) is left
    out. Returns the new data and the counts ``{"added": .., "left_out_in_a_split": ..}``."""
    in_splits = {t for split in data.splits for t in data.texts(split)}
    extra = [t for t in texts if t not in in_splits]
    counts = {"added": len(extra), "left_out_in_a_split": len(texts) - len(extra)}
    if not extra:
        return data, counts
    train = Dataset.from_dict({"text": data.texts("train") + extra,
                               "label": data.labels("train") + [UNLABELLED] * len(extra)})
    splits = DatasetDict({**{s: ds for s, ds in data.splits.items() if s != "train"}, "train": train})
    return LabelledData(splits, list(data.label_names), normalization=data.normalization, name=data.name), counts
