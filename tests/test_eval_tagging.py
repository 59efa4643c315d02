"""Tag AP / mAP / P-R-F1 of openvocab.evaluation against hand-computed values."""
import json
import math

import numpy as np
import pytest

from openvocab.evaluation import (NameMapper, average_precision, evaluate_tags, read_tag_ground_truth,
                                  read_tag_predictions)
from openvocab.serialize import result_to_dict
from openvocab.structures import ImageInfo, ImageResult, Tag, Tags


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_average_precision_by_hand():
    # ranking: pos(0.9) neg(0.8) pos(0.4): P = 1, 1/2, 2/3 at R = 1/2, 1/2, 1 -> AP = 1/2*1 + 1/2*2/3 = 5/6
    assert average_precision([0.9, 0.8, 0.4], [True, False, True]) == pytest.approx(5 / 6)
    # tied scores are one operating point: {pos, neg}@0.5 -> P 1/2, R 1/2; then pos@0.3 -> P 2/3, R 1
    # AP = 1/2*1/2 + 1/2*2/3 = 7/12
    assert average_precision([0.5, 0.5, 0.3], [True, False, True]) == pytest.approx(7 / 12)
    # an unscored positive is never retrieved: pos(0.9) neg(0.5), pos(None) -> R reaches 1/2 only: AP = 1/2
    assert average_precision([0.9, 0.5, None, None], [True, False, True, False]) == pytest.approx(0.5)
    assert math.isnan(average_precision([0.3, 0.2], [False, False]))
    assert average_precision([None, None], [True, False]) == 0.0
    with pytest.raises(ValueError):
        average_precision([0.1], [True, False])


def _ap_by_definition(scores, labels):
    """AP spelled out: for each distinct score t (descending), the set {score >= t} gives P and R;
    AP = sum over those sets of (R - previous R) * P. Unscored items are never retrieved."""
    n_pos = sum(labels)
    ap, prev_r = 0.0, 0.0
    for t in sorted({s for s in scores if s is not None}, reverse=True):
        hit = [y for s, y in zip(scores, labels) if s is not None and s >= t]
        p, r = sum(hit) / len(hit), sum(hit) / n_pos
        ap += (r - prev_r) * p
        prev_r = r
    return ap


def test_average_precision_equals_the_definition_on_random_rankings():
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(1, 30))
        s = [None if rng.random() < 0.15 else float(v) for v in rng.integers(0, 6, n) / 5]  # ties, unscored
        y = [bool(v) for v in rng.random(n) < 0.4]
        y[0] = True
        assert average_precision(s, y) == pytest.approx(_ap_by_definition(s, y), abs=1e-12)


def test_average_precision_known_values():
    # scikit-learn's documented example: y = [0, 0, 1, 1], scores [0.1, 0.4, 0.35, 0.8] -> 0.8333...
    assert average_precision([0.1, 0.4, 0.35, 0.8], [False, False, True, True]) == pytest.approx(5 / 6)
    # positives ranked 1st and 4th of 4: (1/2) * 1 + (1/2) * (2/4) = 3/4
    assert average_precision([0.9, 0.8, 0.7, 0.6], [True, False, False, True]) == pytest.approx(0.75)
    # all tied: one operating point with P = 2/5, R = 1
    assert average_precision([0.5] * 5, [True, True, False, False, False]) == pytest.approx(0.4)


def test_average_precision_matches_sklearn():
    """Cross-check against scikit-learn (a test dependency: ``pip install scikit-learn``)."""
    import sklearn.metrics as sk
    rng = np.random.default_rng(0)
    for _ in range(50):
        s = rng.integers(0, 6, 25) / 5  # many ties
        y = rng.random(25) < 0.4
        y[0] = True
        assert average_precision(list(s), list(y)) == pytest.approx(sk.average_precision_score(y, s), abs=1e-12)


