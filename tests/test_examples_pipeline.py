"""The exemplar stage in the pipeline's ``locate`` step, with a toy stage whose answer is known (it finds the exact
copies of each example's patch): its boxes come after the detector's, clipped; with a mask head every box is
segmented by it and the stage's own masks are kept; with a segmenter its masks join the segmenter's; alone, its
masks are the results'. The Python API takes examples per call; a rebuilt pipeline (Ray actors) keeps them."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from openvocab import Labeler
from openvocab.build import build_pipeline
from openvocab.config import load_config
from openvocab.examples import ExampleMatches, ExampleSet
from openvocab.masks import decode_mask, encode_mask, mask_box
from openvocab.pipeline import Pipeline
from openvocab.stages import ExemplarDetector
from openvocab.structures import Detections, ImageInfo, Regions

PLUGINS = Path(__file__).parent / "plugins"


@pytest.fixture(autouse=True)
def _plugins(monkeypatch):
    monkeypatch.syspath_prepend(str(PLUGINS))
    import third_party  # noqa: F401  (CornerSegmenter)
    import toy_plugin  # noqa: F401  (CentreBoxDetector, BoxMaskHead)


class CopyFinder(ExemplarDetector):
    """Finds every exact copy of each class's first example patch (a disc mask inside it when ``masks``);
    ``overhang`` pushes every box that many pixels past the image's right edge; ``stray`` labels boxes so."""

    def __init__(self, *, masks: bool = True, overhang: int = 0, stray: str = "") -> None:
        self.gives_masks, self.overhang, self.stray = masks, overhang, stray
        self.prepared_sets = 0

    def prepare_examples(self, examples):
        self.prepared_sets += 1
        return [f"CopyFinder: {len(examples.classes)} classes"]

    def detect_examples(self, images, examples, prepared=None):
        out = []
        for image in images:
            boxes, labels, masks = [], [], []
            for name in examples.classes:
                patch = examples.of_class(name)[0].crop()
                ph, pw = patch.shape[:2]
                for y in range(image.shape[0] - ph + 1):
                    for x in range(image.shape[1] - pw + 1):
                        if np.array_equal(image[y:y + ph, x:x + pw], patch):
                            boxes.append([x, y, x + pw + self.overhang, y + ph])
                            labels.append(self.stray or name)
                            m = np.zeros(image.shape[:2], bool)
                            yy, xx = np.mgrid[0:ph, 0:pw]
                            m[y:y + ph, x:x + pw] = (yy - ph / 2) ** 2 + (xx - pw / 2) ** 2 < (min(ph, pw) / 2) ** 2
                            masks.append(m)
            dets = Detections(boxes=np.asarray(boxes, np.float32).reshape(-1, 4), scores=[0.9] * len(boxes),
                              labels=tuple(labels))
            regions = Regions(masks=tuple(encode_mask(m) for m in masks), mask_scores=[0.8] * len(masks))
            out.append(ExampleMatches(dets, regions if self.gives_masks else None))
        return out


