"""Static-shape length buckets for OpenVINO classifiers.

With dynamic shapes, OpenVINO's CPU plugin redoes shape inference and buffer set-up whenever the input shape
changes, which with dynamic padding is nearly every call; for a small int8 model that costs as much as a third
of a batch-1 call. :class:`StaticLengthsModel` pads every batch up to the next of a few fixed lengths
(``static_lengths``, e.g. 16, 32, 48, 64, 96, 128) and runs a copy of the model compiled for exactly that
shape; a longer batch falls back to the dynamic model. Padding is appended on the right with attention
mask 0, so the logits are those of the unpadded batch up to float rounding.

Choosing the lengths (``static_lengths: auto``) is step logic: :mod:`optimum_bengali.export.static_lengths`.
This module holds only what a saved folder needs to run. The lengths are stored with a saved folder (``openvino_runtime.json``) by the ``export`` and ``quantize``
steps, and :func:`optimum_bengali.load_model` applies them. ``OVModelForSequenceClassification.from_pretrained``
ignores them and runs the same IR with dynamic shapes.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

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
                             "(resolve 'auto' first: optimum_bengali.export.static_lengths.lengths_for_texts)")
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
