"""Word vocabulary built from training documents only."""
from __future__ import annotations

from collections import Counter
from typing import Iterable

from ..errors import UsageError

__all__ = ["Vocab", "PAD", "UNK"]

PAD, UNK = "<pad>", "<unk>"


class Vocab:
    """Maps words to ids; id 0 is padding and id 1 the unknown word."""

    def __init__(self, words: Iterable[str] = ()):
        self.counts: list[int] | None = None  # training counts per id, when built from sentences
        self.itos: list[str] = [PAD, UNK]
        self.stoi: dict[str, int] = {PAD: 0, UNK: 1}
        for w in words:
            if w not in self.stoi:
                self.stoi[w] = len(self.itos)
                self.itos.append(w)

    @classmethod
    def build(cls, sentences: Iterable[Iterable[str]], min_freq: int = 1) -> "Vocab":
        """Words seen at least ``min_freq`` times, most frequent first (ties in first-seen order)."""
        counts = Counter(w for s in sentences for w in s)
        vocab = cls(w for w, n in sorted(counts.items(), key=lambda kv: -kv[1]) if n >= min_freq)
        vocab.counts = [0, 0] + [counts[w] for w in vocab.itos[2:]]
        return vocab

    def extend(self, words: Iterable[str], limit: int | None = None) -> int:
        """Append new words (not seen in training: count 0) after the training words; returns how many."""
        added = 0
        for w in words:
            if limit is not None and added >= limit:
                break
            if w not in self.stoi:
                self.stoi[w] = len(self.itos)
                self.itos.append(w)
                if self.counts is not None:
                    self.counts.append(0)
                added += 1
        return added

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, word: str) -> bool:
        return word in self.stoi

    def __getitem__(self, word: str) -> int:
        return self.stoi.get(word, 1)

    def encode(self, words: Iterable[str]) -> list[int]:
        get = self.stoi.get
        return [get(w, 1) for w in words]

    def char_ids(self, word: str, limit: int = 8) -> list[int]:
        """Ids of the characters of a multi-character ``word`` that are words of the vocabulary themselves
        (at most ``limit``, in order); [] for a one-character word or when none is known."""
        if len(word) < 2:
            return []
        get = self.stoi.get
        return [i for i in (get(ch) for ch in word) if i is not None and i > 1][:limit]

    def state_dict(self) -> list[str]:
        return list(self.itos)

    @classmethod
    def from_state_dict(cls, itos: list[str]) -> "Vocab":
        if itos[:2] != [PAD, UNK]:
            raise UsageError("not an ecpe vocabulary: it must start with <pad>, <unk>")
        return cls(itos[2:])
