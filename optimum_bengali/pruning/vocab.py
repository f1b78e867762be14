"""The ``trim_vocab`` step: keep only the vocabulary rows a corpus uses; shrink the embedding matrix.

Works on fast tokenizers with a WordPiece (BERT, BanglaBERT), Unigram (XLM-R, mDeBERTa) or BPE (RoBERTa) model.
Tokenization of the kept corpus is identical before and after, up to the id renumbering (removing pieces that a
tokenizer never chose on a text cannot change what it chooses on that text). BPE also keeps every piece a kept
piece is merged from, every one-symbol piece (so any text still encodes) and the merges between kept pieces.
"""

from __future__ import annotations

import json
import logging
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional, Tuple

import torch
from transformers import AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from ..errors import ModelError
from ..registry import register_step
from ..steps import SettingError, Step, setting

if TYPE_CHECKING:  # pragma: no cover
    from ..state import CompressionState

logger = logging.getLogger(__name__)


def used_ids(tokenizer: PreTrainedTokenizerBase, texts: Iterable[str], min_count: int = 1) -> List[int]:
    """Ids that ``texts`` use at least ``min_count`` times, plus every special and added token."""
    counts: Dict[int, int] = {}
    for ids in tokenizer(list(texts), add_special_tokens=True)["input_ids"]:
        for i in ids:
            counts[i] = counts.get(i, 0) + 1
    keep = {i for i, c in counts.items() if c >= min_count}
    keep.update(tokenizer.all_special_ids)
    keep.update(tokenizer.added_tokens_decoder.keys())
    return sorted(keep)


def _remap_processor(node: Any, old2new: Dict[int, int]) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "ids" and isinstance(value, list):
                out[key] = [old2new[i] for i in value]
            elif key in ("sep", "cls") and isinstance(value, list) and len(value) == 2:
                out[key] = [value[0], old2new[value[1]]]
            else:
                out[key] = _remap_processor(value, old2new)
        return out
    if isinstance(node, list):
        return [_remap_processor(v, old2new) for v in node]
    return node


#: tokenizer models (``tokenizer.json``'s ``model.type``) that vocabulary trimming supports
TRIMMABLE = ("WordPiece", "Unigram", "BPE")


def tokenizer_model_type(tokenizer: PreTrainedTokenizerBase) -> str:
    """The ``tokenizers`` model of a fast tokenizer (``WordPiece``, ``Unigram``, ``BPE``, ...); a one-line
    :class:`ModelError` when trimming cannot rewrite it."""
    if not getattr(tokenizer, "is_fast", False):
        raise ModelError("vocabulary trimming needs a fast tokenizer (tokenizer.json)")
    kind = json.loads(tokenizer.backend_tokenizer.to_str())["model"]["type"]
    if kind not in TRIMMABLE:
        raise ModelError(f"vocabulary trimming supports {', '.join(TRIMMABLE)} tokenizers, not {kind}")
    return kind


def _merge_pair(merge: Any) -> Tuple[str, str]:
    a, b = merge.split(" ", 1) if isinstance(merge, str) else merge
    return a, b


def bpe_closure(bpe: Dict[str, Any], keep: Iterable[int]) -> List[int]:
    """``keep`` plus what a BPE model needs to produce those pieces again: the pieces each is merged from
    (recursively) and every one-symbol piece of the alphabet."""
    vocab: Dict[str, int] = bpe["vocab"]
    piece = {i: p for p, i in vocab.items()}
    parts = {}
    for merge in bpe.get("merges", []):
        a, b = _merge_pair(merge)
        parts.setdefault(a + b, (a, b))
    kept = set(keep) | {i for p, i in vocab.items() if p not in parts}  # the alphabet: pieces no merge makes
    todo = [piece[i] for i in kept if i in piece]
    while todo:
        for part in parts.get(todo.pop(), ()):
            if part in vocab and vocab[part] not in kept:
                kept.add(vocab[part])
                todo.append(part)
    return sorted(kept)


