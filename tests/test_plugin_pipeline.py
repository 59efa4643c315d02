"""A component from a package outside openvocab/tagging/grounding runs in a pipeline built from a config."""
from pathlib import Path

import numpy as np
import pytest
from mmengine.config import Config
from pycocotools import mask as mask_utils

from openvocab.build import build_pipeline
from openvocab.pipeline import Pipeline, parse_vocabulary
from openvocab.structures import ImageInfo, TagSource

PLUGINS = Path(__file__).parent / "plugins"


@pytest.fixture
def toy_cfg(monkeypatch):
    monkeypatch.syspath_prepend(str(PLUGINS))
    return Config.fromfile(str(PLUGINS / "toy_pipeline.py"))


def _images():
    bright = np.full((40, 80, 3), 200, np.uint8)
    dark = np.full((30, 20, 3), 10, np.uint8)
    return [bright, dark], [ImageInfo("bright.png", 80, 40), ImageInfo("dark.png", 20, 30)]


def test_plugin_components_run_in_config_built_pipeline(toy_cfg):
    pipe = build_pipeline(toy_cfg)
    assert type(pipe.tagger).__module__ == "toy_plugin"
    images, infos = _images()
    bright, dark = pipe(images, infos)
    # every tag stays an image tag; only boxable ones reach the detector
    assert {(t.name, t.boxable) for t in bright.tags} == {("bright", False), ("box", True)}
    assert pipe.detector.calls == [["box ."]]
    assert bright.detections.labels == ("box",)
    np.testing.assert_allclose(bright.detections.boxes, [[20, 10, 60, 30]])
    m = mask_utils.decode(dict(bright.regions.masks[0], counts=bright.regions.masks[0]["counts"].encode()))
    assert m.shape == (40, 80) and m.sum() == 40 * 20 and m[10:30, 20:60].all()
    assert bright.regions.captions == ("a 40x20 box",)
    assert [t.name for t in dark.tags] == ["dark"] and len(dark.detections) == 0
    assert len(dark.regions) == 0


def test_user_vocabulary_replaces_tagger_and_maps_names_back(toy_cfg):
    pipe = build_pipeline(toy_cfg, vocabulary="Fire Hydrant, st. bernard,  fire hydrant")
    assert pipe.tagger is None
    images, infos = _images()
    res = pipe(images[:1], infos[:1])[0]
    assert [t.name for t in res.tags] == ["Fire Hydrant", "st. bernard"]
    assert all(t.source is TagSource.USER and t.boxable for t in res.tags)
    assert pipe.detector.calls == [["fire hydrant . st bernard ."]]
    assert res.detections.labels == ("Fire Hydrant", "st. bernard")


def test_long_vocabulary_is_run_as_several_chunks(toy_cfg):
    pipe = build_pipeline(toy_cfg, vocabulary=[f"t{i}" for i in range(20)])
    pipe(*[x[:1] for x in _images()])
    (chunks,) = pipe.detector.calls
    assert len(chunks) > 1 and sum(c.count(".") for c in chunks) == 20


def test_stage_presence_rules(toy_cfg):
    with pytest.raises(ValueError, match="vocabulary"):
        Pipeline(detector=dict(type="CentreBoxDetector"))
    with pytest.raises(ValueError, match="mask head needs a detector"):
        Pipeline(mask_head=dict(type="BoxMaskHead"), vocabulary="cat")
    with pytest.raises(ValueError, match="precision"):
        Pipeline(vocabulary="cat", precision="int4")
    tags_only = Pipeline(tagger=dict(type="BrightnessTagger"))
    res = tags_only(*_images())
    assert res[0].regions is None and len(res[0].detections) == 0 and "box" in res[0].tags.names


def test_bf16_autocast_path_runs(toy_cfg):
    pipe = build_pipeline(toy_cfg, precision="bf16")
    res = pipe(*_images())
    assert res[0].detections.labels == ("box",)


def test_parse_vocabulary():
    assert parse_vocabulary("cat, dog . Cat,,  fire   hydrant .") == ["cat", "dog", "fire hydrant"]
    assert parse_vocabulary(["st. bernard", "cat"]) == ["st. bernard", "cat"]
    with pytest.raises(ValueError):
        parse_vocabulary(" , . ")
