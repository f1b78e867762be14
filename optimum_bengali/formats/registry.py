"""The one registry of on-disk formats: a format's name maps to how to recognise and load its folders.

Each format lives in one module of this package and registers itself with :func:`register_format`; the
package imports every such module, so adding a format is one module plus one import line in
``formats/__init__.py``. Nothing outside this package knows every format.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Optional


@dataclass(frozen=True)
class ModelFormat:
    """How a saved classifier folder of one kind is recognised and loaded.

    ``marker``: a file only this format writes (None for plain transformers folders, the fallback);
    ``load(folder, **kwargs)`` returns the model; ``save(model, folder)`` writes it (the pipeline calls it
    once, at the end of a recipe; the tokenizer is saved beside it); ``loader`` names the class a user loads
    it with (for cards); ``trainable``: the loaded model is a PyTorch model that training steps can update
    (its parameter counts are those of the model the last step trained); ``loader_kwargs``: what the card's
    ``from_pretrained`` call adds (e.g. ``trust_remote_code=True`` for folders that carry their modeling file);
    ``detect(folder)``: a further check where the marker is a file other formats write too (a torchao folder is
    a transformers folder whose ``config.json`` names torchao as its quantization method).
    """

    name: str
    marker: Optional[str]
    load: Callable[..., Any]
    save: Callable[[Any, Path], Any]
    loader: str
    trainable: bool = False
    loader_kwargs: str = ""
    detect: Optional[Callable[[Path], bool]] = None

    def matches(self, folder: Path) -> bool:
        if self.marker is None or not (folder / self.marker).is_file():
            return False
        return self.detect is None or self.detect(folder)


FORMATS: Dict[str, ModelFormat] = {}


def register_format(fmt: ModelFormat) -> ModelFormat:
    """Add ``fmt`` to the registry (one name, one format)."""
    if fmt.name in FORMATS and FORMATS[fmt.name] != fmt:
        raise ValueError(f"model format {fmt.name!r} is registered twice")
    FORMATS[fmt.name] = fmt
    return fmt
