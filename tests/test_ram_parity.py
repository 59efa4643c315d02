"""RAM (v1) parity against the official-code fixture A (tiny config, random weights, official file layout)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from openvocab.structures import TagSource
from tagging import verify
from tagging.ram import RAMTagger
from tagging.ram.model import model_kwargs_from_official

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def fixture_path(parity_dir) -> Path:
    return parity_dir / "ram" / "ram_tiny_A.pt"


@pytest.fixture(scope="module")
def fixture(fixture_path):
    return torch.load(fixture_path, map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def checkpoint_file(fixture, tmp_path_factory) -> Path:
    """The fixture's weights as the official file is laid out: ``{'model': state_dict}``."""
    path = tmp_path_factory.mktemp("ram") / "ram_tiny_A.pth"
    torch.save(fixture["checkpoint"], path)
    return path


def test_verify_cli_reproduces_every_output(fixture_path, fixture, tmp_path):
    out = tmp_path / "out.pt"
    proc = subprocess.run([sys.executable, "-m", "tagging.verify", str(fixture_path), "--save", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "OK: worst" in proc.stdout and "ram fixture" in proc.stdout
    for name in ("outputs.logits", "outputs.tags_zh", "outputs.single", "openset.single_tags",
                 "intermediates.tagging_embed", "preprocessed vs inputs.image"):
        assert f"max abs diff {name} " in proc.stdout
    res = torch.load(out, weights_only=True)
    ref = fixture["outputs"]
    assert set(res["outputs"]) == set(ref)  # every entry of the fixture's outputs, under its own name
    assert (res["outputs"]["logits"] - ref["logits"]).abs().max() < 1e-4
    assert (res["outputs"]["single_logits"] - ref["single_logits"]).abs().max() < 1e-4
    assert torch.equal(res["outputs"]["targets"], ref["targets"])
    assert res["outputs"]["tags_en"] == ref["tags_en"] and res["outputs"]["tags_zh"] == ref["tags_zh"]
    assert res["outputs"]["single"] == ref["single"]
    assert (res["openset"]["logits"] - fixture["openset"]["logits"]).abs().max() < 1e-4
    assert res["openset"]["tags"] == fixture["openset"]["tags"]
    assert res["openset"]["single_tags"] == fixture["openset"]["single_tags"]
    assert torch.equal(res["preprocessed"], fixture["inputs"]["image"])  # bit for bit


def test_intermediates_match(fixture):
    res, got = verify.run(fixture)
    diffs = dict(verify.compare(fixture, res, got))
    for name in ("intermediates.swin_patch_embed_img0", "intermediates.swin_layer3_out",
                 "intermediates.visual_encoder_out", "intermediates.image_embeds", "intermediates.wordvec_proj_out",
                 "intermediates.label_queries", "intermediates.tagging_head_layer1_crossattn_out",
                 "intermediates.tagging_embed"):
        assert diffs[name] < 1e-4, (name, diffs[name])
    # Chinese strings keep the official file's trailing spaces ("熊  | 黑色")
    assert diffs["outputs.tags_zh"] == 0.0 and "  | " in fixture["outputs"]["tags_zh"][0]


def test_inputs_only_fixture_saves_and_fails(fixture, tmp_path, capsys):
    bare = {k: fixture[k] for k in ("config", "checkpoint", "inputs")}
    path = tmp_path / "bare.pt"
    torch.save(bare, path)
    assert verify.main([str(path), "--save", str(tmp_path / "o.pt")]) == 1
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == f"FAIL: nothing compared: {path} stores no model outputs or intermediates"
    res = torch.load(tmp_path / "o.pt", weights_only=True)
    assert (res["outputs"]["logits"] - fixture["outputs"]["logits"]).abs().max() < 1e-4
    assert res["outputs"]["tags_zh"] == fixture["outputs"]["tags_zh"]

    broken = dict(fixture)
    broken["checkpoint"] = {"model": dict(fixture["checkpoint"]["model"])}
    broken["checkpoint"]["model"]["fc.bias"] = fixture["checkpoint"]["model"]["fc.bias"] + 0.01
    path = tmp_path / "broken.pt"
    torch.save(broken, path)
    assert verify.main([str(path)]) == 1
    assert "outputs.logits" in (out := capsys.readouterr().out) and "<-- FAIL" in out


def _tagger(fixture, checkpoint_file, **kwargs) -> RAMTagger:
    cfg = fixture["config"]
    kwargs.setdefault("batch_size", 2)
    tagger = RAMTagger(variant="tiny", checkpoint=str(checkpoint_file),
                       model_kwargs=model_kwargs_from_official(cfg), tag_list=cfg["tag_list"],
                       tag_list_zh=cfg["tag_list_chinese"], class_thresholds=cfg["class_threshold"], **kwargs)
    tagger.setup("cpu")
    return tagger


def test_tagger_reproduces_official_english_and_chinese_tags(fixture, checkpoint_file):
    images = [t.numpy() for t in fixture["inputs"]["raw_uint8"]]
    ref = fixture["outputs"]
    names = fixture["config"]["tag_list"]
    for b, tags in enumerate(_tagger(fixture, checkpoint_file).tag(images)):
        assert sorted(tags.names) == sorted(ref["tags_en"][b].split(" | "))
        assert sorted(t.name_zh for t in tags) == sorted(s.strip() for s in ref["tags_zh"][b].split(" | "))
        assert np.all(np.diff(tags.scores) <= 0) and all(t.source == TagSource.CLOSED_SET for t in tags)
        for t in tags:
            assert abs(t.score - ref["probs"][b, names.index(t.name)].item()) < 1e-4
    zh = _tagger(fixture, checkpoint_file, tag_language="zh")
    assert zh.class_names == [n.strip() for n in fixture["config"]["tag_list_chinese"]]
    for b, tags in enumerate(zh.tag(images)):
        assert sorted(tags.names) == sorted(s.strip() for s in ref["tags_zh"][b].split(" | "))
        assert all(t.name == t.name_zh for t in tags)


def _openset_file(path, categories, embed, d):
    from safetensors.torch import save_file

    save_file({"label_embed": embed.contiguous()}, str(path),
              metadata={"tags": json.dumps(categories), "descriptions_per_tag": str(d),
                        "format": "openvocab-openset-v1"})
    return str(path)


def test_openset_tags_one_row_and_template_averages(fixture, checkpoint_file, tmp_path):
    images = [t.numpy() for t in fixture["inputs"]["raw_uint8"]]
    op = fixture["openset"]
    cats, embed = op["categories"], op["label_embed"]
    one = _tagger(fixture, checkpoint_file, openset=_openset_file(tmp_path / "one.safetensors", cats, embed, 1),
                  openset_mode="replace")
    assert (one.logits(images)[1] - op["logits"]).abs().max() < 1e-4
    for tags, want in zip(one.tag(images), op["tags"]):
        assert sorted(tags.names) == sorted(want.split(" | "))
        assert all(t.source == TagSource.OPEN_SET for t in tags)
    # two "template" embeddings per tag, e ± u (u orthogonal to e, so both have one norm): their normalised
    # mean, renormalised, is e again (the official build_openset_label_embedding recipe)
    u = torch.randn(embed.shape, generator=torch.Generator().manual_seed(0))
    u = u - (u * embed).sum(-1, keepdim=True) * embed
    u = 0.7 * F.normalize(u, dim=-1)
    rows = torch.stack([F.normalize(embed + u, dim=-1), F.normalize(embed - u, dim=-1)], dim=1).reshape(-1, 512)
    two = _tagger(fixture, checkpoint_file, openset=_openset_file(tmp_path / "two.safetensors", cats, rows, 2),
                  openset_mode="add")
    closed, opened = two.logits(images)
    assert (opened - op["logits"]).abs().max() < 1e-4
    assert (closed - fixture["outputs"]["logits"]).abs().max() < 1e-4
    assert two.class_names == fixture["config"]["tag_list"] + cats
