"""Static-shape length buckets for OpenVINO classifiers.

With dynamic shapes, OpenVINO's CPU plugin redoes shape inference and buffer set-up whenever the input shape
changes, which with dynamic padding is nearly every call; for a small int8 model that costs as much as a third
of a batch-1 call. :class:`StaticLengthsModel` pads every batch up to the next of a few fixed lengths
(``static_lengths``, e.g. 16, 32, 48, 64, 96, 128) and runs a copy of the model compiled for exactly that
shape; a longer batch falls back to the dynamic model. Padding is appended on the right with attention
mask 0, so the logits are those of the unpadded batch up to float rounding.

``static_lengths: auto`` picks the lengths from the training sentences' token counts
(:func:`lengths_from_counts`: their quartiles, 90th and 99th percentiles and the longest, rounded up to a
multiple of 8), so most batches pad by a few tokens and every training-length batch has a static shape.

The lengths are stored with a saved folder (``openvino_runtime.json``) by the ``export`` and ``quantize``
steps, and :func:`optimum_bengali.load_model` applies them. ``OVModelForSequenceClassification.from_pretrained``
ignores them and runs the same IR with dynamic shapes.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

if TYPE_CHECKING:  # pragma: no cover
    from ..state import CompressionState

#: compiled static copies kept at most (least recently used dropped first); each costs model memory
MAX_STATIC_SHAPES = 24


def check_static_lengths(lengths: Union[Sequence[int], str, None]) -> Optional[List[int]]:
    """The lengths sorted and de-duplicated (``auto`` and None pass as they are); a one-line ``ValueError``
    for an empty list or a length < 1."""
    if lengths is None or lengths == "auto":
        return lengths  # type: ignore[return-value]
    values = sorted({int(v) for v in lengths})
    if not values or values[0] < 1:
        raise ValueError(f"static_lengths must be positive token counts, e.g. [16, 32, 64, 128]; got {list(lengths)}")
    return values


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


def use_static_lengths(state: "CompressionState", setting: Union[Sequence[int], str, None], max_length: int) -> None:
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


def _numpy(x: Any) -> Optional[np.ndarray]:
    if x is None:
        return None
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


class StaticLengthsModel:
    """An ``OVModelForSequenceClassification`` that runs each batch at the next of ``static_lengths`` tokens.

    One copy of the model is compiled (on first use) for each (batch size, length) seen, and at most
    ``max_shapes`` copies are kept (the least recently used is dropped, and compiled again if it comes back),
    so serving many batch sizes cannot grow memory without bound. Everything else (``config``, ``ov_config``,
    ``request`` of the dynamic model, ...) is the wrapped model's.
    """

    def __init__(self, model: Any, static_lengths: Sequence[int], pad_token_id: Optional[int] = None,
                 max_shapes: int = MAX_STATIC_SHAPES) -> None:
        if max_shapes < 1:
            raise ValueError(f"max_shapes must be at least 1 (compiled copies kept); got {max_shapes}")
        lengths = check_static_lengths(static_lengths)
        if not isinstance(lengths, list):
            raise ValueError(f"StaticLengthsModel needs token counts, e.g. [16, 32, 64, 128]; got {static_lengths!r} "
                             "(resolve 'auto' first: use_static_lengths or lengths_for_texts)")
        self.__dict__["_inner"] = model
        self.__dict__["static_lengths"] = lengths
        pad = pad_token_id if pad_token_id is not None else getattr(model.config, "pad_token_id", None)
        self.__dict__["_pad_id"] = int(pad or 0)
        self.__dict__["_requests"] = OrderedDict()
        self.__dict__["max_shapes"] = int(max_shapes)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["_inner"], name)

    def _request(self, batch: int, length: int) -> Any:
        key: Tuple[int, int] = (batch, length)
        request = self._requests.get(key)
        if request is not None:
            self._requests.move_to_end(key)
        else:
            import openvino as ov

            inner = self._inner
            model = inner.model.clone()
            model.reshape({port.get_any_name(): ov.PartialShape([batch, length]) for port in model.inputs})
            config = {k: str(v) for k, v in (getattr(inner, "ov_config", None) or {}).items()}
            request = ov.Core().compile_model(model, "CPU", config).create_infer_request()
            self._requests[key] = request
            while len(self._requests) > self.max_shapes:
                self._requests.popitem(last=False)
        return request

    def __call__(self, input_ids: Any, attention_mask: Any, token_type_ids: Any = None, **kwargs: Any) -> Any:
        from transformers.modeling_outputs import SequenceClassifierOutput

        ids, mask, types = _numpy(input_ids), _numpy(attention_mask), _numpy(token_type_ids)
        batch, n = ids.shape
        length = next((v for v in self.static_lengths if v >= n), None)
        if length is None:  # longer than every bucket: the dynamic model
            return self._inner(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
        padded: Dict[str, np.ndarray] = {"input_ids": np.full((batch, length), self._pad_id, dtype=ids.dtype),
                                         "attention_mask": np.zeros((batch, length), dtype=mask.dtype)}
        padded["input_ids"][:, :n] = ids
        padded["attention_mask"][:, :n] = mask
        if "token_type_ids" in self._inner.input_names:
            padded["token_type_ids"] = np.zeros((batch, length), dtype=ids.dtype)
            if types is not None:
                padded["token_type_ids"][:, :n] = types
        request = self._request(batch, length)
        request.infer({k: v for k, v in padded.items() if k in self._inner.input_names})
        logits = np.array(request.get_tensor("logits").data, copy=True)
        return SequenceClassifierOutput(logits=torch.from_numpy(logits))

    forward = __call__

    def compiled_shapes(self) -> List[Tuple[int, int]]:
        """The (batch size, length) shapes compiled and kept now."""
        return sorted(self._requests)
