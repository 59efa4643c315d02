"""Box/mask AP of openvocab.evaluation against pycocotools' COCOeval run directly and hand-computed APs."""
import contextlib
import copy
import io

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from openvocab.evaluation import evaluate_detections, read_ontology, run_table
from openvocab.structures import Detections, ImageInfo, ImageResult, Regions
from openvocab.writers.coco import build_coco

H = W = 64


def _rle(box):
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    m = np.zeros((H, W), np.uint8, order="F")
    m[y1:y2, x1:x2] = 1
    r = mask_utils.encode(np.asfortranarray(m))
    return {"size": [H, W], "counts": r["counts"].decode("ascii")}


def _gt(n_images=4, seed=0):
    """Integer-pixel boxes (so masks equal boxes) of 3 classes on ``n_images`` images."""
    rng = np.random.default_rng(seed)
    cats = [{"id": 7, "name": "Dog"}, {"id": 3, "name": "cat"}, {"id": 11, "name": "traffic light"}]
    images, anns = [], []
    for i in range(n_images):
        images.append({"id": 100 + i, "file_name": f"val/{i:03d}.jpg", "width": W, "height": H})
        for _ in range(3):
            x, y = rng.integers(0, 40, 2)
            w, h = rng.integers(4, 44, 2)  # small and medium objects
            box = [int(x), int(y), int(min(w, W - x)), int(min(h, H - y))]
            anns.append({"id": len(anns) + 1, "image_id": 100 + i, "category_id": cats[rng.integers(0, 3)]["id"],
                         "bbox": box, "area": box[2] * box[3], "iscrowd": 0,
                         "segmentation": _rle([box[0], box[1], box[0] + box[2], box[1] + box[3]])})
    return {"images": images, "annotations": anns, "categories": cats}


def _results_from(gt, *, noise=0.0, relabel=None, extra_fp=0, seed=1):
    """ImageResults for the GT images: GT boxes jittered by ``noise`` px, random scores, optional FPs."""
    rng = np.random.default_rng(seed)
    names = {c["id"]: c["name"].lower() for c in gt["categories"]}
    out = []
    for im in gt["images"]:
        anns = [a for a in gt["annotations"] if a["image_id"] == im["id"]]
        boxes, labels = [], []
        for a in anns:
            x, y, w, h = a["bbox"]
            boxes.append(np.clip(np.array([x, y, x + w, y + h]) + rng.normal(0, noise, 4).round(), 0, W))
            labels.append(names[a["category_id"]])
        for _ in range(extra_fp):
            x, y = rng.integers(0, 48, 2)
            boxes.append(np.array([x, y, x + 12, y + 12]))
            labels.append(list(names.values())[rng.integers(0, 3)])
        if relabel:
            labels = [relabel.get(label, label) for label in labels]
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        dets = Detections(boxes=boxes, scores=rng.uniform(0.1, 1.0, len(boxes)).astype(np.float32),
                          labels=tuple(labels))
        regions = Regions(masks=tuple(_rle(b) for b in boxes), mask_scores=np.ones(len(boxes), np.float32))
        out.append(ImageResult(image=ImageInfo(file=f"/data/coco/val/{im['file_name'][4:]}", width=W, height=H),
                               detections=dets, regions=regions))
    return out


def _direct(gt, pred_coco, iou_type, cat_ids=None):
    """COCOeval run by hand: predictions converted to GT image/category ids without our code."""
    name_to_gt = {c["name"].lower(): c["id"] for c in gt["categories"]}
    pred_cat = {c["id"]: name_to_gt[c["name"]] for c in pred_coco["categories"]}
    res = []
    for a in pred_coco["annotations"]:
        r = {"image_id": 100 + a["image_id"] - 1, "category_id": pred_cat[a["category_id"]], "score": a["score"]}
        if iou_type == "bbox":
            r["bbox"] = a["bbox"]
        else:
            r["segmentation"] = {"size": a["segmentation"]["size"], "counts": a["segmentation"]["counts"].encode()}
        res.append(r)
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = copy.deepcopy(gt)
        coco.createIndex()
        ev = COCOeval(coco, coco.loadRes(res), iou_type)
        if cat_ids is not None:
            ev.params.catIds = cat_ids
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats


