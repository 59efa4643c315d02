"""Label by example end to end through ``openvocab label --examples``: each exemplar backend (the shipped
``configs/examples_*.py`` pointed at tiny random transformers models, and the offline ``tiny_examples``) labels the
demo pictures with classes defined by examples *and* text classes (``--vocab``) in one job, through every writer;
both example file forms; the job's record holds the examples, so resuming with other examples is refused."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from openvocab.cli import main
from openvocab.config import configs_dir
from openvocab.engine.job import FORMATS
from openvocab.masks import decode_mask
from test_hf_label_cli import _every_format_has_the_coco_objects

ROOT = Path(__file__).resolve().parents[1]
PICTURES = ROOT / "demo" / "images"
VOCAB = "circle, square"
CLASSES = ["part #4711", "defect"]  # the examples' classes: the stars and the triangles of the demo pictures
TINY_GD = ("detector = dict(type='GroundingDINODetector', variant='tiny', checkpoint=None, box_threshold=0.0, "
           "text_threshold=0.0, max_detections=2, resize=(128, 170))\n")
TINY_TAP = "mask_head = dict(type='TAPMaskHead', variant='tiny', checkpoint=None, concepts=None)\n"

# case: (shipped config, child lines (model folders by name), masks written?, examples found only in their images?,
#        the tiny model the exemplar stage must have run with)
CASES = {
    "owlv2": ("examples_owlv2", "detector = dict(model={owlv2}, box_threshold=0.05, max_detections=2)\n"
              "exemplar_detector = dict(model={owlv2}, box_threshold=0.0, max_detections=2)\n", False, False,
              "owlv2"),
    "owlvit-crop": ("examples_owlv2", "detector = dict(model={owlvit}, box_threshold=0.05, max_detections=2)\n"
                    "exemplar_detector = dict(model={owlvit}, box_threshold=0.0, max_detections=2, query='crop', "
                    "merge='mean')\n", False, False, "owlvit"),
    "clipseg": ("examples_clipseg", TINY_GD + TINY_TAP + "exemplar_detector = dict(model={clipseg}, min_area=0.01)\n",
                True, False, "clipseg"),
    "seggpt": ("examples_seggpt", TINY_GD + TINY_TAP + "exemplar_detector = dict(model={seggpt}, min_area=0.01)\n",
               True, False, "seggpt"),
    "sam3": ("examples_sam3", "segmenter = dict(model={sam3}, threshold=0.25, max_detections=2)\n"
             "exemplar_detector = dict(model={sam3}, threshold=0.25, max_detections=2)\n", True, True, "sam3"),
    "prototypes": ("examples_prototypes", TINY_GD + TINY_TAP + "exemplar_detector = dict(threshold=-1.0, "
                   "max_detections=2, encoder=dict(model={dinov2}), proposer=dict(mask_head=dict(model={sam}), "
                   "points_per_side=4, min_score=0.0, max_area=1.0))\n", True, False, "dinov2"),
}


@pytest.fixture(scope="module")
def examples(tmp_path_factory) -> dict[str, Path]:
    """The stars ('part #4711') and triangles ('defect') of shapes_1 and shapes_2 as a COCO file (boxes; the
    triangles with their ground-truth masks) and as a folder of crops."""
    root = tmp_path_factory.mktemp("examples")
    gt = json.loads((ROOT / "demo" / "ground_truth.json").read_text())
    (root / "refs").mkdir()
    images, annotations = [], []
    for im in gt["images"][:2]:
        (root / "refs" / Path(im["file_name"]).name).write_bytes((ROOT / "demo" / im["file_name"]).read_bytes())
        images.append({"id": im["id"], "file_name": f"refs/{Path(im['file_name']).name}"})
    names = {4: 0, 3: 1}  # star, triangle
    for a in gt["annotations"]:
        if a["image_id"] <= 2 and a["category_id"] in names:
            ann = {"id": a["id"], "image_id": a["image_id"], "category_id": 10 + names[a["category_id"]],
                   "bbox": a["bbox"]}
            if a["category_id"] == 3:
                ann["segmentation"] = a["segmentation"]
            annotations.append(ann)
    coco = root / "examples.json"
    coco.write_text(json.dumps({"images": images, "annotations": annotations, "categories": [
        {"id": 10, "name": CLASSES[0]}, {"id": 11, "name": CLASSES[1]}]}))
    for a in annotations:
        x, y, w, h = (int(round(v)) for v in a["bbox"])
        picture = np.asarray(Image.open(root / images[a["image_id"] - 1]["file_name"]).convert("RGB"))
        folder = root / "crops" / CLASSES[a["category_id"] - 10]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(picture[y:y + h, x:x + w]).save(folder / f"{a['id']}.png")
    return {"coco": coco, "crops": root / "crops"}


def _record(out: Path) -> dict:
    con = sqlite3.connect(str(out / ".openvocab" / "state.sqlite"))
    try:
        return json.loads(con.execute("SELECT value FROM meta WHERE name = 'fingerprint'").fetchone()[0])
    finally:
        con.close()


def _label(config, out: Path, examples: Path, *extra: str) -> int:
    return main(["label", str(PICTURES), "--config", str(config), "--out", str(out), "--examples", str(examples),
                 "--batch-size", "2", "--no-progress", "--workers", "1", *extra])


def _check_outputs(out: Path, *, masks: bool, text: bool, classes=CLASSES) -> dict:
    coco = json.loads((out / "coco.json").read_text())
    assert len(coco["images"]) == 4
    _every_format_has_the_coco_objects(out, 4, len(coco["annotations"]))
    names = [c["name"] for c in coco["categories"]]
    assert names[-2:] == list(classes) and (names[:2] == VOCAB.split(", ")) == text  # examples after the vocabulary
    assert (out / "classes.txt").read_text().splitlines() == names
    found = {names[a["category_id"] - 1] for a in coco["annotations"]}
    assert found & set(CLASSES), "the examples' classes are labelled"
    assert not text or found & set(VOCAB.split(", ")), "and the text classes too, in the same job"
    for a in coco["annotations"]:
        assert ("segmentation" in a) == masks
    return coco


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_backend_labels_examples_and_text_classes_in_one_job(case, exemplar_models, examples, tmp_path,
                                                                  capsys):
    base, lines, masks, in_image_only, model = CASES[case]
    config = tmp_path / f"{case.replace('-', '_')}.py"
    config.write_text(f"_base_ = {str(configs_dir() / (base + '.py'))!r}\n"
                      + lines.format(**{k: repr(str(v)) for k, v in exemplar_models.items()}))
    out = tmp_path / "out"
    assert _label(config, out, examples["coco"], "--vocab", VOCAB, "--formats", ",".join(FORMATS)) == 0
    err = capsys.readouterr().err
    stage = _record(out)["stages"]["exemplar_detector"]
    assert (stage.get("model") or stage["encoder"]["model"]) == str(exemplar_models[model])  # the tiny model ran
    coco = _check_outputs(out, masks=masks, text=True)
    names = [c["name"] for c in coco["categories"]]
    by_image = {im["id"]: im["file_name"] for im in coco["images"]}
    labelled = {by_image[a["image_id"]] for a in coco["annotations"] if names[a["category_id"] - 1] in CLASSES}
    if in_image_only:  # SAM 3: a class is found in the images that hold its examples
        assert labelled and labelled <= {"shapes_1.jpg", "shapes_2.jpg"}
    assert "examples" in _record(out) and err.count("labeled 4 images") == 1


def test_tiny_examples_runs_both_file_forms_offline_and_resumes_only_with_the_same_examples(examples, tmp_path,
                                                                                           capsys):
    for form in ("coco", "crops"):
        out = tmp_path / form
        assert _label("tiny_examples", out, examples[form], "--formats", ",".join(FORMATS)) == 0
        order = CLASSES if form == "coco" else sorted(CLASSES)  # the categories' order; the class folders' names
        coco = _check_outputs(out, masks=True, text=False, classes=order)  # the tiny tagger's tags: text classes
        exemplar = [a for a in coco["annotations"] if coco["categories"][a["category_id"] - 1]["name"] in CLASSES]
        assert exemplar and all("concepts" in a and "region_caption" in a for a in exemplar)  # TAP, on their boxes
        assert all(decode_mask(a["segmentation"]).any() for a in exemplar)
    err = capsys.readouterr().err
    assert "PrototypeMatcher thresholds (cosine): part #4711 -1.000 (fixed); defect -1.000 (fixed)" in err
    first = _record(tmp_path / "coco")["examples"]
    assert first["classes"] == CLASSES and first["examples"] == 4
    # the same examples from another place: the same job, resumed (nothing left to do)
    moved = tmp_path / "moved"
    moved.mkdir()
    (moved / "refs").symlink_to(examples["coco"].parent / "refs")
    (moved / "ex.json").write_text(examples["coco"].read_text())
    assert _label("tiny_examples", tmp_path / "coco", moved / "ex.json", "--resume", "--formats",
                  ",".join(FORMATS)) == 0
    assert "(4 already done" in capsys.readouterr().err
    # other examples: refused, naming what changed, and the folder is left as it was
    data = json.loads(examples["coco"].read_text())
    data["annotations"] = data["annotations"][1:]
    (moved / "ex.json").write_text(json.dumps(data))
    before = (tmp_path / "coco" / "coco.json").read_bytes()
    assert _label("tiny_examples", tmp_path / "coco", moved / "ex.json", "--resume") == 2
    err = capsys.readouterr().err
    assert "cannot resume" in err and "examples: 4 examples of 2 classes" in err and "-> 3 examples of 2 classes" in err
    assert (tmp_path / "coco" / "coco.json").read_bytes() == before


def test_examples_need_a_config_with_an_exemplar_stage(examples, tmp_path, capsys):
    out = tmp_path / "out"
    assert _label("tiny_random", out, examples["coco"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "examples need an exemplar detector" in err[0] and not out.exists()
