"""Tag2Text's text side: the BERT WordPiece tokenizer with the official ``[DEC]`` / ``[ENC]`` tokens.

The official ``init_tokenizer`` takes ``bert-base-uncased`` (lower case), adds ``[DEC]`` as the BOS token and
``[ENC]`` as an additional special token (30522 and 30523 with the real vocabulary: 30524 tokens). Encoding
is transformers' ``BertTokenizer`` built from a local vocab file, as Grounding DINO's; decoding follows the
transformers 4.25.1 slow tokenizer the official results come from (``skip_special_tokens=True``,
``clean_up_tokenization_spaces=True``), written out here so that it does not move with transformers' version.
"""
from __future__ import annotations

import os
from typing import Mapping, Sequence

import torch

#: the caption prompt; captions are what the decoder writes after it
PROMPT = "a picture of "
#: tokens of a tag string given to the tag encoder (padded / truncated to this length)
TAG_MAX_LENGTH = 40
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")

#: transformers 4's ``clean_up_tokenization``, in its order
_CLEAN_UP = ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"), (" 'm", "'m"),
             (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"))


def tiny_vocab() -> list[str]:
    """A small WordPiece vocabulary for the tiny random variant (its ids are not BERT's): the special tokens,
    punctuation, the words of the prompt and of the tiny tags, a few caption words, and every letter and
    digit alone and as a word piece (so any lower-case word can be written)."""
    from ..recognize_anything.tag_lists import TINY_TAGS

    words = ["a", "picture", "of", "the", "with", "and", "in", "on", "at", "is", "two", "an", "near", "by"]
    words += [w for tag in TINY_TAGS for w in tag.split()]
    chars = list("abcdefghijklmnopqrstuvwxyz0123456789")
    out = list(SPECIAL_TOKENS) + list(".,'-|&()/!?:")
    for token in words + chars + ["##" + c for c in chars]:
        if token not in out:
            out.append(token)
    return out


def read_vocab(path: os.PathLike | str) -> dict[str, int]:
    """``{token: id}`` of a ``vocab.txt`` (one token a line, as transformers reads it)."""
    from transformers.models.bert.tokenization_bert import load_vocab

    return dict(load_vocab(str(path)))


class Tag2TextTokenizer:
    """Tokenizer of the tag encoder and the text decoder.

    Args:
        vocab: ``{token: id}`` of a BERT WordPiece vocabulary without ``[DEC]``/``[ENC]`` (they are appended,
            as the official code does), e.g. :func:`read_vocab` of bert-base-uncased's ``vocab.txt``.
    """

    def __init__(self, *, vocab: Mapping[str, int]) -> None:
        from transformers import BertTokenizer

        missing = [t for t in SPECIAL_TOKENS if t not in vocab]
        if missing:
            raise ValueError(f"the vocabulary lacks {missing}")
        if sorted(vocab.values()) != list(range(len(vocab))):
            raise ValueError("vocabulary ids must be 0 .. N-1")
        self._tok = BertTokenizer(vocab=dict(vocab), do_lower_case=True)
        self._tok.add_special_tokens({"bos_token": "[DEC]"})
        self._tok.add_special_tokens({"additional_special_tokens": ["[ENC]"]})
        self.id_to_token = {i: t for t, i in self._tok.get_vocab().items()}
        ids = self._tok.convert_tokens_to_ids
        self.pad_id, self.unk_id, self.cls_id, self.sep_id, self.mask_id = (ids(t) for t in SPECIAL_TOKENS)
        self.bos_id, self.enc_id = ids("[DEC]"), ids("[ENC]")
        if {self.bos_id, self.enc_id} != {len(vocab), len(vocab) + 1}:
            raise ValueError("[DEC] / [ENC] must be new tokens after the vocabulary")
        self.special_ids = frozenset({self.pad_id, self.unk_id, self.cls_id, self.sep_id, self.mask_id,
                                      self.bos_id, self.enc_id})

    def __len__(self) -> int:
        return len(self.id_to_token)

    def encode_tags(self, tag_strings: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Tag strings (``"t1 | t2"``) -> ``(input_ids, attention_mask)`` int64 ``[N, 40]``: ``[ENC] ... [SEP]``
        then ``[PAD]``s; a longer string is cut so that position 39 is ``[SEP]``."""
        if len(tag_strings) == 0:
            raise ValueError("no tag strings to encode")
        enc = self._tok(list(tag_strings), padding="max_length", truncation=True, max_length=TAG_MAX_LENGTH,
                        return_tensors="pt")
        ids = enc["input_ids"].clone()
        ids[:, 0] = self.enc_id
        return ids, enc["attention_mask"]

    def prompt_ids(self, batch_size: int, prompt: str = PROMPT) -> torch.Tensor:
        """``[DEC] a picture of`` as int64 ``[B, P]`` (the prompt's ``[CLS]`` becomes ``[DEC]``, ``[SEP]`` dropped)."""
        ids = torch.tensor([self._tok(prompt)["input_ids"]] * batch_size, dtype=torch.long)
        ids[:, 0] = self.bos_id
        return ids[:, :-1]

    def decode(self, ids: Sequence[int] | torch.Tensor) -> str:
        """Token ids -> text, special tokens skipped (``[UNK]`` too), word pieces joined, spaces before
        punctuation and contractions removed."""
        ids = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
        tokens = [self.id_to_token[i] for i in ids if i not in self.special_ids]
        text = " ".join(tokens).replace(" ##", "").strip()
        for old, new in _CLEAN_UP:
            text = text.replace(old, new)
        return text

    def caption(self, ids: Sequence[int] | torch.Tensor, prompt: str = PROMPT) -> str:
        """The generated text after the prompt (the official ``decode(...)[len(prompt):]``)."""
        return self.decode(ids)[len(prompt):]