def test_box_and_mask_ap_equal_cocoeval_run_directly():
    gt = _gt()
    pred = build_coco(_results_from(gt, noise=2.0, extra_fp=2))
    rep = evaluate_detections(gt, pred)
    assert rep.counts["dropped_unmapped"] == 0 and rep.counts["evaluated"] == len(pred["annotations"])
    for kind, metrics in (("bbox", rep.bbox), ("segm", rep.segm)):
        stats = _direct(gt, pred, kind)
        ours = [metrics.stats[k] for k in ("AP", "AP50", "AP75", "APs", "APm", "APl",
                                            "AR@1", "AR@10", "AR@100", "ARs", "ARm", "ARl")]
        np.testing.assert_allclose(ours, [s if s > -1 else np.nan for s in stats], rtol=0, atol=1e-12)
        assert 0.05 < metrics.stats["AP"] < 0.95  # a non-trivial case
        assert not np.isnan(metrics.stats["APs"]) and not np.isnan(metrics.stats["APm"])
        for cat in gt["categories"]:  # per-class AP = COCOeval restricted to that class
            one = _direct(gt, pred, kind, cat_ids=[cat["id"]])[0]
            assert metrics.per_class[cat["name"]] == pytest.approx(one, abs=1e-12)


def test_perfect_predictions_give_ap_one_and_shuffled_labels_lower():
    gt = _gt()
    perfect = evaluate_detections(gt, build_coco(_results_from(gt)))
    assert perfect.bbox.stats["AP"] == pytest.approx(1.0) and perfect.segm.stats["AP"] == pytest.approx(1.0)
    assert all(v == pytest.approx(1.0) for v in perfect.bbox.per_class.values())
    swap = {"dog": "cat", "cat": "traffic light", "traffic light": "dog"}
    shuffled = evaluate_detections(gt, build_coco(_results_from(gt, relabel=swap)))
    assert shuffled.bbox.stats["AP"] < 0.2


def test_hand_computed_box_ap():
    gt = {"images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 100}],
          "categories": [{"id": 1, "name": "dog"}],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 20, 20], "area": 400, "iscrowd": 0},
                          {"id": 2, "image_id": 1, "category_id": 1, "bbox": [50, 50, 20, 20], "area": 400,
                           "iscrowd": 0}]}
    pred = [{"file_name": "a.jpg", "tag": "dog", "bbox": [0, 0, 20, 20], "score": 0.9},
            {"file_name": "a.jpg", "tag": "dog", "bbox": [30, 0, 10, 10], "score": 0.8},  # false positive
            {"file_name": "a.jpg", "tag": "dog", "bbox": [50, 50, 20, 20], "score": 0.7}]
    rep = evaluate_detections(gt, pred)
    # at every IoU threshold: TP, FP, TP -> precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1. Interpolated
    # precision: 1 for the 51 recall points 0..0.50, 2/3 for the 50 points 0.51..1.00 -> AP = (51 + 50*2/3)/101
    assert rep.bbox.stats["AP"] == pytest.approx((51 + 100 / 3) / 101)
    assert rep.bbox.stats["AP50"] == pytest.approx((51 + 100 / 3) / 101)
    assert rep.segm is None and rep.counts["segm_skipped"] == "predictions without RLE masks"


