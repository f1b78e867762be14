"""Teacher-labelled data augmentation for distillation (TinyBERT-style, without external resources).

A small student learns the teacher's function better when it sees more inputs than the few thousand
labelled sentences: each training sentence gets ``copies`` noisy versions made from the training text
itself (no dictionary, language model or download), and only the teacher labels them. Bengali words are
whitespace-separated, so every edit works on whole words and never splits a vowel sign from its consonant.

>>> from optimum_bengali.distillation.augment import augment_texts
>>> augment_texts(["আমি আজ খুব খুশি", "সে ভয় পেয়েছে"], copies=2, seed=0)  # doctest: +SKIP
['আমি খুব খুশি', 'আমি আজ খুব ভয়', ...]

The augmented rows carry the label :data:`UNLABELLED` (-100): the cross-entropy part of the distillation loss
skips them and only the soft (teacher) part, hidden states and attention maps train on them.
"""

from __future__ import annotations

import random
from typing import List, Sequence

from ..data import LabelledData
from .losses import UNLABELLED  # noqa: F401  (re-exported: the label of the rows added here)
from .transfer import with_teacher_rows


def augment_sentence(words: Sequence[str], vocabulary: Sequence[str], rng: random.Random, replace: float = 0.15,
                     drop: float = 0.1, crop: float = 0.3) -> List[str]:
    """One noisy copy of a sentence given as words.

    Each word is replaced by a random word of ``vocabulary`` (drawn by corpus frequency) with probability
    ``replace`` or dropped with probability ``drop``; with probability ``crop`` the result is cut to a random
    contiguous span of at least half its words. At least one word always remains.
    """
    out: List[str] = []
    for word in words:
        r = rng.random()
        if r < replace:
            out.append(rng.choice(vocabulary))
        elif r < replace + drop:
            continue
        else:
            out.append(word)
    if not out:
        out = [rng.choice(list(words) or list(vocabulary))]
    if len(out) > 3 and rng.random() < crop:
        length = rng.randint((len(out) + 1) // 2, len(out))
        start = rng.randint(0, len(out) - length)
        out = out[start:start + length]
    return out


def augment_texts(texts: Sequence[str], copies: int, seed: int = 42, replace: float = 0.15, drop: float = 0.1,
                  crop: float = 0.3) -> List[str]:
    """``copies`` noisy versions of every text (see :func:`augment_sentence`), in input order, reproducible
    from ``seed``. Copies identical to a training text or to an earlier copy are left out, so the result can
    be a little shorter than ``copies * len(texts)``."""
    if copies < 0:
        raise ValueError(f"copies must be >= 0, got {copies}")
    rng = random.Random(seed)
    tokenized = [t.split() for t in texts]
    vocabulary = [w for words in tokenized for w in words]  # with repeats: drawing follows corpus frequency
    if not vocabulary:
        return []
    seen = set(texts)
    out: List[str] = []
    for words in tokenized:
        for _ in range(copies):
            text = " ".join(augment_sentence(words, vocabulary, rng, replace, drop, crop))
            if text not in seen:
                seen.add(text)
                out.append(text)
    return out


def with_augmented_train(data: LabelledData, copies: int, seed: int = 42) -> LabelledData:
    """``data`` with teacher-only rows (label :data:`UNLABELLED`) appended to its train split; the other
    splits are unchanged. ``copies=0`` returns ``data`` itself."""
    if copies <= 0:
        return data
    return with_teacher_rows(data, augment_texts(data.texts("train"), copies, seed))[0]