def trim_vocabulary(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, keep: List[int]
                    ) -> Tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Keep vocabulary ids ``keep`` (sorted; a BPE tokenizer keeps :func:`bpe_closure` of them): a rewritten
    tokenizer and a model with those embedding rows."""
    kind = tokenizer_model_type(tokenizer)
    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    if kind == "BPE":
        keep = bpe_closure(spec["model"], keep)
    old2new = {old: new for new, old in enumerate(keep)}
    if kind in ("WordPiece", "BPE"):
        vocab = spec["model"]["vocab"]
        spec["model"]["vocab"] = {piece: old2new[i] for piece, i in vocab.items() if i in old2new}
        if kind == "BPE":  # a merge stays when both parts and the result stay
            kept_pieces = spec["model"]["vocab"]
            spec["model"]["merges"] = [m for m in spec["model"].get("merges", [])
                                       if all(p in kept_pieces for p in (*_merge_pair(m), "".join(_merge_pair(m))))]
    elif kind == "Unigram":
        vocab = spec["model"]["vocab"]
        spec["model"]["vocab"] = [vocab[i] for i in keep]
        if spec["model"].get("unk_id") is not None:
            spec["model"]["unk_id"] = old2new[spec["model"]["unk_id"]]
    for added in spec.get("added_tokens", []):
        added["id"] = old2new[added["id"]]
    spec["post_processor"] = _remap_processor(spec.get("post_processor"), old2new)

    with tempfile.TemporaryDirectory() as tmp:
        tokenizer.save_pretrained(tmp)
        Path(tmp, "tokenizer.json").write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
        for slow in [p for pattern in ("*.model", "vocab.txt", "vocab.json", "merges.txt")
                     for p in Path(tmp).glob(pattern)]:
            slow.unlink()  # slow-tokenizer files would disagree with the trimmed vocabulary
        new_tok = AutoTokenizer.from_pretrained(tmp)

    old_emb = model.get_input_embeddings()
    new_emb = torch.nn.Embedding(len(keep), old_emb.embedding_dim, padding_idx=None)
    new_emb.weight.data.copy_(old_emb.weight.detach()[torch.tensor(keep)])
    model.set_input_embeddings(new_emb)
    model.config.vocab_size = len(keep)
    for attr in ("pad_token_id", "bos_token_id", "eos_token_id", "sep_token_id", "cls_token_id"):
        value = getattr(model.config, attr, None)
        if value is not None and value in old2new:
            setattr(model.config, attr, old2new[value])
    if getattr(new_emb, "padding_idx", None) is None and model.config.pad_token_id is not None:
        new_emb.padding_idx = model.config.pad_token_id
    return model, new_tok


@register_step("trim_vocab")
@dataclass
class TrimVocabStep(Step):
    """Keep only the vocabulary rows used by ``splits`` (default: train; ``validation`` may be added, ``test``
    is refused) and ``extra_corpus`` (a text file, one sentence per line), plus special tokens. Warns, with counts, when the evaluation splits
    use rows that would be dropped (those words are then split into other pieces or become unknown)."""

    splits: List[str] = setting(default_factory=lambda: ["train"])
    extra_corpus: Optional[str] = None
    min_count: int = setting(1, min=1)

    def check(self) -> None:
        if "test" in self.splits:  # the test split only reports: a model fitted to its words reports too well
            raise SettingError("splits", "the test split is only read to report results; trim to train (and "
                                         "validation) or add unlabelled in-domain text as extra_corpus")
        bad = [s for s in self.splits if s not in ("train", "validation")]
        if bad or not self.splits:
            raise SettingError("splits", f"choose from train, validation; got {self.splits}")
        if self.extra_corpus and not Path(self.extra_corpus).is_file():
            raise SettingError("extra_corpus", f"file {self.extra_corpus!r} does not exist")

    def preflight(self, facts: Any) -> None:
        tokenizer_model_type(facts.tokenizer)

    def apply(self, state: "CompressionState") -> None:
        model = state.torch_model("trim_vocab")
        texts: List[str] = [t for s in self.splits for t in state.data.texts(s)]
        if self.extra_corpus:
            texts += [line.strip() for line in Path(self.extra_corpus).read_text(encoding="utf-8").splitlines()
                      if line.strip()]
        tok = state.tokenizer
        keep = used_ids(tok, texts, self.min_count)
        kept = set(keep)
        dropped_uses: Dict[str, Dict[str, int]] = {}
        for split in ("validation", "test"):
            if split in self.splits or split not in state.data.splits:
                continue
            ids = tok(state.data.texts(split), add_special_tokens=False)["input_ids"]
            pieces = sum(len(x) for x in ids)
            lost = sum(1 for x in ids for i in x if i not in kept)
            sentences = sum(1 for x in ids if any(i not in kept for i in x))
            dropped_uses[split] = {"pieces": pieces, "pieces_dropped": lost, "sentences_affected": sentences}
            if lost:
                warnings.warn(f"trim_vocab: {lost} of {pieces} word pieces in the {split} split "
                              f"({sentences} sentences) use vocabulary rows that trimming drops; add the "
                              "text to extra_corpus to keep them", stacklevel=2)
        before = model.get_input_embeddings().weight.shape[0]
        state.model, state.tokenizer = trim_vocabulary(model, tok, keep)
        state.note(vocab_before=before, vocab_after=state.model.config.vocab_size, eval_pieces_dropped=dropped_uses)
