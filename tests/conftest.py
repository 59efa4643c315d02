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


@pytest.fixture(scope="session")
def hf_models(tmp_path_factory, parity_dir, bpe_files) -> dict[str, Path]:
    """Tiny random transformers models of every HF backend (tests/hf_tiny.py), saved once per session as model
    folders: name -> folder."""
    import torch

    import hf_tiny

    root = tmp_path_factory.mktemp("hf_models")
    vocab = torch.load(parity_dir / "grounding_dino" / "gdino_tiny_A.pt", weights_only=True)["vocab_txt"]
    return {"grounding_dino": hf_tiny.grounding_dino(root / "gd", vocab),
            "mm_grounding_dino": hf_tiny.grounding_dino(root / "mm", vocab, mm=True),
            "owlv2": hf_tiny.owl(root / "owlv2", bpe_files),
            "owlvit": hf_tiny.owl(root / "owlvit", bpe_files, v2=False),
            "omdet": hf_tiny.omdet(root / "omdet", bpe_files),
            **{kind: hf_tiny.sam(root / kind, kind) for kind in ("sam", "sam_hq", "sam2")},
            "sam3": hf_tiny.sam3(root / "sam3", bpe_files), "clipseg": hf_tiny.clipseg(root / "clipseg", bpe_files)}


@pytest.fixture(scope="session")
def exemplar_models(tmp_path_factory, bpe_files) -> dict[str, Path]:
    """Tiny random transformers models of the label-by-example stages (tests/exemplar_tiny.py): name -> folder."""
    import exemplar_tiny

    return exemplar_tiny.models(tmp_path_factory.mktemp("exemplar_models"), bpe_files)
