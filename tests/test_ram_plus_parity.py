"""RAM++ parity against the official-code fixture A (tiny config, random weights)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from openvocab.structures import TagSource
from tagging import verify
from tagging.ram_plus import RAMPlusTagger
from tagging.ram_plus.model import model_kwargs_from_official

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def fixture_a_path(parity_dir) -> Path:
    return parity_dir / "ram_plus" / "ram_plus_tiny_A.pt"


@pytest.fixture(scope="module")
def fixture_a(fixture_a_path):
    return torch.load(fixture_a_path, map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def meta_a(fixture_a):
    return json.loads(fixture_a["meta_json"])


def test_verify_cli_matches_fixture(fixture_a_path, fixture_a, tmp_path):
    out = tmp_path / "out.pt"
    proc = subprocess.run([sys.executable, "-m", "tagging.verify", str(fixture_a_path), "--save", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "OK: worst" in proc.stdout
    res = torch.load(out, weights_only=True)
    ref = fixture_a["outputs"]
    assert (res["logits"] - ref["logits"]).abs().max() < 1e-4
    assert (res["probs"] - ref["probs"]).abs().max() < 1e-4
    assert torch.equal(res["targets"], ref["targets"])
    assert (res["raw_logits"] - ref["logits"]).abs().max() < 1e-4
    assert (res["openset_logits"] - fixture_a["openset"]["logits"]).abs().max() < 1e-4


def test_intermediates_match(fixture_a):
    res, got = verify.run(fixture_a)
    diffs = dict(verify.compare(fixture_a, res, got))
    for name in ("intermediates.swin_patch_embed_img0", "intermediates.swin_layer2_out",
                 "intermediates.visual_encoder_out", "intermediates.image_embeds",
                 "intermediates.label_embed_reweight", "intermediates.tagging_head_layer0_crossattn_out",
                 "intermediates.tagging_embed", "preprocessed vs inputs.image", "openset.targets"):
        assert diffs[name] < 1e-4, (name, diffs[name])
    # the raw images through our preprocessing give the official tensor bit for bit
    assert diffs["preprocessed vs inputs.image"] == 0.0


def test_verify_without_outputs_and_on_broken_weights(fixture_a, tmp_path, capsys):
    stripped = {k: v for k, v in fixture_a.items() if k not in ("outputs", "intermediates")}
    stripped["openset"] = {"label_embed": fixture_a["openset"]["label_embed"]}
    path = tmp_path / "stripped.pt"
    torch.save(stripped, path)
    # only the preprocessing can be compared: nothing of the model was, so the check fails (and still saves)
    assert verify.main([str(path), "--save", str(tmp_path / "o.pt")]) == 1
    out = capsys.readouterr().out
    assert "outputs.logits" not in out and "openset.logits" not in out
    assert "preprocessed vs inputs.image" in out  # the stored inputs still are compared
    assert out.splitlines()[-1] == f"FAIL: nothing compared: {path} stores no model outputs or intermediates"
    res = torch.load(tmp_path / "o.pt", weights_only=True)
    assert (res["logits"] - fixture_a["outputs"]["logits"]).abs().max() < 1e-4
    assert torch.equal(res["targets"], fixture_a["outputs"]["targets"])

    broken = dict(fixture_a)
    broken["state_dict"] = dict(fixture_a["state_dict"])
    broken["state_dict"]["fc.bias"] = fixture_a["state_dict"]["fc.bias"] + 0.01
    path = tmp_path / "broken.pt"
    torch.save(broken, path)
    assert verify.main([str(path)]) == 1
    assert "FAIL" in capsys.readouterr().out


def _tagger_for_fixture(tmp_path, fixture_a, meta_a, **kwargs) -> RAMPlusTagger:
    ckpt = tmp_path / "ram_plus_tiny_A.pth"
    torch.save({"model": fixture_a["state_dict"]}, ckpt)
    kwargs.setdefault("batch_size", 1)
    tagger = RAMPlusTagger(variant="tiny", checkpoint=str(ckpt), model_kwargs=model_kwargs_from_official(meta_a),
                           tag_list=meta_a["tags_en"], tag_list_zh=meta_a["tags_zh"],
                           class_thresholds=meta_a["class_threshold"], **kwargs)
    tagger.setup("cpu")
    return tagger


def test_tagger_reproduces_official_tags(tmp_path, fixture_a, meta_a):
    tagger = _tagger_for_fixture(tmp_path, fixture_a, meta_a)
    images = [t.numpy() for t in fixture_a["inputs"]["raw_uint8"]]
    results = tagger.tag(images)
    for b, (tags, want_en, want_zh) in enumerate(zip(results, meta_a["outputs_tags"]["tags_en"],
                                                     meta_a["outputs_tags"]["tags_zh"])):
        assert sorted(tags.names) == sorted(want_en.split(" | "))
        assert sorted(t.name_zh for t in tags) == sorted(s.strip() for s in want_zh.split(" | "))
        assert all(t.source == TagSource.CLOSED_SET for t in tags)
        scores = tags.scores
        assert np.all(np.diff(scores) <= 0)  # score order
        probs = fixture_a["outputs"]["probs"][b]
        for t in tags:
            assert abs(t.score - probs[meta_a["tags_en"].index(t.name)].item()) < 1e-4


def test_tagger_openset_file_and_thresholds(tmp_path, fixture_a, meta_a):
    from safetensors.torch import save_file

    cats = meta_a["openset"]["categories"]
    path = tmp_path / "open.safetensors"
    save_file({"label_embed": fixture_a["openset"]["label_embed"].contiguous()}, str(path),
              metadata={"tags": json.dumps(cats), "descriptions_per_tag": "51", "format": "openvocab-openset-v1"})
    images = [t.numpy() for t in fixture_a["inputs"]["raw_uint8"]]
    replace = _tagger_for_fixture(tmp_path, fixture_a, meta_a, openset=str(path), openset_mode="replace")
    got = replace.tag(images)
    for tags, want in zip(got, meta_a["openset"]["tags"]):
        assert sorted(tags.names) == sorted(want.split(" | "))
        assert all(t.source == TagSource.OPEN_SET and t.name_zh is None for t in tags)
    # a per-tag threshold above the tag's probability removes just that tag
    p = torch.sigmoid(fixture_a["openset"]["logits"][1, cats.index("Jiaozi")]).item()
    strict = _tagger_for_fixture(tmp_path, fixture_a, meta_a, openset=str(path), openset_mode="replace",
                                 openset_thresholds={"Jiaozi": min(1.0, p + 1e-3)})
    assert sorted(strict.tag(images)[1].names) == sorted(set(meta_a["openset"]["tags"][1].split(" | ")) - {"Jiaozi"})
    added = _tagger_for_fixture(tmp_path, fixture_a, meta_a, openset=str(path), openset_mode="add")
    for tags, want_c, want_o in zip(added.tag(images), meta_a["outputs_tags"]["tags_en"], meta_a["openset"]["tags"]):
        assert sorted(tags.names) == sorted(want_c.split(" | ") + want_o.split(" | "))


def test_bf16_autocast_gives_nearly_the_same_tags(tmp_path, fixture_a, meta_a):
    tagger = _tagger_for_fixture(tmp_path, fixture_a, meta_a, batch_size=2)
    images = [t.numpy() for t in fixture_a["inputs"]["raw_uint8"]]
    fp32 = tagger.tag(images)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low_logits = tagger.logits(images)[0]
        bf16 = tagger.tag(images)
    assert low_logits.dtype == torch.float32  # handed back in float32 for thresholding
    probs = fixture_a["outputs"]["probs"]
    assert (torch.sigmoid(low_logits) - probs).abs().max() < 0.05
    th = torch.tensor(meta_a["class_threshold"])
    for b, (a, c) in enumerate(zip(fp32, bf16)):
        flipped = set(a.names) ^ set(c.names)
        # only tags whose fp32 probability lies within 0.05 of their threshold may flip
        assert all(abs(probs[b, meta_a["tags_en"].index(n)] - th[meta_a["tags_en"].index(n)]) < 0.05 for n in flipped)
        assert len(flipped) <= 1 and len(set(a.names) & set(c.names)) >= len(a.names) - 1
