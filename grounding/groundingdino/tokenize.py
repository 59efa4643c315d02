"""WordPiece tokenisation for Grounding DINO and the official sub-sentence attention mask.

The tokenizer is transformers' ``BertTokenizer`` (backed by ``tokenizers``) built from a local vocab file
(lower-casing), so char offsets are available for mapping tag character spans onto token spans.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import torch

#: Tokens that close a sub-sentence block in the official code.
SPECIAL_TOKENS = ("[CLS]", "[SEP]", ".", "?")
MAX_TEXT_LEN = 256


def load_tokenizer(vocab_file: str):
    """WordPiece tokenizer from a vocab.txt (no network), as the official code's ``bert-base-uncased`` one.

    transformers 5 builds ``BertTokenizer`` from a vocabulary dict (a ``vocab_file`` keyword alone would
    leave it with its 5-token default vocabulary); the file is read one token a line, as transformers does.
    """
    from transformers import BertTokenizer
    from transformers.models.bert.tokenization_bert import load_vocab

    return BertTokenizer(vocab=load_vocab(str(vocab_file)), do_lower_case=True)


def preprocess_caption(caption: str) -> str:
    """Official ``preprocess_caption``: lower-case, strip, end with '.'."""
    if not isinstance(caption, str):
        raise ValueError("caption must be a string")
    c = caption.lower().strip()
    return c if c.endswith(".") else c + "."


@dataclass
class TextBatch:
    """Tokenised captions (padding 'longest', truncated to ``max_len`` after mask generation).

    Attributes:
        input_ids: int64 [B,T].
        attention_mask: bool [B,T], True on real tokens (text_token_mask).
        token_type_ids: int64 [B,T] zeros.
        text_self_attention_masks: bool [B,T,T] sub-sentence mask (True = may attend).
        position_ids: int64 [B,T] positions restarting in each sub-sentence.
        offsets: per caption, (start, end) char offsets of each token in the caption ((0,0) for specials/pad).
        word_ids: per caption, the index of the word (BERT pre-token) each token belongs to (``None`` for
            specials/pad): the word pieces of one word share it.
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    token_type_ids: torch.Tensor
    text_self_attention_masks: torch.Tensor
    position_ids: torch.Tensor
    offsets: list[list[tuple[int, int]]]
    word_ids: list[list[Optional[int]]]


def special_token_ids(tokenizer) -> list[int]:
    return tokenizer.convert_tokens_to_ids(list(SPECIAL_TOKENS))


def sub_sentence_mask(input_ids: torch.Tensor, special_ids: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Official ``generate_masks_with_special_tokens_and_transfer_map`` (mask + position ids), vectorised.

    Every special token not at column 0 or the last column closes a block running from just after the
    previous special token to itself; tokens outside any block attend only to themselves, position 0.
    """
    if input_ids.ndim != 2:
        raise ValueError("input_ids must be [B,T]")
    b, t = input_ids.shape
    special = torch.zeros_like(input_ids, dtype=torch.bool)
    for sid in special_ids:
        special |= input_ids == sid
    mask = torch.eye(t, dtype=torch.bool).unsqueeze(0).repeat(b, 1, 1)
    pos = torch.zeros((b, t), dtype=torch.long)
    rows, cols = torch.nonzero(special, as_tuple=True)
    prev = 0
    for r, c in zip(rows.tolist(), cols.tolist()):
        if c != 0 and c != t - 1:
            mask[r, prev + 1 : c + 1, prev + 1 : c + 1] = True
            pos[r, prev + 1 : c + 1] = torch.arange(0, c - prev)
        prev = c
    return mask, pos


def tokenize(tokenizer, captions: Sequence[str], max_len: int = MAX_TEXT_LEN) -> TextBatch:
    """Tokenise captions (already preprocessed) the way the official forward does."""
    if len(captions) == 0:
        raise ValueError("no captions")
    enc = tokenizer(list(captions), padding="longest", return_tensors="pt", return_offsets_mapping=True)
    ids = enc["input_ids"]
    mask, pos = sub_sentence_mask(ids, special_token_ids(tokenizer))
    am = enc["attention_mask"].bool()
    tt = enc["token_type_ids"]
    offs = [[(int(a), int(b)) for a, b in row.tolist()] for row in enc["offset_mapping"]]
    words = [enc.word_ids(i) for i in range(len(captions))]
    if ids.shape[1] > max_len:
        ids, am, tt, pos = ids[:, :max_len], am[:, :max_len], tt[:, :max_len], pos[:, :max_len]
        mask = mask[:, :max_len, :max_len]
        offs = [o[:max_len] for o in offs]
        words = [w[:max_len] for w in words]
    return TextBatch(input_ids=ids, attention_mask=am, token_type_ids=tt, text_self_attention_masks=mask,
                     position_ids=pos, offsets=offs, word_ids=words)


def count_tokens(tokenizer, text: str) -> int:
    """Number of tokens of ``text`` including [CLS] and [SEP]."""
    return len(tokenizer(text)["input_ids"])