def test_ontology_maps_tags_and_counts_unmapped(tmp_path):
    gt = _gt()
    names = {"dog": "puppy", "cat": "kitten", "traffic light": "stoplight"}
    pred = build_coco(_results_from(gt, relabel=names))
    # without an ontology no tag matches a class: everything is dropped, AP 0
    none = evaluate_detections(gt, pred)
    assert none.counts["evaluated"] == 0 and none.bbox.stats["AP"] == 0.0
    per_tag = {}
    for a in gt["annotations"]:
        tag = names[{7: "dog", 3: "cat", 11: "traffic light"}[a["category_id"]]]
        per_tag[tag] = per_tag.get(tag, 0) + 1
    assert none.unmapped_tags == per_tag and none.counts["dropped_unmapped"] == len(gt["annotations"])
    onto = tmp_path / "onto.yaml"
    onto.write_text("Dog: [puppy, hound]\ncat: kitten\ntraffic light: [stoplight]\n", encoding="utf-8")
    ontology = read_ontology(onto)
    assert ontology["cat"] == ["kitten"]
    rep = evaluate_detections(gt, pred, ontology=ontology)
    assert rep.bbox.stats["AP"] == pytest.approx(1.0) and rep.counts["dropped_unmapped"] == 0
    # an unknown tag is dropped and counted; synonyms apply before the ontology
    extra = copy.deepcopy(pred)
    extra["categories"].append({"id": 99, "name": "car"})
    extra["categories"].append({"id": 98, "name": "doggo"})
    extra["annotations"] += [dict(extra["annotations"][0], id=1000, category_id=99),
                             dict(extra["annotations"][0], id=1001, category_id=98, score=0.01)]
    rep = evaluate_detections(gt, extra, ontology=ontology, synonyms={"doggo": "hound"})
    assert rep.unmapped_tags == {"car": 1} and rep.counts["evaluated"] == len(pred["annotations"]) + 1
    with pytest.raises(ValueError, match="two classes"):
        evaluate_detections(gt, pred, ontology={"Dog": ["puppy"], "cat": ["puppy"]})
    with pytest.raises(ValueError, match="not in the ground truth"):
        evaluate_detections(gt, pred, ontology={"horse": ["pony"]})


def test_images_outside_the_run_are_not_evaluated():
    gt = _gt(n_images=4)
    results = _results_from(gt)[:2]  # the run saw two of the four images
    rep = evaluate_detections(gt, build_coco(results))
    assert rep.counts["images_evaluated"] == 2 and rep.bbox.stats["AP"] == pytest.approx(1.0)


def test_fixed_ap_lifts_the_per_image_limit():
    # one image, 101 objects of one class, 101 perfect detections. COCO keeps 100 per image and class:
    # recall 100/101, precision 1 -> the 100 recall points 0..0.99 score 1, point 1.00 scores 0: AP = 100/101.
    boxes = [[(i % 11) * 9, (i // 11) * 9, 6, 6] for i in range(101)]
    gt = {"images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 100}],
          "categories": [{"id": 1, "name": "dot"}],
          "annotations": [{"id": i + 1, "image_id": 1, "category_id": 1, "bbox": b, "area": 36, "iscrowd": 0}
                          for i, b in enumerate(boxes)]}
    pred = [{"image_id": 1, "category_id": 1, "bbox": b, "score": 1.0 - i / 1000} for i, b in enumerate(boxes)]
    assert evaluate_detections(gt, pred).bbox.stats["AP"] == pytest.approx(100 / 101)
    fixed = evaluate_detections(gt, pred, fixed_ap=True)
    assert fixed.bbox.stats["AP"] == pytest.approx(1.0) and "AR@10000" in fixed.bbox.stats
    assert "fixed AP (top 10000" in run_table({"detection": fixed.to_dict()})
    # the per-class cap keeps the highest-scoring detections over the dataset
    capped = evaluate_detections(gt, pred, fixed_ap=True, max_dets_per_class=50)
    assert capped.counts["dropped_over_class_limit"] == 51
    # recall 50/101 = 0.495 at precision 1: the 50 recall points 0..0.49 score 1 -> AP = 50/101
    assert capped.bbox.stats["AP"] == pytest.approx(50 / 101)


def test_no_matching_image_is_an_error_and_bad_boxes_are_named():
    gt = _gt()
    pred = build_coco(_results_from(gt))
    for im in pred["images"]:
        im["file_name"] = f"other/{im['id']}.png"
    with pytest.raises(ValueError, match="no predicted image matches a ground-truth image"):
        evaluate_detections(gt, pred)
    with pytest.raises(ValueError, match="malformed bbox"):
        evaluate_detections(gt, [{"image_id": 100, "tag": "cat", "bbox": [1, 2, 3], "score": 0.5}])
    with pytest.raises(ValueError, match="needs 'images', 'annotations' and 'categories'"):
        evaluate_detections({"images": []}, [])
