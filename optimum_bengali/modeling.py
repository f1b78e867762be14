"""Model configs and tokenizers (checked, with one-line errors), parameter counts, and small classifiers built
from a config. Saved folders of every format are loaded by :mod:`optimum_bengali.formats`."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import torch
from transformers import (AutoConfig, AutoTokenizer, BertConfig, BertForSequenceClassification, BertTokenizerFast,
                          PreTrainedTokenizerBase)

from .errors import ModelError
from .paths import looks_like_local_path

logger = logging.getLogger(__name__)

#: Architectures that ``--from-config`` can build (shape only, random weights).
CONFIG_SHAPES: Dict[str, Dict[str, int]] = {
    # the shape of bert-base-multilingual-cased: 177.9 M parameters with a 6-label head
    "bert-base-multilingual-cased-shape": dict(vocab_size=119547, hidden_size=768, num_hidden_layers=12,
                                               num_attention_heads=12, intermediate_size=3072),
    "bert-small-shape": dict(vocab_size=0, hidden_size=256, num_hidden_layers=4, num_attention_heads=4,
                             intermediate_size=1024),
    "bert-tiny-shape": dict(vocab_size=0, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                            intermediate_size=128),
    # BERT-base depth at BERT-small width: trains from scratch on a CPU in minutes, and every shipped recipe
    # (12 -> 6/4 layer students) applies to it
    "bert-12l-h256-shape": dict(vocab_size=0, hidden_size=256, num_hidden_layers=12, num_attention_heads=4,
                                intermediate_size=1024),
    # BERT-base depth (12 layers) at toy width: recipes that cut 12 -> 6/4/3 layers run in seconds
    "bert-tiny-12l-shape": dict(vocab_size=0, hidden_size=64, num_hidden_layers=12, num_attention_heads=2,
                                intermediate_size=128),
}



MIN_VOCABULARY = 100  # fewer pieces than this is no tokenizer at all


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def load_config(model: Union[str, Path], trust_remote_code: bool = False) -> Any:
    """The model's config, or a one-line :class:`ModelError` that says what is wrong with ``model`` and what
    to do: a folder that does not exist, a file, a folder without ``config.json`` or weights, a string
    that is not a Hub id, or a Hub id that cannot be fetched. Reads no weights (the format's loader checks
    them: :mod:`optimum_bengali.formats`). Code in the folder (a config's ``auto_map``) is never run unless
    ``trust_remote_code`` is True."""
    name = str(model)
    path = Path(name).expanduser()
    if path.is_file():
        raise ModelError(f"model {name!r} is a file; give the folder that holds config.json and the weights")
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelError(f"model folder {name!r} has no config.json; give a folder written by "
                             "save_pretrained (or by this package)")
    else:
        from huggingface_hub.utils import HFValidationError, validate_repo_id

        looks_local = looks_like_local_path(name)
        try:
            validate_repo_id(name)
        except HFValidationError:
            looks_local = True
        if looks_local:
            raise ModelError(f"model {name!r} not found: no such folder, and it is not a Hub id (owner/name)")
    try:
        config = AutoConfig.from_pretrained(name, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        if "trust_remote_code" in str(exc) and not trust_remote_code:
            raise ModelError(f"{name!r} needs its own code (an auto_map in config.json) to load; this package "
                             "does not run code from a model folder unless you pass --trust-remote-code "
                             "(trust_remote_code=True) for a folder you trust") from None
        if path.is_dir():
            raise ModelError(f"cannot read the config of {name!r}: {_first_line(exc)}") from None
        raise ModelError(f"cannot fetch {name!r} from the Hugging Face Hub (no such model, no access, or no "
                         "connection and not in the local cache); check the id and HF_TOKEN, or give a local "
                         "folder") from None
    if trust_remote_code and getattr(config, "auto_map", None):
        logger.warning("trust_remote_code: Python code from %s may run (its config's auto_map names %s)", name,
                       ", ".join(sorted(set(str(v) for v in config.auto_map.values()))))
    return config


def check_sequence_classifier(config: Any, where: str) -> None:
    """Raise :class:`ModelError` unless ``config`` describes a sequence classifier."""
    archs = getattr(config, "architectures", None) or []
    if archs and not any(a.endswith("ForSequenceClassification") for a in archs):
        raise ModelError(f"{where} is a {', '.join(archs)}, not a sequence classifier; fine-tune one first "
                         "(`optimum-bengali finetune --model ...`) or give an AutoModelForSequenceClassification")


def load_tokenizer(model: Union[str, Path], apply_normalization: bool = True,
                   trust_remote_code: bool = False) -> PreTrainedTokenizerBase:
    """The tokenizer saved with a model, checked not to damage Bengali text.

    With ``apply_normalization`` a folder trained with ``normalization="banglabert"`` gives a tokenizer that
    also applies the csebuetnlp normalizer to every text (NFKC is inside the saved tokenizer already), so
    raw text at serving time is treated like training text. The package's own pipeline passes False: its
    data are normalized when loaded.
    """
    try:
        tok = AutoTokenizer.from_pretrained(str(model), trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load the tokenizer of {str(model)!r} ({_first_line(exc)}); save the tokenizer "
                         "beside the model (tokenizer.save_pretrained(folder))") from None
    if len(tok) < MIN_VOCABULARY:  # transformers builds an empty tokenizer when the folder has none
        raise ModelError(f"the tokenizer of {str(model)!r} has only {len(tok)} pieces: the folder has no tokenizer "
                         "files; save the tokenizer beside the model (tokenizer.save_pretrained(folder))")
    check_bengali_tokenizer(tok)
    if apply_normalization and Path(str(model)).is_dir():
        from .normalization import apply_saved_normalization

        apply_saved_normalization(tok, model)
    return tok


def has_default_labels(config: Any) -> bool:
    """True when ``id2label`` is the ``LABEL_0, LABEL_1, ...`` placeholder transformers fills in."""
    id2label = getattr(config, "id2label", None) or {}
    return all(re.fullmatch(r"LABEL_\d+", str(v)) for v in id2label.values())


def config_label_names(config: Any) -> Optional[List[str]]:
    """The model's label names in id order, or None when it only has the ``LABEL_0, ...`` placeholders (then
    the data set's own label order applies)."""
    if has_default_labels(config):
        return None
    return [config.id2label[i] for i in sorted(config.id2label)]


def output_labels(config: Any, labels: Optional[Sequence[str]], where: str) -> Optional[List[str]]:
    """The model's output labels in id order: ``labels`` when given (the user's statement of the order),
    checked against the model's output count and, where the config names them, against those names; else the
    config's names; None when the config has only ``LABEL_i`` placeholders and no ``labels`` were given."""
    if labels is None:
        return config_label_names(config)
    names = [str(n) for n in labels]
    if len(names) != config.num_labels:
        raise ModelError(f"{len(names)} labels given ({', '.join(names)}) but {where} has {config.num_labels} "
                         "outputs; name one label per output, in output order")
    if len(set(names)) != len(names):
        raise ModelError(f"the labels given name one label twice ({', '.join(names)}); name each output once")
    own = config_label_names(config)
    if own is not None and own != names:
        raise ModelError(f"{where} names its outputs {', '.join(own)} (config id2label) but the labels given are "
                         f"{', '.join(names)}; drop the labels option, or fix the model's id2label")
    return names


_PROBE = "আমি খুব খুশি, কিন্তু মনটা একটু খারাপ।"


def check_bengali_tokenizer(tokenizer: PreTrainedTokenizerBase) -> None:
    """Raise if the tokenizer deletes Bengali vowel signs (lowercasing / accent stripping).

    Bengali vowel signs are combining marks; BERT's ``do_lower_case``/``strip_accents`` delete them. The check
    reads what the tokenizer does to a sentence (its ids decoded back to text), not how its pieces look:
    byte-level BPE pieces (``à¦Ĩ``) hold the marks as bytes and decode back to them.
    """
    ids = tokenizer(_PROBE, add_special_tokens=False)["input_ids"]
    if tokenizer.unk_token_id is not None and ids and all(i == tokenizer.unk_token_id for i in ids):
        return  # a tokenizer that knows no Bengali at all; the [UNK] rate report says so
    decoded = tokenizer.decode(ids, skip_special_tokens=True)
    if "ি" not in decoded or "ু" not in decoded:
        raise ModelError("this tokenizer deletes Bengali vowel signs (it lowercases or strips accents): "
                         f"{_PROBE!r} comes back as {decoded!r}. Use a cased tokenizer, or (BERT WordPiece) save "
                         "it with do_lower_case=False and strip_accents=False")


def unk_rate(tokenizer: PreTrainedTokenizerBase, texts: Iterable[str]) -> float:
    """Fraction of word pieces that are the unknown token."""
    total = unk = 0
    unk_id = tokenizer.unk_token_id
    for ids in tokenizer(list(texts), add_special_tokens=False)["input_ids"]:
        total += len(ids)
        unk += sum(1 for i in ids if i == unk_id)
    return unk / max(total, 1)


def wordpiece_tokenizer(vocab: Union[Mapping[str, int], Sequence[str]],
                        model_max_length: int = 512) -> BertTokenizerFast:
    """A cased WordPiece tokenizer (no lowercasing, no accent stripping) over a given vocabulary.

    ``vocab`` is a list of pieces in id order (for example the lines of a ``vocab.txt``) or a piece -> id
    mapping holding ``[PAD] [UNK] [CLS] [SEP] [MASK]``. :func:`train_wordpiece_tokenizer` returns this same
    tokenizer over the pieces it learns, so a saved piece list gives the trained tokenizer back exactly, on
    every run: the ``tokenizers`` WordPiece trainer breaks ties between equally frequent merges in hash order,
    so two trainings on the same texts can give different vocabularies.
    """
    pieces = dict(vocab) if isinstance(vocab, Mapping) else {piece: i for i, piece in enumerate(vocab)}
    missing = [t for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]") if t not in pieces]
    if missing:
        raise ModelError(f"the WordPiece vocabulary lacks the special pieces {missing}; add them (ids 0-4 by "
                         "convention) and build the tokenizer again")
    tok = BertTokenizerFast(vocab=pieces, do_lower_case=False, strip_accents=False, tokenize_chinese_chars=True,
                            model_max_length=model_max_length, unk_token="[UNK]", sep_token="[SEP]",
                            pad_token="[PAD]", cls_token="[CLS]", mask_token="[MASK]")
    check_bengali_tokenizer(tok)
    return tok


def train_wordpiece_tokenizer(texts: Iterable[str], vocab_size: int = 8000,
                              model_max_length: int = 512) -> BertTokenizerFast:
    """Train a cased WordPiece tokenizer (no lowercasing, no accent stripping) on ``texts``.

    The ``tokenizers`` trainer is not deterministic (ties are broken in hash order); to use one vocabulary on
    every run, save its pieces in id order (``sorted(vocab, key=vocab.get)`` of ``vocab = tokenizer.get_vocab()``)
    and build it with :func:`wordpiece_tokenizer`.
    """
    from tokenizers import BertWordPieceTokenizer

    raw = BertWordPieceTokenizer(lowercase=False, strip_accents=False, clean_text=True,
                                 handle_chinese_chars=True)
    raw.train_from_iterator(list(texts), vocab_size=vocab_size, min_frequency=2, show_progress=False)
    return wordpiece_tokenizer(raw.get_vocab(), model_max_length=model_max_length)


def build_from_config(shape: str, texts: List[str], label_names: List[str], vocab_size: int = 8000,
                      seed: int = 42, tokenizer: Optional[BertTokenizerFast] = None,
                      **overrides: int) -> Tuple[BertForSequenceClassification, BertTokenizerFast]:
    """A randomly initialised BERT classifier of a named shape, with a tokenizer trained on ``texts``.

    The tokenizer has at most ``vocab_size`` pieces; the model keeps the shape's own vocabulary size
    when it has one (mBERT: 119,547 rows) so that its parameter count and size match the real model.
    Given a ``tokenizer`` (for example :func:`wordpiece_tokenizer` over a saved vocabulary), none is trained
    and ``texts`` and ``vocab_size`` are not used: the same ``tokenizer`` and ``seed`` give the same model.
    """
    if shape not in CONFIG_SHAPES:
        raise ModelError(f"unknown shape {shape!r}; known: {', '.join(CONFIG_SHAPES)}")
    tok = tokenizer if tokenizer is not None else train_wordpiece_tokenizer(texts, vocab_size=vocab_size)
    dims = dict(CONFIG_SHAPES[shape])
    dims.update(overrides)
    dims["vocab_size"] = max(dims["vocab_size"], len(tok))
    config = BertConfig(**dims, num_labels=len(label_names), pad_token_id=tok.pad_token_id,
                        id2label=dict(enumerate(label_names)),
                        label2id={n: i for i, n in enumerate(label_names)})
    torch.manual_seed(seed)
    model = BertForSequenceClassification(config)
    model.config.architectures = ["BertForSequenceClassification"]
    return model.eval(), tok


def parameter_counts(model: torch.nn.Module) -> Dict[str, int]:
    """Parameters and non-zero parameters of a PyTorch model (int8 packed weights included)."""
    total = nonzero = 0
    seen = set()
    for p in model.parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        total += p.numel()
        nonzero += int(torch.count_nonzero(_plain(p.detach())).item())
    for module in model.modules():  # dynamically quantized Linear layers keep packed weights
        weight_fn = getattr(module, "weight", None)
        if callable(weight_fn) and not isinstance(weight_fn, torch.nn.Parameter):
            for t in (weight_fn(), module.bias() if callable(getattr(module, "bias", None)) else None):
                if t is None:
                    continue
                total += t.numel()
                nonzero += int(torch.count_nonzero(t.dequantize() if t.is_quantized else t).item())
    return {"parameters": total, "nonzero_parameters": nonzero}


def _plain(t: torch.Tensor) -> torch.Tensor:
    """A tensor subclass that holds quantized data (torchao's int8 weights) as the plain tensor it stands for."""
    return t.dequantize() if is_torchao_tensor(t) else t


def is_torchao_tensor(t: torch.Tensor) -> bool:
    """True for torchao's quantized tensor subclasses (checked by module name: torchao is imported on use)."""
    return type(t).__module__.split(".")[0] == "torchao"


def distinct_storage(tensors: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """``tensors`` with every tensor that shares storage with an earlier one (tied weights) cloned:
    safetensors refuses shared storage."""
    out, seen = {}, set()
    for name, tensor in tensors.items():
        ptr = tensor.data_ptr()
        out[name] = tensor.clone() if ptr in seen and tensor.numel() else tensor
        seen.add(ptr)
    return out


def int8_torch_kind(model: torch.nn.Module) -> Optional[str]:
    """``"torch.ao"`` or ``"torchao"`` when the model holds dynamically quantized int8 Linear layers of that
    library, else None."""
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    if any(isinstance(m, DynamicLinear) for m in model.modules()):
        return "torch.ao"
    if any(is_torchao_tensor(p) for p in model.parameters()):
        return "torchao"
    return None


def is_int8_torch(model: torch.nn.Module) -> bool:
    """True when the model holds dynamically quantized (int8) Linear layers (``torch.ao`` or torchao)."""
    return int8_torch_kind(model) is not None


def read_json(path: Union[str, Path]) -> Dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))
