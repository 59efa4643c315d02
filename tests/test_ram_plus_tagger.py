"""RAMPlusTagger stage: tiny random pipeline, official tag data via the hub, open-set files."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from openvocab.checkpoint import CheckpointError
from openvocab.hub import MissingFileError
from openvocab.registry import TAGGERS
from openvocab.structures import Tags, TagSource
from tagging.ram_plus import RAMPlusTagger, load_openset_embeddings
from tagging.ram_plus.tag_lists import official_tag_list
from tagging.ram_plus.tagger import TINY_TAGS


@pytest.fixture(scope="module")
def images() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, size, dtype=np.uint8) for size in [(120, 160, 3), (97, 61, 3), (64, 64, 3)]]


def _tiny(**kwargs) -> RAMPlusTagger:
    t = TAGGERS.build(dict(type="RAMPlusTagger", variant="tiny", checkpoint=None, **kwargs))
    t.setup("cpu")
    return t


def _openset_file(path, tags, d, *, seed=0, **overrides):
    emb = torch.nn.functional.normalize(torch.randn(len(tags) * d, 512, generator=torch.Generator().manual_seed(seed)),
                                        dim=-1)
    meta = {"tags": json.dumps(tags), "descriptions_per_tag": str(d), "format": "openvocab-openset-v1"}
    meta.update(overrides.pop("meta", {}))
    save_file({"label_embed": overrides.pop("embed", emb).contiguous()}, str(path), metadata=meta)
    return path


def test_tiny_random_pipeline(images):
    tagger = _tiny()
    out = tagger.tag(images)
    assert len(out) == 3 and all(isinstance(t, Tags) for t in out)
    assert sum(len(t) for t in out) > 0
    closed, opened = tagger.logits(images)
    assert closed.shape == (3, len(TINY_TAGS)) and opened is None
    probs = torch.sigmoid(closed).numpy()
    for b, tags in enumerate(out):
        assert set(tags.names) == {TINY_TAGS[i] for i in np.nonzero(probs[b] > 0.5)[0]}
        assert all(t.source == TagSource.CLOSED_SET for t in tags)
        assert np.all(np.diff(tags.scores) <= 0)
    # seeded: same seed same result, other seed other result; batch size does not matter
    again = _tiny(batch_size=1).logits(images)[0]
    assert torch.allclose(again, closed, atol=1e-5)
    assert not torch.allclose(_tiny(seed=1).logits(images)[0], closed, atol=1e-3)
    assert tagger.tag([]) == []


def test_tiny_under_bf16_autocast(images):
    tagger = _tiny()
    ref = tagger.logits(images)[0]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = tagger.logits(images)[0]
        tags = tagger.tag(images)
    assert low.dtype == torch.float32 and len(tags) == 3
    assert (low - ref).abs().max() < 0.2


def test_delete_tag_index(images):
    tagger = _tiny()
    probs = torch.sigmoid(tagger.logits(images)[0])
    b, top = divmod(int(probs.argmax()), probs.shape[1])
    assert probs[b, top] > 0.5
    kept = tagger.tag(images)[b].names
    assert TINY_TAGS[top] in kept
    assert _tiny(delete_tag_index=[top]).tag(images)[b].names == [n for n in kept if n != TINY_TAGS[top]]
    with pytest.raises(ValueError, match="out of range"):
        _tiny(delete_tag_index=[len(TINY_TAGS)])


def test_openset_add_and_replace_with_other_description_count(images, tmp_path):
    path = _openset_file(tmp_path / "open.safetensors", ["zebra crossing", "kite", "mural"], 3)
    base = _tiny()
    added = _tiny(openset=str(path), openset_threshold=0.0)
    closed, opened = added.logits(images)
    assert opened.shape == (3, 3)
    assert torch.allclose(closed, base.logits(images)[0], atol=1e-5)  # closed set untouched
    for tags in added.tag(images):
        open_tags = [t for t in tags if t.source == TagSource.OPEN_SET]
        assert sorted(t.name for t in open_tags) == ["kite", "mural", "zebra crossing"]  # threshold 0
    replaced = _tiny(openset=str(path), openset_mode="replace", openset_threshold=0.0,
                     openset_thresholds={"kite": 1.0})
    c2, o2 = replaced.logits(images)
    assert c2 is None and torch.allclose(o2, opened, atol=1e-5)
    for tags in replaced.tag(images):
        assert sorted(tags.names) == ["mural", "zebra crossing"]
    with pytest.raises(ValueError, match="not in"):
        _tiny(openset=str(path), openset_thresholds={"giraffe": 0.3})


def test_openset_loader_validation(tmp_path):
    good = _openset_file(tmp_path / "good.safetensors", ["a", "b"], 4)
    tags, emb, d = load_openset_embeddings(good)
    assert tags == ["a", "b"] and d == 4 and emb.shape == (8, 512) and emb.dtype == torch.float32
    cases = {
        "format": dict(meta={"format": "other"}),
        "shape": dict(embed=torch.nn.functional.normalize(torch.randn(7, 512), dim=-1)),
        "normalised": dict(embed=torch.randn(8, 512) * 3),
        "duplicate": dict(meta={"tags": json.dumps(["a", "a"])}),
        "metadata": dict(meta={"descriptions_per_tag": "four"}),
    }
    for name, kw in cases.items():
        path = _openset_file(tmp_path / f"{name}.safetensors", ["a", "b"], 4, **kw)
        with pytest.raises(ValueError, match=str(path).replace(".", r"\.")):
            load_openset_embeddings(path)
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="junk"):
        load_openset_embeddings(tmp_path / "junk.safetensors")


def test_ctor_validates_and_does_no_io(tmp_path):
    for kw in [dict(variant="huge"), dict(openset_mode="merge"), dict(openset_mode="replace"),
               dict(openset_threshold=1.5), dict(batch_size=0), dict(tag_list=[])]:
        with pytest.raises(ValueError):
            RAMPlusTagger(**kw)
    missing = RAMPlusTagger(variant="tiny", checkpoint=str(tmp_path / "nope.pth"), tag_list=["a", "b"])
    assert "nope.pth" in missing.required_files()[0]
    with pytest.raises(MissingFileError):
        missing.setup("cpu")


def test_official_files_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("OPENVOCAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("OPENVOCAB_CHECKPOINT_DIR", raising=False)
    with pytest.raises(MissingFileError, match="ram_tag_list"):
        official_tag_list()
    with pytest.raises(MissingFileError, match="ram_plus_swin_large_14m.pth"):
        RAMPlusTagger(tag_list=["a"]).setup("cpu")


def test_official_tag_list_via_checkpoint_dir(monkeypatch, shared_dir):
    monkeypatch.setenv("OPENVOCAB_CHECKPOINT_DIR", str(shared_dir / "data" / "ram_plus"))
    tags = official_tag_list()
    assert len(tags) == 4585 and len(tags.names_zh) == 4585
    th = tags.thresholds
    assert th.dtype == np.float32
    assert (th == np.float32(0.65)).sum() == 3414 and (th == 1.0).sum() == 10 and (th == np.float32(0.8)).sum() == 735
    assert not any(n != n.strip() for n in tags.names_zh)  # official trailing spaces are stripped
    # the fixture's tags sit at their official indices
    assert tags.names[383] == "bee" and tags.names_zh[495] == "乘船" and tags.names[4355] == "video"


def test_checkpoint_with_wrong_class_count(tmp_path):
    src = _tiny()
    ckpt = tmp_path / "tiny.pth"
    torch.save({"model": src.model.state_dict()}, ckpt)
    ok = RAMPlusTagger(variant="tiny", checkpoint=str(ckpt), tag_list=list(TINY_TAGS), threshold=0.5)
    ok.setup("cpu")
    x = [np.zeros((32, 32, 3), np.uint8)]
    assert torch.allclose(ok.logits(x)[0], src.logits(x)[0], atol=1e-6)
    with pytest.raises(CheckpointError, match="label_embed"):
        RAMPlusTagger(variant="tiny", checkpoint=str(ckpt), tag_list=["a", "b"]).setup("cpu")
    with pytest.raises(CheckpointError, match="missing keys"):
        RAMPlusTagger(variant="tiny", checkpoint=str(ckpt), tag_list=list(TINY_TAGS),
                      model_kwargs=dict(depths=(1, 1, 2, 1))).setup("cpu")
