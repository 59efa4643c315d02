"""PSALM's tokenizer: Phi-1.5's byte-level BPE (``CodeGenTokenizer``) plus ``[PAD]`` and ``[SEG]``, read from the
checkpoint folder; and a built-in byte tokenizer with the same special tokens for the tiny random model."""
from __future__ import annotations

import os
from pathlib import Path

from .prompts import EOS, SEG_TOKEN


def load_tokenizer(folder: os.PathLike | str):
    """The tokenizer saved beside a PSALM checkpoint (``AutoTokenizer``, fast, as the official loader)."""
    from transformers import AutoTokenizer

    folder = Path(folder)
    try:
        return AutoTokenizer.from_pretrained(str(folder), use_fast=True)
    except (OSError, ValueError) as e:
        raise ValueError(f"{folder}: cannot load PSALM's tokenizer ({type(e).__name__}: {e})") from None


def byte_tokenizer():
    """256 byte tokens (GPT-2's byte -> unicode table, no merges), then ``<|endoftext|>``, ``[PAD]``, ``[SEG]``
    (259 ids): no files needed."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    vocab = {c: i for i, c in enumerate(bytes_to_unicode().values())}
    core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    tok = PreTrainedTokenizerFast(tokenizer_object=core)
    tok.add_special_tokens({"eos_token": EOS, "bos_token": EOS, "unk_token": EOS, "pad_token": "[PAD]"})
    tok.add_tokens(SEG_TOKEN)
    return tok