def _scene(seed: int = 0):
    """A 40 x 60 noise picture with a 6 x 8 patch pasted at (5, 4) and (40, 28); the examples: that patch."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 255, (40, 60, 3), dtype=np.uint8)
    patch = rng.integers(0, 255, (6, 8, 3), dtype=np.uint8)
    image[4:10, 5:13] = patch
    image[28:34, 40:48] = patch
    return image, ExampleSet.from_boxes(image, [[5, 4, 13, 10]], ["patch"])


def _run(pipe: Pipeline, image, examples=None):
    (result,) = pipe.run([image], [ImageInfo(file="x.png", width=image.shape[1], height=image.shape[0])],
                         examples=examples)
    return result


def test_with_a_mask_head_every_box_is_segmented_and_the_stages_masks_are_kept():
    image, examples = _scene()
    pipe = Pipeline(detector=dict(type="CentreBoxDetector"), mask_head=dict(type="BoxMaskHead"),
                    exemplar_detector=CopyFinder(), vocabulary="thing", examples=examples)
    assert pipe.class_names() == ["thing", "patch"]
    r = _run(pipe, image)
    assert r.detections.labels == ("thing", "patch", "patch")  # the detector's box, then the stage's
    np.testing.assert_array_equal(r.detections.boxes[1:], [[5, 4, 13, 10], [40, 28, 48, 34]])
    masks = [decode_mask(m) for m in r.regions.masks]
    assert masks[0].sum() == 30 * 20  # the detector's box: the mask head's mask (the box)
    for m, b in zip(masks[1:], r.detections.boxes[1:]):  # the stage's discs inside its boxes
        assert 0 < m.sum() < 6 * 8 and (mask_box(m)[:2] >= b[:2]).all() and (mask_box(m)[2:] <= b[2:]).all()
    assert r.regions.captions == ("a 30x20 box", "a 8x6 box", "a 8x6 box")  # the mask head's, for every box
    np.testing.assert_allclose(r.regions.mask_scores, [1.0, 0.8, 0.8])
    # a stage without masks: the mask head segments its boxes like the detector's
    boxes_only = Pipeline(detector=dict(type="CentreBoxDetector"), mask_head=dict(type="BoxMaskHead"),
                          exemplar_detector=CopyFinder(masks=False), vocabulary="thing", examples=examples)
    assert all(decode_mask(m).sum() == 48 for m in _run(boxes_only, image).regions.masks[1:])


def test_with_a_segmenter_alone_or_beside_a_detector_without_a_mask_head():
    image, examples = _scene()
    seg = _run(Pipeline(segmenter=dict(type="CornerSegmenter"), exemplar_detector=CopyFinder(), vocabulary="thing",
                        examples=examples), image)
    assert seg.detections.labels == ("thing", "patch", "patch") and len(seg.regions) == 3
    with pytest.raises(ValueError, match="gives boxes only"):
        Pipeline(segmenter=dict(type="CornerSegmenter"), exemplar_detector=CopyFinder(masks=False), vocabulary="x")
    with pytest.raises(ValueError, match="stuff segmenter adds masks"):
        Pipeline(tagger=dict(type="BrightnessTagger"), stuff_segmenter=dict(type="TopHalfSegmenter"),
                 exemplar_detector=CopyFinder(masks=False))
    alone = _run(Pipeline(exemplar_detector=CopyFinder(), examples=examples), image)  # no tags, no detector
    assert alone.tags.names == [] and alone.detections.labels == ("patch", "patch")
    assert all(decode_mask(m).sum() < 48 for m in alone.regions.masks)  # the stage's own masks
    boxes = _run(Pipeline(detector=dict(type="CentreBoxDetector"), exemplar_detector=CopyFinder(),
                          vocabulary="thing", examples=examples), image)
    assert boxes.detections.labels == ("thing", "patch", "patch") and boxes.regions is None  # boxes only


def test_boxes_are_clipped_and_labels_must_be_example_classes():
    image, examples = _scene()
    r = _run(Pipeline(exemplar_detector=CopyFinder(overhang=30), examples=examples), image)
    assert r.detections.boxes[:, 2].max() == 60  # clipped to the image, like a detector's
    with pytest.raises(ValueError, match="labelled a box 'cat', which is no example class"):
        _run(Pipeline(exemplar_detector=CopyFinder(stray="cat"), examples=examples), image)
    with pytest.raises(ValueError, match="examples need an exemplar detector"):
        Pipeline(vocabulary="thing", detector=dict(type="CentreBoxDetector"), examples=examples)


def test_the_python_api_takes_examples_per_call(tmp_path):
    image, examples = _scene()
    other, other_examples = _scene(1)
    stage = CopyFinder()
    labeler = Labeler(Pipeline(detector=dict(type="CentreBoxDetector"), mask_head=dict(type="BoxMaskHead"),
                               exemplar_detector=stage, vocabulary="thing"))
    first, second = labeler.label([image, other], examples=examples)
    assert first.detections.labels == ("thing", "patch", "patch") and second.detections.labels == ("thing",)
    assert first.classes == ("thing", "patch")
    # from a file, as --examples takes it
    Image.fromarray(other).save(tmp_path / "ref.png")
    (tmp_path / "ex.json").write_text(json.dumps({
        "images": [{"id": 1, "file_name": "ref.png"}], "categories": [{"id": 1, "name": "part"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [5, 4, 8, 6]}]}))
    (labeled,) = labeler.label([other], examples=tmp_path / "ex.json")
    assert labeled.detections.labels == ("thing", "part", "part") and labeled.classes == ("thing", "part")
    assert labeler.label(image).detections.labels == ("thing",)  # no examples: the text classes only
    alone = Labeler(Pipeline(exemplar_detector=CopyFinder())).label(image, examples=examples)
    assert alone.classes == ("patch",) and alone.detections.labels == ("patch", "patch")
    with pytest.raises(Exception, match="no exemplar detector"):
        Labeler(Pipeline(vocabulary="thing", detector=dict(type="CentreBoxDetector"))).label(image, examples=examples)


def test_a_rebuilt_pipeline_keeps_its_examples():
    image, examples = _scene()
    pipe = build_pipeline(load_config("tiny_examples"), examples=examples, vocabulary="thing")
    again = pipe.build_spec.build()  # what a Ray actor does
    assert again.examples == examples and again.class_names() == ["thing", "patch"]
    assert type(again.exemplar_detector).__name__ == "PrototypeMatcher"
