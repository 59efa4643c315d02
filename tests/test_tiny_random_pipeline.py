"""The real components, tiny and random (configs/tiny_random.py), end to end through the CLI.

Unlike the toy-plugin tests, this wires RAM++ -> prompt builder -> Grounding DINO -> TAP exactly as a
user's config does (``custom_imports`` of ``tagging`` and ``grounding``), on real photos.
"""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from openvocab.cli import main


@pytest.fixture()
def photo_dir(tmp_path, shared_dir):
    d = tmp_path / "photos"
    d.mkdir()
    for name in ("demo2.jpg", "demo4.jpg"):  # 3000x2000 and 428x640
        shutil.copy(shared_dir / "images" / name, d / name)
    (d / "broken.jpg").write_bytes((shared_dir / "images" / "demo4.jpg").read_bytes()[:2000])
    (d / "notes.txt").write_text("not an image")
    return d


def test_label_real_photos_all_formats(photo_dir, tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["label", str(photo_dir), "--config", "tiny_random", "--out", str(out), "--batch-size", "2",
               "--formats", "coco,jsonl,yolo,labelme", "--vis", "--no-progress"])
    assert rc == 1  # the truncated JPEG failed; the others were labeled
    failures = [json.loads(l) for l in (out / "failures.jsonl").read_text().splitlines()]
    assert [Path(f["file"]).name for f in failures] == ["broken.jpg"]

    coco = COCO(str(out / "coco.json"))
    imgs = {Path(i["file_name"]).name: i for i in coco.loadImgs(coco.getImgIds())}
    assert set(imgs) == {"demo2.jpg", "demo4.jpg"}
    assert (imgs["demo2.jpg"]["width"], imgs["demo2.jpg"]["height"]) == (3000, 2000)
    anns = coco.loadAnns(coco.getAnnIds())
    assert anns, "the tiny pipeline should reach the detector and mask head on real photos"
    used = {coco.cats[a["category_id"]]["name"] for a in anns}
    raw = json.loads((out / "coco.json").read_text())
    from tagging.ram_plus.tagger import TINY_TAGS

    assert [c["name"] for c in raw["categories"]] == list(TINY_TAGS)  # the tagger's tag-list order numbers classes
    for a in anns:
        im = coco.imgs[a["image_id"]]
        x, y, w, h = a["bbox"]
        assert 0 <= x and 0 <= y and x + w <= im["width"] + 1e-3 and y + h <= im["height"] + 1e-3  # clipped
        m = coco.annToMask(a)
        assert m.shape == (im["height"], im["width"])
        assert coco.cats[a["category_id"]]["name"] in used
    # image-level tags include the ones that were not boxable (kept, marked boxable=False)
    tags = {t["name"]: t for i in raw["images"] for t in i["tags"]}
    assert tags and any(t["boxable"] is False for t in tags.values())
    boxable = {n for n, t in tags.items() if t["boxable"]}
    assert used <= boxable

    lines = [json.loads(l) for l in (out / "labels.jsonl").read_text().splitlines()]
    assert sorted(Path(l["file"]).name for l in lines) == ["demo2.jpg", "demo4.jpg"]
    assert sum(len(l["detections"]) for l in lines) == len(anns)
    assert len(list((out / "vis").glob("*.jpg"))) == 2
    assert len(list((out / "labelme").glob("*.json"))) == 2
    assert (out / "yolo" / "data.yaml").is_file()
    yolo_rows = [r for f in (out / "yolo" / "labels").glob("*/*.txt") for r in f.read_text().splitlines()]
    assert len(yolo_rows) == len(anns)
    for r in yolo_rows:
        vals = [float(v) for v in r.split()[1:5]]
        assert all(0.0 <= v <= 1.0 for v in vals)


def test_tag_command_with_tiny_random(shared_dir, capsys):
    assert main(["tag", str(shared_dir / "images" / "demo4.jpg"), "--config", "tiny_random", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["tags"] and all(t["source"] == "closed-set" for t in row["tags"])
    scores = [t["score"] for t in row["tags"]]
    assert scores == sorted(scores, reverse=True)


def test_readme_demo_folder_labels_and_evaluates(tmp_path):
    """The README's main job on the bundled demo images (tiny weights instead of the official ones),
    then ``openvocab eval`` against the demo's ground truth: the toolchain runs end to end."""
    root = Path(__file__).resolve().parents[1]
    demo = root / "demo"
    gt = json.loads((demo / "ground_truth.json").read_text())
    assert sorted(p.name for p in (demo / "images").glob("*.jpg")) == sorted(
        Path(i["file_name"]).name for i in gt["images"])
    out = tmp_path / "demo"
    assert main(["label", str(demo / "images"), "--config", "tiny_random", "--out", str(out), "--vis",
                 "--no-progress"]) == 0
    assert len(list((out / "vis").glob("*.jpg"))) == len(gt["images"])
    ev = tmp_path / "eval"
    assert main(["eval", "--pred", str(out / "coco.json"), "--gt", str(demo / "ground_truth.json"),
                 "--tags-pred", str(out / "labels.jsonl"), "--tags-gt", str(demo / "ground_truth.json"),
                 "--out", str(ev)]) == 0
    metrics = json.loads((ev / "metrics.json").read_text())
    counts = metrics["detection"]["counts"]
    # every demo image matched its ground-truth image; every prediction was counted (the tiny tagger's
    # tags are not shape names, so they are reported as unmapped rather than scored)
    assert counts["images_evaluated"] == 4 and counts["dropped_unmatched_image"] == 0
    coco = json.loads((out / "coco.json").read_text())
    assert counts["predictions"] == len(coco["annotations"]) > 0
    assert counts["evaluated"] + counts["dropped_unmapped"] == counts["predictions"]


def test_missing_official_files_are_all_named_at_once(tmp_path, capsys):
    cfg = tmp_path / "real_weights.py"
    cfg.write_text(
        "custom_imports = dict(imports=['tagging', 'grounding'], allow_failed_imports=False)\n"
        "tagger = dict(type='RAMPlusTagger', variant='tiny', checkpoint=None)\n"
        "detector = dict(type='GroundingDINODetector', variant='swint_ogc', checkpoint='groundingdino_swint_ogc')\n"
        "mask_head = dict(type='SAMMaskHead', variant='vit_b', checkpoint='sam_vit_b_01ec64')\n")
    img = tmp_path / "a.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(img)
    rc = main(["label", str(img), "--config", str(cfg), "--out", str(tmp_path / "out"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    assert "Missing file 'bert-base-uncased-vocab.txt'" in err and "--checkpoint-dir" in err
    needs = err.split("This pipeline needs:")[1]
    for name in ("groundingdino_swint_ogc.pth", "bert-base-uncased-vocab.txt", "sam_vit_b_01ec64.pth"):
        assert name in needs
    assert not (tmp_path / "out" / "coco.json").exists()
