"""Bengali text normalization: Unicode NFKC (and BanglaBERT's csebuetnlp normalizer), applied to the data
and written into the saved tokenizer so that serving sees the text training saw.

Bengali vowel signs are combining marks: nothing here lowercases or strips accents, which would delete them.
"""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path
from typing import Any, List, Optional, Union

from .errors import DataError


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
