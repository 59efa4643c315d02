"""RAMTagger stage: built from its config, tiny random weights on the demo images, the official tag data
(English and Chinese names, thresholds) through the hub look-up, missing files, validation."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from openvocab.checkpoint import CheckpointError
from openvocab.config import load_config
from openvocab.hub import MissingFileError
from openvocab.images import load_image
from openvocab.build import build_pipeline
from openvocab.registry import TAGGERS
from openvocab.structures import Tags, TagSource
from tagging.ram import RAMTagger, build_ram_tiny
from tagging.recognize_anything.tag_lists import TINY_TAGS, read_lines

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def demo_images() -> list[np.ndarray]:
    paths = sorted((ROOT / "demo" / "images").glob("*.jpg"))
    assert paths
    return [load_image(str(p))[0] for p in paths]


@pytest.fixture()
def official_data(monkeypatch, shared_dir) -> Path:
    """The official 4585-tag files (shared with RAM++) found through the checkpoint dirs."""
    folder = shared_dir / "data" / "ram_plus"
    monkeypatch.setenv("OPENVOCAB_CHECKPOINT_DIR", str(folder))
    return folder


def test_config_builds_the_stage_and_names_its_files(monkeypatch, tmp_path):
    cfg = load_config("tagger_ram")
    tagger = build_pipeline(cfg).tagger
    assert isinstance(tagger, RAMTagger) and tagger.variant == "swin_l_384" and tagger.tag_language == "en"
    assert tagger.required_files() == ["ram_swin_large_14m.pth", "ram_tag_list.txt", "ram_tag_list_chinese.txt",
                                       "ram_tag_list_threshold.txt"]
    ckpt = tagger.remote_files()[0]
    assert ckpt.hf_repo == "xinyu1205/recognize_anything_model" and ckpt.sha256 is None
    monkeypatch.setenv("OPENVOCAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("OPENVOCAB_CHECKPOINT_DIR", raising=False)
    with pytest.raises(MissingFileError, match="ram_swin_large_14m.pth") as err:
        RAMTagger(tag_list=["a", "b"]).setup("cpu")  # the tag files are not needed for a custom list
    assert "https://huggingface.co/xinyu1205/recognize_anything_model/blob/main/ram_swin_large_14m.pth" \
        in str(err.value) and "--checkpoint-dir" in str(err.value)


def test_tiny_random_weights_tag_the_demo_images(demo_images):
    cfg = load_config("tagger_ram", ["tagger.variant=tiny", "tagger.checkpoint=None"])
    tagger = build_pipeline(cfg).tagger
    tagger.setup("cpu")
    assert tagger.class_names == list(TINY_TAGS)
    out = tagger.tag(demo_images)
    assert len(out) == len(demo_images) and all(isinstance(t, Tags) for t in out)
    closed, opened = tagger.logits(demo_images)
    assert closed.shape == (len(demo_images), len(TINY_TAGS)) and opened is None
    probs = torch.sigmoid(closed).numpy()
    for b, tags in enumerate(out):
        assert set(tags.names) == {TINY_TAGS[i] for i in np.nonzero(probs[b] > 0.5)[0]}
        assert np.all(np.diff(tags.scores) <= 0) and all(t.source == TagSource.CLOSED_SET for t in tags)
    assert sum(len(t) for t in out) > 0
    # the loader workers' resize gives the same tags
    prepared = [tagger.prepare(im) for im in demo_images]
    assert [t.names for t in tagger.tag(demo_images, prepared)] == [t.names for t in out]


def test_official_tags_english_and_chinese(official_data, demo_images, tmp_path):
    torch.manual_seed(0)
    ckpt = tmp_path / "ram_tiny_4585.pth"
    torch.save({"model": build_ram_tiny(num_classes=4585).state_dict()}, ckpt)
    en = RAMTagger(variant="tiny", checkpoint=str(ckpt), class_thresholds=None, batch_size=2)
    en.setup("cpu")
    names = read_lines(official_data / "ram_tag_list.txt")
    zh = [n.strip() for n in read_lines(official_data / "ram_tag_list_chinese.txt")]
    assert en.class_names == names and en.delete_tag_index == []
    th = en.closed.thresholds
    assert (th == np.float32(0.65)).sum() == 3414 and (th == 1.0).sum() == 10
    tags_en = en.tag(demo_images)
    assert sum(len(t) for t in tags_en) > 0
    for tags in tags_en:
        for t in tags:
            i = names.index(t.name)
            assert t.name_zh == zh[i] and t.score > th[i]
    chinese = RAMTagger(variant="tiny", checkpoint=str(ckpt), tag_language="zh", batch_size=2)
    chinese.setup("cpu")
    assert chinese.class_names == zh and "乘船" in chinese.class_names
    for a, b in zip(tags_en, chinese.tag(demo_images)):
        assert [t.name for t in b] == [t.name_zh for t in a] and [t.name_zh for t in b] == [t.name_zh for t in a]
        assert np.allclose(a.scores, b.scores)


def test_checkpoint_must_fit_the_tag_list(tmp_path):
    ckpt = tmp_path / "ram_tiny.pth"
    torch.save({"model": build_ram_tiny(num_classes=len(TINY_TAGS)).state_dict()}, ckpt)
    ok = RAMTagger(variant="tiny", checkpoint=str(ckpt), tag_list=list(TINY_TAGS), threshold=0.5)
    x = [np.zeros((40, 30, 3), np.uint8)]
    assert ok.logits(x)[0].shape == (1, len(TINY_TAGS))
    with pytest.raises(CheckpointError, match="30 tag embeddings"):
        RAMTagger(variant="tiny", checkpoint=str(ckpt), tag_list=["a", "b"]).setup("cpu")
    with pytest.raises(CheckpointError, match="missing keys"):
        RAMTagger(variant="tiny", checkpoint=str(ckpt), tag_list=list(TINY_TAGS),
                  model_kwargs=dict(decoder_layers=3)).setup("cpu")


def test_registry_and_validation():
    assert TAGGERS.get("RAMTagger") is RAMTagger
    for kw in [dict(variant="huge"), dict(tag_language="fr"), dict(openset_mode="replace"), dict(threshold=2.0),
               dict(batch_size=0), dict(tag_list=[])]:
        with pytest.raises(ValueError):
            RAMTagger(**kw)
    with pytest.raises(ValueError, match="Chinese"):
        RAMTagger(variant="tiny", checkpoint=None, tag_language="zh").setup("cpu")  # the tiny tags have none
    with pytest.raises(ValueError, match="out of range"):
        RAMTagger(variant="tiny", checkpoint=None, delete_tag_index=[30]).setup("cpu")
    with pytest.raises(ValueError, match="224 or 384"):
        RAMTagger(variant="swin_l_384", checkpoint=None, tag_list=["a"], model_kwargs=dict(image_size=300)).setup("cpu")