def test_exhaustive_gt_with_all_scores(tmp_path):
    gt = _jsonl(tmp_path / "gt.jsonl", [{"file": "a.jpg", "tags": ["cat"]},
                                        {"file": "b.jpg", "tags": ["dog"]},
                                        {"file": "c.jpg", "tags": ["cat", "dog"]}])
    # "tags": the tags that fired; "scores": every tag's score (ranking)
    pred = _jsonl(tmp_path / "pred.jsonl", [
        {"file": "/run/imgs/a.jpg", "tags": [{"name": "cat", "score": 0.9}],
         "scores": {"cat": 0.9, "dog": 0.3}},
        {"file": "/run/imgs/b.jpg", "tags": [{"name": "cat", "score": 0.8}, {"name": "dog", "score": 0.7}],
         "scores": {"cat": 0.8, "dog": 0.7}},
        {"file": "/run/imgs/c.jpg", "tags": [{"name": "dog", "score": 0.6}],
         "scores": {"cat": 0.4, "dog": 0.6}}])
    m = evaluate_tags(read_tag_ground_truth(gt), read_tag_predictions(pred))
    # cat: a pos .9, b neg .8, c pos .4 -> AP 5/6; dog: b pos .7, c pos .6, a neg .3 -> AP 1
    assert m.per_tag["cat"].ap == pytest.approx(5 / 6)
    assert m.per_tag["dog"].ap == pytest.approx(1.0)
    assert m.mAP == pytest.approx((5 / 6 + 1) / 2)
    # cat fired on a (TP), b (FP), not c (FN) -> P = R = F1 = 1/2; dog fired on b, c (TP) -> 1, 1, 1
    c = m.per_tag["cat"]
    assert (c.tp, c.fp, c.fn, c.n_pos, c.n_neg) == (1, 1, 1, 2, 1)
    assert (c.precision, c.recall, c.f1) == pytest.approx((0.5, 0.5, 0.5))
    assert (m.per_tag["dog"].precision, m.per_tag["dog"].recall) == (1.0, 1.0)
    assert m.micro == pytest.approx({"precision": 0.75, "recall": 0.75, "f1": 0.75})  # TP 3, FP 1, FN 1
    assert m.macro["f1"] == pytest.approx(0.75)
    assert m.counts["images_without_prediction"] == 0
    # a threshold instead of the fired lists: at 0.65 cat fires on a, b; dog on b only
    t = evaluate_tags(read_tag_ground_truth(gt), read_tag_predictions(pred), threshold=0.65)
    assert (t.per_tag["dog"].tp, t.per_tag["dog"].fn) == (1, 1)
    assert t.per_tag["cat"].ap == m.per_tag["cat"].ap


def test_openimages_style_only_annotated_tags_count(tmp_path):
    gt = _jsonl(tmp_path / "gt.jsonl", [
        {"file": "a.jpg", "tags": ["cat"], "negative_tags": ["dog"]},
        {"file": "b.jpg", "tags": ["dog"]},  # exhaustive: cat is negative here
        {"file": "c.jpg", "tags": [{"name": "cat", "confidence": 0}]},  # cat verified absent, dog unknown
    ])
    pred = _jsonl(tmp_path / "pred.jsonl", [
        {"file": "a.jpg", "tags": [{"name": "cat", "score": 0.2}, {"name": "dog", "score": 0.9}]},
        {"file": "b.jpg", "tags": [{"name": "cat", "score": 0.8}, {"name": "dog", "score": 0.5}]},
        {"file": "c.jpg", "tags": [{"name": "cat", "score": 0.7}, {"name": "dog", "score": 0.95}]},
    ])
    g = read_tag_ground_truth(gt)
    assert g.negatives["c.jpg"] == frozenset({"cat"}) and g.negatives["b.jpg"] is None
    m = evaluate_tags(g, read_tag_predictions(pred))
    # cat: b neg .8, c neg .7, a pos .2 -> AP 1/3
    assert m.per_tag["cat"].ap == pytest.approx(1 / 3)
    # dog: a neg .9, b pos .5 (c ignored; counting it would give 1/3) -> AP 1/2
    assert m.per_tag["dog"].ap == pytest.approx(0.5)
    assert (m.per_tag["dog"].n_pos, m.per_tag["dog"].n_neg, m.per_tag["dog"].fp) == (1, 1, 1)


def test_fired_only_predictions_missing_images_and_synonyms(tmp_path):
    gt = _jsonl(tmp_path / "gt.jsonl", [{"file": f"{i}.jpg", "tags": t} for i, t in
                                        enumerate([["cat"], [], ["cat"], ["Dog"]])])
    pred = _jsonl(tmp_path / "pred.jsonl", [
        {"file": "0.jpg", "tags": [{"name": "Kitty", "score": 0.9}]},
        {"file": "1.jpg", "tags": [{"name": "cat", "score": 0.5}, {"name": "unicorn", "score": 0.5}]},
        {"file": "elsewhere.jpg", "tags": [{"name": "dog", "score": 0.5}]},
    ])  # 2.jpg and 3.jpg have no prediction line
    mapper = NameMapper(synonyms={"kitty": "cat"})
    m = evaluate_tags(read_tag_ground_truth(gt, mapper=mapper), read_tag_predictions(pred, mapper=mapper))
    # cat: 0 pos .9, 1 neg .5, 2 pos (never retrieved), 3 neg -> AP = 1/2 * 1 = 1/2
    assert m.per_tag["cat"].ap == pytest.approx(0.5)
    assert m.per_tag["dog"].ap == 0.0 and m.per_tag["dog"].fn == 1
    assert m.counts == {"images": 4, "images_without_prediction": 2, "predictions_without_gt": 1,
                        "predicted_tags_outside_vocabulary": 1}
    # without the synonym, "kitty" is outside the vocabulary and cat's only hit is a false positive
    plain = evaluate_tags(read_tag_ground_truth(gt), read_tag_predictions(pred))
    assert plain.per_tag["cat"].ap == 0.0


