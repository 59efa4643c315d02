"""The published transformers checkpoints: the README's backend table lists each one with the licence recorded in
``grounding/hf/weights.py``, and every hub id a shipped config names is one of them."""
from __future__ import annotations

import re

from grounding.hf.weights import HF_MODELS
from openvocab.config import configs_dir

README = (configs_dir().parent / "README.md").read_text()


def test_readme_table_lists_every_model_with_its_licence():
    rows = [line for line in README.splitlines() if line.startswith("| ") and "`" in line]
    for m in HF_MODELS:  # its row in the transformers backends table: the model and the stage that runs it
        row = [r for r in rows if f"`{m.repo}`" in r
               and [c.strip() for c in r.strip("|").split("|")][1].startswith(f"`{m.stage}`")]
        assert len(row) == 1, m.repo
        cells = [c.strip() for c in row[0].strip("|").split("|")]
        assert cells[-1] == m.licence and cells[2] == m.gives and cells[1].startswith(f"`{m.stage}`"), m.repo


def test_shipped_configs_name_known_models():
    known = {m.repo for m in HF_MODELS}
    named = set()
    for path in configs_dir().glob("*.py"):
        named |= set(re.findall(r"model='([\w.-]+/[\w.-]+)'", path.read_text()))
    assert named and named <= known, named - known
