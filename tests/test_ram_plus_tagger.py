"""RAMPlusTagger stage: tiny random pipeline, official tag data via the hub, open-set files."""
from __future__ import annotations

import hashlib
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
from tagging.recognize_anything.tag_lists import official_tag_list
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


def test_tag_file_sha256s_are_those_of_the_official_files(shared_dir):
    from openvocab.hub import sha256sum
    from tagging.recognize_anything.weights import TAG_FILES

    for spec in TAG_FILES.values():
        assert spec.sha256 == sha256sum(shared_dir / "data" / "ram_plus" / spec.filename), spec.filename
        assert spec.url.endswith(spec.filename) and "7cb804a8609e9f4b1a50b7f31436d2df40bb9481" in spec.url


def test_checkpoint_from_the_hub_is_checked_against_its_published_sha256(monkeypatch, tmp_path):
    import huggingface_hub

    from openvocab.hub import resolve
    from tagging.ram_plus.weights import CHECKPOINTS

    spec = CHECKPOINTS["ram_plus_swin_large_14m"]
    assert spec.hf_repo == "xinyu1205/recognize-anything-plus-model"
    assert spec.sha256 == "497c178836ba66698ca226c7895317e6e800034be986452dbd2593298d50e87d"  # Git LFS oid
    monkeypatch.setenv("OPENVOCAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("OPENVOCAB_CHECKPOINT_DIR", raising=False)
    blobs = tmp_path / "hf" / "blobs"
    blobs.mkdir(parents=True)
    calls = []

    def fake_download(repo, filename, local_files_only=False):  # HF cache layout: snapshot link -> blob
        calls.append((repo, filename))
        link = tmp_path / "hf" / "snapshots" / filename
        link.parent.mkdir(parents=True, exist_ok=True)
        link.unlink(missing_ok=True)
        link.symlink_to(blobs / blob_name)
        return str(link)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    # stored under the published digest (as a download announcing it as ETag is), but not that file:
    # the content is hashed, the name proves nothing; the file is refused and leaves the cache
    blob_name = spec.sha256
    (blobs / blob_name).write_bytes(b"weights")
    with pytest.raises(MissingFileError, match=f"has sha256 {hashlib.sha256(b'weights').hexdigest()}"):
        resolve(spec)
    assert calls == [("xinyu1205/recognize-anything-plus-model", "ram_plus_swin_large_14m.pth")]
    assert not (blobs / blob_name).exists() and not (tmp_path / "hf" / "snapshots" / spec.filename).is_symlink()
    blob_name = "plain-copy"  # not stored under a hash at all: hashed just the same
    (blobs / blob_name).write_bytes(b"other")
    with pytest.raises(MissingFileError, match="expected 497c1788"):
        resolve(spec)


def test_preprocess_grey_rgba_and_bad_inputs():
    from PIL import Image

    from tagging.recognize_anything.preprocess import preprocess

    rng = np.random.default_rng(3)
    grey = rng.integers(0, 256, (40, 70), dtype=np.uint8)
    rgba = rng.integers(0, 256, (40, 70, 4), dtype=np.uint8)
    for image, mode in [(grey, "L"), (grey[:, :, None], "L"), (rgba, "RGBA")]:
        rgb = np.asarray(Image.fromarray(image.squeeze(), mode).convert("RGB"))  # the official conversion
        assert torch.equal(preprocess([image], image_size=32), preprocess([rgb], image_size=32))
    # resize ignores the aspect ratio; normalisation by hand for a constant image
    x = preprocess([np.full((10, 30, 3), 255, np.uint8)], image_size=16)
    assert x.shape == (1, 3, 16, 16)
    torch.testing.assert_close(x[0, :, 0, 0], (1 - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor([0.229, 0.224, 0.225]))
    for bad in [np.zeros((4, 4, 2), np.uint8), np.zeros((4, 4, 3), np.float32), np.zeros((0, 4, 3), np.uint8), "img"]:
        with pytest.raises(ValueError):
            preprocess([bad], image_size=16)
    with pytest.raises(ValueError, match="no images"):
        preprocess([], image_size=16)


def test_openvocab_tag_command_with_tiny_random_config(capsys, shared_dir):
    from openvocab.cli import main as cli_main
    from openvocab.images import load_image

    photo = shared_dir / "images" / "demo4.jpg"
    assert cli_main(["tag", str(photo), "--config", "tiny_random", "--json"]) == 0
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert row["file"] == str(photo)
    scores = [t["score"] for t in row["tags"]]
    assert sorted(t["name"] for t in row["tags"]) == sorted(TINY_TAGS)  # class_thresholds=0: all tags
    assert scores == sorted(scores, reverse=True) and {t["source"] for t in row["tags"]} == {"closed-set"}
    # the same numbers as the stage itself (tiny variant, seed 0) on the loaded photo
    image, _ = load_image(str(photo))
    direct = _tiny(class_thresholds=0.0).tag([image])[0]
    assert [t["name"] for t in row["tags"]] == direct.names
    np.testing.assert_allclose(scores, np.round(direct.scores, 4), atol=1e-4)
    assert cli_main(["tag", str(photo), "--config", "tiny_random"]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith(f"{photo}: {direct.names[0]} (")


def test_threshold_is_strict_and_in_float32(monkeypatch):
    # the official decision: sigmoid(logit) > threshold, both float32 (0.65 is 0.6499999762)
    tagger = _tiny(class_thresholds=[0.65] * len(TINY_TAGS))
    at = torch.logit(torch.tensor(0.65))  # sigmoid(at) == float32(0.65) exactly
    assert torch.sigmoid(at) == torch.tensor(0.65)
    above = torch.nextafter(torch.nextafter(at, torch.tensor(9.0)), torch.tensor(9.0))
    logits = torch.full((1, len(TINY_TAGS)), -9.0)
    logits[0, 0], logits[0, 1] = at, above
    monkeypatch.setattr(tagger, "logits", lambda images, prepared=None: (logits, None))
    tags = tagger.tag([np.zeros((8, 8, 3), np.uint8)])[0]
    assert tags.names == [TINY_TAGS[1]] and tags[0].score == pytest.approx(0.65, abs=1e-6)
