"""Shared test fixtures: where ``../shared`` is, and small helpers."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("OPENVOCAB_SHARED", ROOT.parent / "shared"))
PARITY = SHARED / "parity"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.fail(f"shared data folder not found at {SHARED} (set OPENVOCAB_SHARED)")
    return SHARED


@pytest.fixture(scope="session")
def parity_dir(shared_dir) -> Path:
    return shared_dir / "parity"


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """No test may need the network: hub look-ups run offline."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def bpe_files(tmp_path_factory):
    """A tiny byte-level BPE vocabulary in CLIP's file format (characters only, no merges): the tokenizer
    files of the tiny random CLIP text encoders the tests build."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode  # GPT-2's byte -> unicode table

    d = tmp_path_factory.mktemp("clip_bpe")
    chars = list(bytes_to_unicode().values())
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": len(chars) + i for i, c in enumerate(chars)})
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    (d / "vocab.json").write_text(json.dumps(vocab))
    (d / "merges.txt").write_text("#version: 0.2\n")
    return str(d / "vocab.json"), str(d / "merges.txt")