def test_reads_pipeline_labels_jsonl_and_coco_gt(tmp_path):
    results = [ImageResult(image=ImageInfo(file=f"in/{n}.jpg", width=10, height=10),
                           tags=Tags(tuple(Tag(name=t, score=s) for t, s in tags)))
               for n, tags in [("a", [("person", 0.9), ("dog", 0.4)]), ("b", [("dog", 0.8)])]]
    pred = tmp_path / "labels.jsonl"
    pred.write_text("".join(json.dumps(result_to_dict(r)) + "\n" for r in results), encoding="utf-8")
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps({
        "images": [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "b.jpg", "neg_category_ids": [1]}],
        "categories": [{"id": 1, "name": "person"}, {"id": 2, "name": "dog"}, {"id": 3, "name": "cat"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1}, {"id": 2, "image_id": 2, "category_id": 2}]}))
    g = read_tag_ground_truth(gt)
    assert g.vocabulary == ("cat", "dog", "person")
    m = evaluate_tags(g, read_tag_predictions(pred))
    # dog: a neg .4, b pos .8 -> AP 1; person: a pos .9 (b verified absent, unscored) -> AP 1; cat: no positives
    assert m.per_tag["dog"].ap == 1.0 and m.per_tag["person"].ap == 1.0
    assert math.isnan(m.per_tag["cat"].ap) and m.mAP == 1.0
    assert m.per_tag["dog"].fp == 1  # the pipeline listed dog as fired on a


def test_malformed_input_names_file_and_line(tmp_path):
    bad = tmp_path / "pred.jsonl"
    bad.write_text('{"file": "a.jpg", "tags": []}\n{"file": "b.jpg", "tags": [}\n')
    with pytest.raises(ValueError, match=r"pred\.jsonl:2: invalid JSON"):
        read_tag_predictions(bad)
    bad.write_text('{"file": "a.jpg", "tags": [{"name": "cat", "score": "high"}]}\n')
    with pytest.raises(ValueError, match=r"pred\.jsonl:1: .*numeric score"):
        read_tag_predictions(bad)
    gt = _jsonl(tmp_path / "gt.jsonl", [{"tags": ["cat"]}])
    with pytest.raises(ValueError, match=r"gt\.jsonl:1: missing the image's file name"):
        read_tag_ground_truth(gt)
    with pytest.raises(ValueError, match="file not found"):
        read_tag_ground_truth(tmp_path / "nope.jsonl")


def test_no_matching_image_stops_tag_evaluation_as_it_stops_box_evaluation(tmp_path, capsys):
    """Tag and box evaluation refuse alike when no predicted image is a ground-truth image (a score of 0
    would look like a result), and when the predictions hold no image at all."""
    from openvocab.evaluation import evaluate_detections
    from openvocab.evaluation.cli import main as eval_main

    gt_tags = _jsonl(tmp_path / "gt.jsonl", [{"file": "val/a.jpg", "tags": ["dog"]}])
    pred_tags = _jsonl(tmp_path / "pred.jsonl", [{"file": "elsewhere/z.jpg", "tags": [{"name": "dog", "score": 1}]}])
    gt_box = {"images": [{"id": 1, "file_name": "val/a.jpg", "width": 10, "height": 10}],
              "categories": [{"id": 1, "name": "dog"}],
              "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5], "area": 25,
                               "iscrowd": 0}]}
    pred_box = {"images": [{"id": 7, "file_name": "elsewhere/z.jpg", "width": 10, "height": 10}],
                "categories": [{"id": 1, "name": "dog"}],
                "annotations": [{"id": 1, "image_id": 7, "category_id": 1, "bbox": [1, 1, 5, 5], "score": 1.0}]}
    (tmp_path / "gt.json").write_text(json.dumps(gt_box))
    (tmp_path / "pred.json").write_text(json.dumps(pred_box))
    want = "no predicted image matches a ground-truth image by file name (e.g. 'elsewhere/z.jpg' vs 'val/a.jpg')"
    for args in (["--tags-pred", str(pred_tags), "--tags-gt", str(gt_tags)],
                 ["--pred", str(tmp_path / "pred.json"), "--gt", str(tmp_path / "gt.json")]):
        assert eval_main([*args, "--out", str(tmp_path / "run")]) == 2
        assert want in capsys.readouterr().err
    assert not (tmp_path / "run" / "metrics.json").exists()

    gt, pred = read_tag_ground_truth(gt_tags), read_tag_predictions(pred_tags)
    with pytest.raises(ValueError) as tag_err:
        evaluate_tags(gt, pred, pred_source="pred.jsonl")
    with pytest.raises(ValueError) as box_err:
        evaluate_detections(gt_box, pred_box, pred_source="pred.json")
    assert str(tag_err.value) == f"pred.jsonl: {want}" and str(box_err.value) == f"pred.json: {want}"

    empty_tags = _jsonl(tmp_path / "empty.jsonl", [])
    with pytest.raises(ValueError, match="empty.jsonl: the predictions hold no image"):
        evaluate_tags(gt, read_tag_predictions(empty_tags), pred_source=str(empty_tags))
    with pytest.raises(ValueError, match="pred.json: the predictions hold no image"):
        evaluate_detections(gt_box, dict(pred_box, images=[], annotations=[]), pred_source="pred.json")
