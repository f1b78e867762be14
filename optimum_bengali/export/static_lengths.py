"""What a step's ``static_lengths`` setting does (``export``, ``quantize``, ``qat``): check it, resolve ``auto``
from the training sentences, and run the state's OpenVINO model through
:class:`~optimum_bengali.formats.openvino_static.StaticLengthsModel`.

``static_lengths: auto`` picks the lengths from the training sentences' token counts (:func:`lengths_from_counts`:
their quartiles, 90th and 99th percentiles and the longest, rounded up to a multiple of 8), so most batches pad
by a few tokens and every training-length batch has a static shape.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, List, Sequence, Union

import numpy as np

from ..formats.openvino_static import StaticLengthsModel, check_static_lengths
from ..steps import SettingError

if TYPE_CHECKING:  # pragma: no cover
    from ..state import CompressionState


def check_lengths_setting(setting: Union[Sequence[int], str, None]) -> None:
    """A step's ``check``: a bad ``static_lengths`` is a one-line :class:`SettingError` naming the field."""
    try:
        check_static_lengths(setting)
    except ValueError as err:
        raise SettingError("static_lengths", str(err)) from None


def lengths_from_counts(counts: Sequence[int], max_length: int, multiple: int = 8,
                        quantiles: Sequence[float] = (0.25, 0.5, 0.75, 0.9, 0.99)) -> List[int]:
    """Static lengths for sentences of these token counts: the ``quantiles`` of the counts and the longest
    count, each rounded up to a multiple of ``multiple`` and capped at ``max_length``."""
    if not len(counts):
        raise ValueError("static_lengths: auto needs sentences to count; the training split is empty")
    values = np.asarray(counts, dtype=float)
    picks = [float(np.quantile(values, q)) for q in quantiles] + [float(values.max())]
    return sorted({min(max_length, int(np.ceil(v / multiple)) * multiple) for v in picks})


def lengths_for_texts(tokenizer: Any, texts: Sequence[str], max_length: int) -> List[int]:
    """:func:`lengths_from_counts` of ``texts`` tokenized as the model sees them (truncated at ``max_length``)."""
    ids = tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]
    return lengths_from_counts([len(x) for x in ids], max_length)


def use_static_lengths(state: "CompressionState", setting: Union[Sequence[int], str, None],
                       max_length: int) -> None:
    """What a step's ``static_lengths`` setting does: resolve it (``auto``: from the training split's token
    counts; a list: checked and sorted) and run ``state.model`` through a :class:`StaticLengthsModel` of those
    lengths, noted in the step's report. None leaves the model as it is. The openvino format saves the
    lengths with the folder, and loading it applies them again."""
    if setting is None:
        return
    lengths = (lengths_for_texts(state.tokenizer, state.data.texts("train"), max_length) if setting == "auto"
               else check_static_lengths(setting))
    state.model = StaticLengthsModel(state.model, lengths, state.tokenizer.pad_token_id)
    state.note(static_lengths=state.model.static_lengths)
