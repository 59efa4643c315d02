"""Caption tokenizers sharing one small interface.

Every tokenizer has ``n_words``, ``bos_id``, ``eos_id``, ``pad_id``, ``encode(text)`` and
``detokenize(rows)``; ``detokenize`` drops the first token (BOS) and cuts each row at its first
EOS, as the official code does.

* :class:`SentencePieceTokenizer`: the official LLaMA SentencePiece model (32000 pieces, pad
  ``-1`` mapped to ``n_words - 1 = 31999``).
* :class:`ByteTokenizer`: self-contained fallback for tiny random models (no file needed); it
  decodes to printable text only (invalid UTF-8 becomes U+FFFD, control characters are dropped).
* :class:`IdTokenizer`: ids written as decimal text (the parity fixtures' stand-in tokenizer).
"""
from __future__ import annotations

import os
from typing import Iterable, Sequence

import numpy as np


class _Base:
    n_words: int
    bos_id: int
    eos_id: int
    pad_id: int

    def decode(self, ids: Sequence[int]) -> str:
        raise NotImplementedError

    def detokenize(self, rows: Iterable[Sequence[int]] | np.ndarray) -> list[str]:
        rows = rows.tolist() if hasattr(rows, "tolist") else [list(r) for r in rows]
        out = []
        for row in rows:
            ids = list(row[1:])
            if self.eos_id in ids:
                ids = ids[: ids.index(self.eos_id)]
            out.append(self.decode(ids))
        return out


class SentencePieceTokenizer(_Base):
    """The official caption tokenizer (``text_tokenizer.model``)."""

    def __init__(self, *, model_file: os.PathLike | str) -> None:
        from sentencepiece import SentencePieceProcessor

        self.sp = SentencePieceProcessor(model_file=str(model_file))
        self.n_words = self.sp.vocab_size()
        self.bos_id, self.eos_id = self.sp.bos_id(), self.sp.eos_id()
        pad = self.sp.pad_id()
        self.pad_id = pad + self.n_words if pad < 0 else pad

    def encode(self, text: str) -> list[int]:
        return list(self.sp.encode(text))

    def decode(self, ids: Sequence[int]) -> str:
        return self.sp.decode([int(i) for i in ids if 0 <= int(i) < self.n_words])


class ByteTokenizer(_Base):
    """UTF-8 bytes as tokens: 0 unk, 1 BOS, 2 EOS, ``3 + byte``, last id = pad (260 ids)."""

    OFFSET = 3

    def __init__(self) -> None:
        self.n_words = 256 + self.OFFSET + 1
        self.bos_id, self.eos_id, self.pad_id = 1, 2, self.n_words - 1

    def encode(self, text: str) -> list[int]:
        return [b + self.OFFSET for b in text.encode("utf-8")]

    def decode(self, ids: Sequence[int]) -> str:
        data = bytes(int(i) - self.OFFSET for i in ids if self.OFFSET <= int(i) < self.OFFSET + 256)
        return "".join(ch for ch in data.decode("utf-8", errors="replace") if ch.isprintable())


class IdTokenizer(_Base):
    """Ids as space-separated decimal text (no vocabulary)."""

    def __init__(self, *, n_words: int, bos_id: int = 1, eos_id: int = 2, pad_id: int | None = None) -> None:
        self.n_words, self.bos_id, self.eos_id = n_words, bos_id, eos_id
        self.pad_id = n_words - 1 if pad_id is None else pad_id

    def encode(self, text: str) -> list[int]:
        return [int(t) for t in text.split()]

    def decode(self, ids: Sequence[int]) -> str:
        return " ".join(str(int(i)) for i in ids)
