"""``openvocab eval`` end to end on a real (tiny_random) labelling run, and the synonym normaliser.

The ground truth is made by hand from the run's own output, so the expected APs are known exactly:
class "sky thing" (ontology -> the most frequent tag T1) and the class named like the second tag T2
are the run's own boxes and masks (every detection a perfect match: AP 1), "unicorn" has one object
and no detection (AP 0). Tag ground truth uses plural names the tagger never says ("trees"), which
only the normaliser matches.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from openvocab.cli import main as openvocab_main
from openvocab.evaluation import load_run
from openvocab.evaluation.cli import build_normaliser
from openvocab.evaluation.readers import normaliser_synonyms

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class _FakeNormaliser:
    """Groups names by their first letter (stands in for plurals/synonyms)."""

    def normalise(self, names):
        return type("V", (), {"mapping": {n: n[0] for n in names}})()


def test_normaliser_synonyms_never_merges_known_names():
    got = normaliser_synonyms(_FakeNormaliser(), ["Cat", "car", "dog"], ["cow", "Dingo", "emu", "cat"])
    # cow -> the first known "c" name; dingo -> dog; emu has no known partner; cat is known already
    assert got == {"cow": "cat", "dingo": "dog"}
    assert normaliser_synonyms(_FakeNormaliser(), ["cat"], ["cat"]) == {}
    with pytest.raises(ValueError, match="must return a mapping"):
        normaliser_synonyms(type("Bad", (), {"normalise": lambda self, n: 3})(), ["a"], ["b"])


def test_wordnet_normaliser_config():
    norm = build_normaliser("tools/eval_synonyms")
    got = normaliser_synonyms(norm, ["car", "dog", "sofa", "automobile"],
                              ["cars", "Automobiles", "dogs", "couch", "tree"])
    # known (ground-truth) names stay themselves: "automobile" is not merged into "car"; a predicted
    # name whose group holds several known names goes to the first of them ("automobiles" -> "car")
    assert got == {"cars": "car", "automobiles": "car", "dogs": "dog", "couch": "sofa"}
    with pytest.raises(ValueError, match="not found"):
        build_normaliser("tools/no_such_config")


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """A tiny_random labelling run over two small synthetic images (coco.json + labels.jsonl)."""
    root = tmp_path_factory.mktemp("e2e")
    (root / "imgs").mkdir()
    for i, (h, w) in enumerate([(120, 160), (150, 100)]):
        y, x = np.mgrid[0:h, 0:w]
        img = np.stack([(x * (3 + i)) % 256, (y * 5) % 256, ((x + y) * 2) % 256], -1).astype(np.uint8)
        Image.fromarray(img).save(root / "imgs" / f"im{i}.png")
    rc = openvocab_main(["label", str(root / "imgs"), "--config", "tiny_random", "--out", str(root / "run"),
                         "--no-progress"])
    assert rc == 0
    return root


def _ground_truth(root: Path) -> tuple[str, str]:
    pred = json.loads((root / "run" / "coco.json").read_text())
    counts = Counter(a["tag"] for a in pred["annotations"])
    assert len(counts) >= 2, f"the tiny pipeline should detect at least two tags, got {counts}"
    (t1, _), (t2, _) = counts.most_common(2)
    ids = {im["id"]: 10 + k for k, im in enumerate(pred["images"])}
    images = [{"id": ids[im["id"]], "file_name": "imgs/" + Path(im["file_name"]).name,
               "width": im["width"], "height": im["height"]} for im in pred["images"]]
    anns = []
    for a in pred["annotations"]:
        if a["tag"] in (t1, t2):
            assert a["area"] > 0
            anns.append({"id": len(anns) + 1, "image_id": ids[a["image_id"]], "category_id": 1 if a["tag"] == t1 else 2,
                         "bbox": a["bbox"], "area": a["area"], "iscrowd": 0, "segmentation": a["segmentation"]})
    anns.append({"id": len(anns) + 1, "image_id": 10, "category_id": 3, "bbox": [1, 1, 20, 20], "area": 400,
                 "iscrowd": 0, "segmentation": [[1, 1, 21, 1, 21, 21, 1, 21]]})
    gt = {"images": images, "annotations": anns,
          "categories": [{"id": 1, "name": "sky thing"}, {"id": 2, "name": t2}, {"id": 3, "name": "unicorn"}]}
    (root / "gt.json").write_text(json.dumps(gt))
    (root / "onto.json").write_text(json.dumps({"sky thing": [t1]}))
    return t1, t2


def _tag_ap_two_images(s_pos, s_neg):
    """AP of one tag positive on one image (score s_pos) and negative on the other (s_neg), by hand."""
    if s_pos is None:
        return 0.0
    if s_neg is None or s_pos > s_neg:
        return 1.0
    return 0.5  # the negative ranks first (or ties): precision 1/2 at recall 1


def test_eval_end_to_end_on_a_labelling_run(labelled, capsys):
    root = labelled
    t1, t2 = _ground_truth(root)
    tags = [{(t["name"]): t["score"] for t in json.loads(line)["tags"]}
            for line in (root / "run" / "labels.jsonl").read_text().splitlines()]
    files = [Path(json.loads(line)["file"]).name for line in (root / "run" / "labels.jsonl").read_text().splitlines()]
    by_file = dict(zip(files, tags))
    # ground-truth tags in plural: the tagger says "tree" / "dog" (if at all), never "trees" / "dogs"
    (root / "tags_gt.jsonl").write_text(json.dumps({"file": "imgs/im0.png", "tags": ["trees", "dogs"]}) + "\n"
                                        + json.dumps({"file": "imgs/im1.png", "tags": ["grass"]}) + "\n")
    common = ["--pred", str(root / "run" / "coco.json"), "--gt", str(root / "gt.json"), "--ontology",
              str(root / "onto.json"), "--tags-pred", str(root / "run" / "labels.jsonl"), "--tags-gt",
              str(root / "tags_gt.jsonl")]
    assert openvocab_main(["eval", *common, "--out", str(root / "plain")]) == 0
    assert openvocab_main(["eval", *common, "--normaliser", "tools/eval_synonyms", "--out", str(root / "wordnet")]) == 0
    printed = capsys.readouterr().out
    assert "matched by the normaliser:" in printed and "tree -> trees" in printed

    for run in ("plain", "wordnet"):
        m = load_run(root / run)
        for kind in ("bbox", "segm"):
            per = m["detection"][kind]["per_class"]
            assert per == {"sky thing": pytest.approx(1.0), t2: pytest.approx(1.0), "unicorn": 0.0}, (run, kind)
            assert m["detection"][kind]["stats"]["AP"] == pytest.approx(2 / 3)
        n_other = sum(1 for a in json.loads((root / "run" / "coco.json").read_text())["annotations"]
                      if a["tag"] not in (t1, t2))
        assert m["detection"]["counts"]["dropped_unmapped"] == n_other
        for png in ("tag_ap.png", "bbox_ap.png", "segm_ap.png"):
            data = (root / run / png).read_bytes()
            assert data.startswith(PNG_MAGIC)
            assert Image.open(root / run / png).size[0] >= 600
    plain, wn = load_run(root / "plain")["tags"]["per_tag"], load_run(root / "wordnet")["tags"]["per_tag"]
    a, b = by_file["im0.png"], by_file["im1.png"]
    want = {"trees": _tag_ap_two_images(a.get("tree"), b.get("tree")),
            "dogs": _tag_ap_two_images(a.get("dog"), b.get("dog")),
            "grass": _tag_ap_two_images(b.get("grass"), a.get("grass"))}
    assert {t: s["ap"] for t, s in wn.items()} == pytest.approx(want)
    assert plain["trees"]["ap"] == 0.0 and plain["dogs"]["ap"] == 0.0 and plain["grass"]["ap"] == pytest.approx(want["grass"])
    assert load_run(root / "wordnet")["inputs"]["normaliser_synonyms"]["tags"].get("tree") == "trees"

    assert openvocab_main(["eval", "--compare", str(root / "plain"), str(root / "wordnet"), "--per-class"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["metric", "plain", "wordnet"]
    row = next(r for r in table if r.startswith("tag/trees "))
    assert row.split()[1:] == ["0.000", f"{want['trees']:.3f}"]
    row = next(r for r in table if r.startswith("bbox/unicorn"))
    assert row.split()[1:] == ["0.000", "0.000"]
