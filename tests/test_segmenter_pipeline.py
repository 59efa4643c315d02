"""The segmenter hooks of the pipeline: a segmenter in place of detector + mask head, a stuff segmenter on the tags
that are not boxable; the instance helpers they use (clipping, merging, concatenation, mask boxes)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from openvocab.boxes import clip_instances, merge_instances
from openvocab.masks import decode_mask, encode_mask, mask_box
from openvocab.pipeline import Pipeline
from openvocab.structures import Concept, Detections, ImageInfo, Instances, Regions

PLUGINS = Path(__file__).parent / "plugins"


@pytest.fixture(autouse=True)
def plugins(monkeypatch):
    monkeypatch.syspath_prepend(str(PLUGINS))
    import third_party  # noqa: F401
    import toy_plugin  # noqa: F401


def _images():
    bright = np.full((40, 80, 3), 200, np.uint8)  # BrightnessTagger: 'bright' (not boxable here) and 'box'
    dark = np.full((30, 20, 3), 10, np.uint8)  # 'dark' only
    return [bright, dark], [ImageInfo("bright.png", 80, 40), ImageInfo("dark.png", 20, 30)]


def test_segmenter_replaces_detector_and_mask_head():
    pipe = Pipeline(tagger=dict(type="BrightnessTagger"), segmenter=dict(type="CornerSegmenter"),
                    boxable_filter=dict(type="ListBoxableFilter", not_boxable=["bright"]))
    bright, dark = pipe(*_images())
    assert bright.detections.labels == ("box",)  # boxable tags only
    np.testing.assert_allclose(bright.detections.boxes, [[0, 0, 10, 10]])  # clipped by the pipeline
    assert decode_mask(bright.regions.masks[0]).sum() == 100
    assert dark.detections.labels == ("dark",) and len(dark.regions) == 1
    assert pipe.stage_configs["segmenter"] == {"type": "CornerSegmenter"}


def test_stuff_segmenter_adds_the_tags_without_boxes_after_the_detector_boxes():
    pipe = Pipeline(tagger=dict(type="BrightnessTagger"), detector=dict(type="CentreBoxDetector"),
                    mask_head=dict(type="BoxMaskHead"), stuff_segmenter=dict(type="TopHalfSegmenter"),
                    boxable_filter=dict(type="ListBoxableFilter", not_boxable=["bright", "dark"]))
    bright, dark = pipe(*_images())
    assert bright.detections.labels == ("box", "bright")
    np.testing.assert_allclose(bright.detections.boxes, [[20, 10, 60, 30], [0, 0, 80, 20]])
    assert bright.regions.captions == ("a 40x20 box", "")  # the mask head's captions kept, none for stuff
    assert decode_mask(bright.regions.masks[1])[:20].all() and not decode_mask(bright.regions.masks[1])[20:].any()
    assert dark.detections.labels == ("dark",) and dark.regions.mask_scores.tolist() == pytest.approx([0.7])


def test_stuff_segmenter_alone_gives_regions_without_a_detector():
    pipe = Pipeline(tagger=dict(type="BrightnessTagger"), stuff_segmenter=dict(type="TopHalfSegmenter"),
                    boxable_filter=dict(type="ListBoxableFilter", not_boxable=["bright"]))
    bright, _ = pipe(*_images())
    assert bright.detections.labels == ("bright",) and len(bright.regions) == 1


def test_which_stages_go_together():
    with pytest.raises(ValueError, match="replaces detector"):
        Pipeline(tagger=dict(type="BrightnessTagger"), segmenter=dict(type="CornerSegmenter"),
                 detector=dict(type="CentreBoxDetector"))
    with pytest.raises(ValueError, match="segmenter needs tags"):
        Pipeline(segmenter=dict(type="CornerSegmenter"))
    with pytest.raises(ValueError, match="configure a mask head"):
        Pipeline(tagger=dict(type="BrightnessTagger"), detector=dict(type="CentreBoxDetector"),
                 stuff_segmenter=dict(type="TopHalfSegmenter"))
    with pytest.raises(ValueError, match="configure a tagger"):
        Pipeline(vocabulary="cat", stuff_segmenter=dict(type="TopHalfSegmenter"))


def _inst(boxes, labels, scores, concepts=None):
    masks = []
    for x1, y1, x2, y2 in boxes:
        m = np.zeros((10, 10), bool)
        m[max(int(y1), 0):int(y2), max(int(x1), 0):int(x2)] = True
        masks.append(encode_mask(m))
    return Instances(Detections(boxes=boxes, scores=scores, labels=labels),
                     Regions(masks=masks, mask_scores=scores, concepts=concepts))


def test_instance_helpers_keep_masks_with_their_boxes():
    a = _inst([[0, 0, 5, 5], [-3, 2, 4, 8]], ("cat", "dog"), [0.9, 0.4], concepts=((Concept("x", 1.0),), ()))
    b = _inst([[0, 0, 5, 5], [6, 6, 9, 9]], ("dog", "dog"), [0.8, 0.7])
    both = Instances.concatenate([a, b])
    assert both.detections.labels == ("cat", "dog", "dog", "dog") and both.regions.concepts[2:] == ((), ())
    merged = merge_instances([a, b], agnostic_nms_iou=0.5)  # b's first box duplicates a's first
    assert merged.detections.labels == ("cat", "dog", "dog")
    assert merged.detections.scores.tolist() == pytest.approx([0.9, 0.7, 0.4])
    for box, mask in zip(merged.detections.boxes, merged.regions.masks):  # each mask followed its box
        np.testing.assert_allclose(mask_box(decode_mask(mask)), np.clip(box, 0, 10))
    clipped = clip_instances(_inst([[-3, 2, 4, 8], [12, 0, 15, 5]], ("a", "b"), [0.5, 0.6]), 10, 10)
    np.testing.assert_allclose(clipped.detections.boxes, [[0, 2, 4, 8]])
    assert clipped.detections.labels == ("a",) and len(clipped.regions) == 1
    with pytest.raises(ValueError, match="lengths differ"):
        Instances(Detections(boxes=[[0, 0, 1, 1]], scores=[1.0], labels=("a",)), Regions())


def test_mask_box_is_the_masks_pixel_extent():
    m = np.zeros((6, 8), bool)
    m[2, 3] = True
    np.testing.assert_array_equal(mask_box(m), [3, 2, 4, 3])
    m[4:6, 0:2] = True
    np.testing.assert_array_equal(mask_box(m), [0, 2, 4, 6])
    np.testing.assert_array_equal(mask_box(np.zeros((3, 3), bool)), [0, 0, 0, 0])
