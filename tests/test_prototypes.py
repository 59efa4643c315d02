"""Prototype matching on synthetic scenes where the answer is known: textured shapes pasted at known places, regions
proposed by a mask head's automatic mode (here a mask head that returns the scene's object under each point),
embedded by a fixed deterministic encoder (colour and gradient-orientation histograms inside the region), and
assigned to the nearest example prototype above thresholds calibrated from the examples by leave-one-out. The
prototypes are built from some scenes and scored on others."""
from __future__ import annotations

import numpy as np
import pytest

from grounding.exemplars.matcher import PrototypeMatcher
from grounding.exemplars.prototypes import PrototypeIndex, separating_threshold
from openvocab.examples import Example, ExampleSet, image_digest
from openvocab.masks import decode_mask, encode_mask, mask_box
from openvocab.stages import MaskHead
from openvocab.structures import Regions

RED, WHITE, BLUE = (220, 30, 30), (240, 240, 240), (30, 60, 200)
CLASSES = ("stripes", "checker", "dots")  # stripes and checker share their colours: texture tells them apart


def _texture(kind: str, size: int, rng) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size]
    phase = rng.integers(0, 8)
    if kind == "stripes":  # horizontal red/white stripes
        on = ((y + phase) // 4) % 2 == 0
        return np.where(on[..., None], RED, WHITE)
    if kind == "checker":
        on = (((y + phase) // 4) + ((x + phase) // 4)) % 2 == 0
        return np.where(on[..., None], RED, WHITE)
    if kind == "dots":  # white dots on blue
        on = (((y + phase) % 6) < 2) & (((x + phase) % 6) < 2)
        return np.where(on[..., None], WHITE, BLUE)
    if kind == "yellow":  # a distractor: plain yellow
        return np.broadcast_to(np.array([230, 210, 40]), (size, size, 3))
    if kind == "green noise":  # a distractor: green with noise
        return np.clip(np.array([40, 170, 60]) + rng.normal(0, 25, (size, size, 3)), 0, 255)
    raise ValueError(kind)


def scene(rng, kinds) -> tuple[np.ndarray, np.ndarray, list[tuple[str, np.ndarray, np.ndarray]]]:
    """``(image, instance map, [(kind, box, mask)])``: ``kinds`` pasted at random non-overlapping places on noise."""
    h = w = 160
    image = np.clip(110 + rng.normal(0, 18, (h, w, 3)), 0, 255)
    ids = np.zeros((h, w), np.int32)
    objects = []
    for kind in kinds:
        for _ in range(200):
            size = int(rng.integers(26, 40))
            y0, x0 = int(rng.integers(0, h - size)), int(rng.integers(0, w - size))
            yy, xx = np.mgrid[0:size, 0:size]
            shape = ((yy - size / 2 + 0.5) ** 2 + (xx - size / 2 + 0.5) ** 2 <= (size / 2) ** 2) \
                if kind in ("dots", "green noise") else np.ones((size, size), bool)
            if (ids[y0:y0 + size, x0:x0 + size][shape] == 0).all() and \
                    (ids[max(y0 - 2, 0):y0 + size + 2, max(x0 - 2, 0):x0 + size + 2] == 0).all():
                break
        mask = np.zeros((h, w), bool)
        mask[y0:y0 + size, x0:x0 + size] = shape
        image[mask] = _texture(kind, size, rng)[shape]
        ids[mask] = len(objects) + 1
        objects.append((kind, mask_box(mask), mask))
    return image.astype(np.uint8), ids, objects


class SceneMaskHead(MaskHead):
    """A mask head for the synthetic scenes: a point's mask is the scene's object under it (the background's when
    none), score 1 — the regions are known, so the test measures the matching."""

    def __init__(self, scenes: dict[str, np.ndarray]) -> None:
        self.scenes, self.ids = scenes, None

    def set_image(self, image: np.ndarray) -> None:
        self.ids = self.scenes[image_digest(image)]

    def predict(self, *, boxes=None, points=None, point_labels=None) -> Regions:
        masks = [encode_mask(self.ids == self.ids[int(p[0, 1]), int(p[0, 0])]) for p in points]
        return Regions(masks=tuple(masks), mask_scores=np.ones(len(masks), np.float32))


class HistogramEncoder:
    """A fixed deterministic region encoder: a 4x4x4 RGB histogram and an 8-bin gradient-orientation histogram
    (magnitude-weighted, inside the mask away from its edge), each L2-normalised, side by side."""

    def setup(self, device: str = "cpu") -> None:
        pass

    def embed(self, image, boxes, masks=None) -> np.ndarray:
        from scipy import ndimage

        gray = image.astype(np.float64).mean(2)
        gy, gx = np.gradient(gray)
        angle = (np.arctan2(gy, gx) % np.pi) / np.pi * 8
        rows = []
        for i, box in enumerate(boxes):
            x1, y1, x2, y2 = (int(round(v)) for v in box)
            mask = masks[i] if masks is not None and masks[i] is not None else np.zeros(gray.shape, bool)
            if masks is None or masks[i] is None:
                mask[y1:y2, x1:x2] = True
            inner = ndimage.binary_erosion(mask, iterations=2)
            q = (image[mask] // 64).astype(np.int64)
            colour = np.bincount(q[:, 0] * 16 + q[:, 1] * 4 + q[:, 2], minlength=64).astype(np.float64)
            orient = np.bincount(np.minimum(angle[inner], 7.999).astype(np.int64), weights=np.hypot(gx, gy)[inner],
                                 minlength=8)
            parts = [v / max(np.linalg.norm(v), 1e-9) for v in (colour, orient)]
            rows.append(np.concatenate(parts))
        return np.asarray(rows, np.float32)


def _sets(seed: int, n: int, per_class: int):
    rng = np.random.default_rng(seed)
    return [scene(rng, [*CLASSES * per_class, "yellow", "green noise"]) for _ in range(n)]


@pytest.fixture(scope="module")
def data():
    train, test = _sets(1, 3, 1), _sets(2, 10, 2)
    scenes = {image_digest(im): ids for im, ids, _ in train + test}
    examples = ExampleSet(tuple(Example(class_name=kind, image=im, box=box, mask=mask, source=f"scene {s}")
                                for s, (im, _, objs) in enumerate(train) for kind, box, mask in objs
                                if kind in CLASSES), classes=CLASSES)
    return examples, test, scenes


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def _score(matcher, examples, test) -> tuple[float, float]:
    found = matcher.detect_examples([im for im, _, _ in test], examples)
    correct = total = relevant = hit = 0
    for (im, _, objs), f in zip(test, found):
        masks = [decode_mask(m) for m in f.regions.masks]
        truth = [(k, m) for k, _, m in objs if k in CLASSES]
        relevant += len(truth)
        total += len(f)
        correct += sum(any(k == label and _iou(m, mm) >= 0.5 for k, m in truth)
                       for label, mm in zip(f.detections.labels, masks))
        hit += sum(any(k == label and _iou(m, mm) >= 0.5 for label, mm in zip(f.detections.labels, masks))
                   for k, m in truth)
    return correct / max(total, 1), hit / relevant


def _matcher(scenes, **options) -> PrototypeMatcher:
    m = PrototypeMatcher(encoder=HistogramEncoder(), proposer=dict(
        kind="mask_head", mask_head=SceneMaskHead(scenes), points_per_side=16, points_per_batch=50, min_score=0.5,
        nms_iou=0.7), **options)
    m.setup("cpu")
    return m


def test_prototypes_find_held_out_instances_with_calibrated_thresholds(data):
    examples, test, scenes = data
    matcher = _matcher(scenes)
    (report,) = matcher.prepare_examples(examples)
    assert report.startswith("PrototypeMatcher thresholds (cosine): stripes ")
    assert report.count("leave-one-out over 3 examples, 6 to reject") == 3
    precision, recall = _score(matcher, examples, test)
    assert precision >= 0.9 and recall >= 0.9, (precision, recall)
    # the thresholds do the rejecting: accepting every region's nearest prototype labels the distractors too
    loose_precision, loose_recall = _score(_matcher(scenes, threshold=-1.0), examples, test)
    assert loose_recall >= recall and loose_precision < 0.7


def test_a_negative_example_rejects_what_it_resembles(data):
    examples, test, scenes = data
    image, _, objs = test[0]
    yellow = next((box, mask) for kind, box, mask in objs if kind == "yellow")
    stripes = examples.of_class("stripes")
    # a yellow region is no stripes: as a negative example it keeps yellow regions out even at a loose threshold
    negative = ExampleSet(examples.examples + (Example(class_name="stripes", image=image, box=yellow[0],
                                                       mask=yellow[1], positive=False),), classes=CLASSES)
    loose = _matcher(scenes, threshold=-1.0)
    (without,), (with_negative,) = (loose.detect_examples([image], ex) for ex in (examples, negative))
    def labels_on(found, mask):
        return {label for label, m in zip(found.detections.labels, found.regions.masks)
                if _iou(decode_mask(m), mask) >= 0.5}
    assert labels_on(without, yellow[1]) and not labels_on(with_negative, yellow[1])
    assert len(stripes) == 3


def test_threshold_calibration_rules():
    assert separating_threshold([0.9, 0.95, 0.97], [0.3, 0.5]) == pytest.approx(0.7)  # the gap's midpoint
    assert separating_threshold([0.9, 0.8], []) == pytest.approx(min(0.8, 0.85 - 2 * 0.05))  # nothing to reject
    # overlapping scores: the cut with the best true-positive minus false-positive rate
    assert separating_threshold([0.6, 0.8, 0.9, 0.95], [0.5, 0.7, 0.55]) == pytest.approx(0.75)
    emb = np.array([[1, 0, 0], [0.9, 0.1, 0], [0, 1, 0], [0.1, 0.9, 0.1], [0, 0.2, 1]], np.float32)
    index = PrototypeIndex(embeddings=emb, classes=["a", "b", "c"], labels=[0, 0, 1, 1, 2],
                           positive=[True] * 5, default_threshold=0.66)
    assert [c.method for c in index.calibration] == ["leave-one-out", "leave-one-out", "default"]
    assert index.thresholds[2] == pytest.approx(0.66)
    cls, score = index.assign(np.array([[1, 0.05, 0], [0, 0, 1], [-1, -1, -1]], np.float32))
    assert cls.tolist() == [0, 2, -1] and score[0] > 0.99
    with pytest.raises(ValueError, match="no positive example"):
        PrototypeIndex(embeddings=emb[:2], classes=["a", "b"], labels=[0, 1], positive=[True, False])
