"""The outputs as the next tools take them, untouched: Ultralytics trains on yolo/ and yolo-seg/, labelme's own
LabelFile loads labelme/, pycocotools reads coco.json with the image root, Datumaro's CVAT and VOC exports
keep COCO's boxes, FiftyOne's layout points at the images; every format carries the same class list.

The images are synthetic shapes (class k drawn in colour k); the oracle plugin (tests/plugins/shapes_plugin)
boxes and masks them by colour, so every output holds real objects.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from openvocab.cli import main
from openvocab.training.synthetic import make_synthetic_dataset

PLUGINS = Path(__file__).parent / "plugins"
ROOT = Path(__file__).resolve().parents[1]
VOCAB = ["triangle", "circle", "square"]  # not sorted: every format must keep this order
SHAPES_CONFIG = """
custom_imports = dict(imports=['shapes_plugin'], allow_failed_imports=False)
detector = dict(type='ColourShapeDetector', classes=['circle', 'square', 'triangle'])
mask_head = dict(type='ColourMaskHead', classes=['circle', 'square', 'triangle'])
"""


def _has(module: str) -> bool:
    """Whether ``module`` is installed (found, not imported: importing Ultralytics writes its settings file)."""
    import importlib.util

    return importlib.util.find_spec(module) is not None


EXCHANGE = ["cvat", "voc"] if _has("datumaro") else []


def _label(base: Path, inputs, out: Path, *extra) -> None:
    cfg = base / "shapes.py"
    cfg.write_text(SHAPES_CONFIG)
    formats = ",".join(["coco", "jsonl", "yolo", "yolo-seg", "labelme", "labelstudio", "fiftyone", *EXCHANGE])
    sys.path.insert(0, str(PLUGINS))
    try:
        rc = main(["label", *map(str, inputs), "--config", str(cfg), "--vocab", ", ".join(VOCAB), "--out", str(out),
                   "--formats", formats, "--no-progress", *extra])
    finally:
        sys.path.remove(str(PLUGINS))
    assert rc == 0


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    """20 labeled 64x64 pictures in photos/a and photos/b; --image-root is the folder above photos/."""
    base = tmp_path_factory.mktemp("consumers")
    gen = make_synthetic_dataset(base / "gen", num_images=20, image_size=(64, 64),
                                 classes=("circle", "square", "triangle"), max_objects=2, class_colours=True)
    photos = base / "photos"
    for i, p in enumerate(sorted((gen.root / "images").iterdir())):
        (photos / "ab"[i % 2]).mkdir(parents=True, exist_ok=True)
        shutil.copy(p, photos / "ab"[i % 2] / p.name)
    out = base / "out"
    _label(base, [photos / "a", photos / "b"], out, "--image-root", str(base), "--val-fraction", "0.3")
    return base, out


def _coco(out: Path) -> dict:
    return json.loads((out / "coco.json").read_text())


def _coco_boxes(coco: dict) -> dict[str, list[tuple[str, tuple[float, ...]]]]:
    """file_name -> sorted [(class name, (x1, y1, x2, y2))]."""
    names = {c["id"]: c["name"] for c in coco["categories"]}
    files = {im["id"]: im["file_name"] for im in coco["images"]}
    out: dict[str, list] = {f: [] for f in files.values()}
    for a in coco["annotations"]:
        x, y, w, h = a["bbox"]
        out[files[a["image_id"]]].append((names[a["category_id"]], (x, y, x + w, y + h)))
    return {f: sorted(v) for f, v in out.items()}


def _same_boxes(a: dict, b: dict, tol: float = 0.01) -> None:
    assert sorted(a) == sorted(b)
    for f in a:
        assert [n for n, _ in a[f]] == [n for n, _ in b[f]], f
        assert np.allclose([bx for _, bx in a[f]], [bx for _, bx in b[f]], atol=tol), f


def test_pycocotools_reads_coco_relative_to_the_image_root(job):
    from pycocotools.coco import COCO

    base, out = job
    coco = COCO(str(out / "coco.json"))
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == VOCAB
    images = coco.loadImgs(coco.getImgIds())
    assert len(images) == 20 and all(im["file_name"].startswith(("photos/a/", "photos/b/")) for im in images)
    n_anns = 0
    for im in images:
        with Image.open(base / im["file_name"]) as pic:  # the image root joined with file_name: the image
            assert pic.size == (im["width"], im["height"])
        for ann in coco.loadAnns(coco.getAnnIds(imgIds=im["id"])):
            mask = coco.annToMask(ann)
            assert mask.shape == (im["height"], im["width"]) and mask.sum() == ann["area"] > 0
            n_anns += 1
    assert n_anns >= 20
    # labels.jsonl names each image the same way
    lines = [json.loads(line) for line in (out / "labels.jsonl").read_text().splitlines()]
    assert [d["file_name"] for d in lines] == [im["file_name"] for im in images]


def test_every_format_has_the_job_class_list_and_two_runs_agree(job, tmp_path):
    import yaml

    base, out = job
    _label(tmp_path, [base / "photos" / "b"], tmp_path / "out2")  # fewer images, default image root

    def class_lists(o: Path) -> dict[str, list[str]]:
        lists = {"classes.txt": (o / "classes.txt").read_text().splitlines(),
                 "coco": [c["name"] for c in _coco(o)["categories"]],
                 "labelme": (o / "labelme" / "labels.txt").read_text().splitlines(),
                 "fiftyone": [c["name"] for c in json.loads((o / "fiftyone" / "labels.json").read_text())["categories"]]}
        config = ET.parse(o / "labelstudio" / "label_config.xml").getroot()
        lists["labelstudio"] = [e.get("value") for e in config.iterfind("RectangleLabels/Label")]
        assert lists["labelstudio"] == [e.get("value") for e in config.iterfind("PolygonLabels/Label")]
        for sub in ("yolo", "yolo-seg"):
            names = yaml.safe_load((o / sub / "data.yaml").read_text())["names"]
            lists[sub] = [names[i] for i in range(len(names))]
        if "cvat" in EXCHANGE:
            xml = ET.parse(o / "cvat" / "default.xml")
            lists["cvat"] = [e.text for e in xml.getroot().iterfind("meta/task/labels/label/name")]
            voc = [line.split(":")[0] for line in (o / "voc" / "labelmap.txt").read_text().splitlines()
                   if not line.startswith("#")]
            assert voc[0] == "background"
            lists["voc"] = voc[1:]
        return lists

    first, second = class_lists(out), class_lists(tmp_path / "out2")
    assert first == second == {k: VOCAB for k in first}
    assert len(first) == 7 + len(EXCHANGE)


def test_yolo_labels_agree_with_coco(job):
    base, out = job
    coco = _coco(out)
    boxes = _coco_boxes(coco)
    sizes = {im["file_name"]: (im["width"], im["height"]) for im in coco["images"]}
    stems = {Path(f).stem: f for f in boxes}
    seen = set()
    for txt in (out / "yolo" / "labels").glob("*/*.txt"):
        split = txt.parent.name
        f = stems[txt.stem]
        link = next((out / "yolo" / "images" / split).glob(f"{txt.stem}.*"))
        assert os.path.samefile(link, base / f)  # the image beside its labels is the input itself
        w, h = sizes[f]
        got = []
        for line in txt.read_text().splitlines():
            cid, cx, cy, bw, bh = line.split()
            cx, cy, bw, bh = (float(v) for v in (cx, cy, bw, bh))
            got.append((VOCAB[int(cid)], ((cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h)))
        _same_boxes({f: sorted(got)}, {f: boxes[f]})
        seen.add(f)
    assert seen == set(boxes)
    val = {p.stem for p in (out / "yolo" / "labels" / "val").iterdir()}
    assert val == {p.stem for p in (out / "yolo-seg" / "labels" / "val").iterdir()} and 0 < len(val) < 20


ULTRALYTICS_SCRIPT = textwrap.dedent("""
    import json, socket, sys

    def no_network(*args, **kwargs):
        raise OSError("this test has no network")

    socket.socket.connect = no_network  # Ultralytics must not fetch fonts, weights or anything else
    socket.create_connection = no_network
    from ultralytics import YOLO

    report = {}
    for name, data, model in (("detect", sys.argv[1], "yolov8n.yaml"), ("segment", sys.argv[2], "yolov8n-seg.yaml")):
        yolo = YOLO(model)  # from scratch: an architecture, no weights
        metrics = yolo.train(data=data, epochs=1, imgsz=64, batch=4, device="cpu", workers=0, plots=False, amp=False,
                             pretrained=False, project=sys.argv[3], name=name, exist_ok=True, verbose=False)
        labels = {}
        for split, loader in (("train", yolo.trainer.train_loader), ("val", yolo.trainer.test_loader)):
            for lb in loader.dataset.labels:
                labels[lb["im_file"]] = {"split": split, "cls": lb["cls"].ravel().astype(int).tolist(),
                                         "bboxes": lb["bboxes"].tolist(), "segments": len(lb.get("segments", []))}
        report[name] = {"labels": labels, "fitness": float(metrics.fitness), "names": yolo.trainer.data["names"]}
    print("REPORT " + json.dumps(report))
""")


def test_ultralytics_trains_on_yolo_and_yolo_seg_as_written(job, tmp_path):
    assert _has("ultralytics"), "ultralytics is not installed (./install.sh --test installs it)"
    base, out = job
    env = dict(os.environ, YOLO_CONFIG_DIR=str(tmp_path / "settings"), YOLO_OFFLINE="true",
               YOLO_AUTOINSTALL="false", YOLO_VERBOSE="false")
    proc = subprocess.run([sys.executable, "-c", ULTRALYTICS_SCRIPT, str(out / "yolo" / "data.yaml"),
                           str(out / "yolo-seg" / "data.yaml"), str(tmp_path / "runs")],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(proc.stdout.split("REPORT ", 1)[1])
    coco = _coco(out)
    boxes = _coco_boxes(coco)
    sizes = {im["file_name"]: (im["width"], im["height"]) for im in coco["images"]}
    stems = {Path(f).stem: f for f in boxes}
    for name, sub in (("detect", "yolo"), ("segment", "yolo-seg")):
        r = report[name]
        assert r["names"] == dict(enumerate(VOCAB)) or r["names"] == {str(k): v for k, v in enumerate(VOCAB)}
        assert np.isfinite(r["fitness"]) and (tmp_path / "runs" / name / "weights" / "last.pt").is_file()
        assert len(r["labels"]) == 20  # every image read, none skipped as corrupt
        for im_file, lb in r["labels"].items():
            f = stems[Path(im_file).stem]
            assert Path(im_file).parent == out / sub / "images" / lb["split"]
            w, h = sizes[f]
            got = sorted((VOCAB[c], ((cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h))
                         for c, (cx, cy, bw, bh) in zip(lb["cls"], lb["bboxes"]))
            want = boxes[f]
            if name == "detect":
                _same_boxes({f: got}, {f: want})
            else:  # boxes Ultralytics derives from our polygons: through pixel centres (1 px) and simplified (1 px)
                assert lb["segments"] == len(want) and [n for n, _ in got] == [n for n, _ in want]
                assert np.allclose([b for _, b in got], [b for _, b in want], atol=2.5)


def test_labelme_label_file_loads_our_json(job):
    import labelme  # a test dependency (./install.sh --test)
    base, out = job
    coco = _coco(out)
    boxes = _coco_boxes(coco)
    stems = {Path(f).stem: f for f in boxes}
    files = sorted((out / "labelme").glob("*.json"))
    assert len(files) == 20
    for path in files:
        lf = labelme.LabelFile(str(path))  # reads the image through imagePath and checks its size
        image_path = getattr(lf, "image_path", None) or lf.imagePath
        assert os.path.samefile(path.parent / image_path, base / stems[path.stem])
        rects = sorted((s["label"], tuple(c for p in s["points"] for c in p))
                       for s in lf.shapes if s["shape_type"] == "rectangle")
        _same_boxes({path.stem: rects}, {path.stem: boxes[stems[path.stem]]})
        polys = [s for s in lf.shapes if s["shape_type"] == "polygon"]
        assert len(polys) >= len(rects) and all(3 <= len(s["points"]) <= 100 for s in polys)
        assert set(lf.flags) == set(VOCAB)


def test_datumaro_exports_cvat_and_voc_with_coco_boxes(job):
    import datumaro as dm  # a test dependency (./install.sh --test)
    base, out = job
    boxes = _coco_boxes(_coco(out))
    # CVAT XML as CVAT reads it: <image name=...> with a <box> (and a <mask>) per object
    cvat = {}
    for image in ET.parse(out / "cvat" / "default.xml").getroot().iterfind("image"):
        cvat[image.get("name")] = sorted(
            (b.get("label"), tuple(float(b.get(k)) for k in ("xtl", "ytl", "xbr", "ybr"))) for b in image.iterfind("box"))
        assert len(image.findall("mask")) == len(cvat[image.get("name")])
    _same_boxes(cvat, boxes)
    # Pascal VOC: one Annotations/<name>.xml per image
    voc = {}
    for xml in (out / "voc" / "Annotations").rglob("*.xml"):
        root = ET.parse(xml).getroot()
        voc[root.findtext("filename")] = sorted(
            (o.findtext("name"), tuple(float(o.findtext(f"bndbox/{k}")) for k in ("xmin", "ymin", "xmax", "ymax")))
            for o in root.iterfind("object"))
    _same_boxes(voc, boxes)
    # and Datumaro reads both exports back with their images (CVAT's reader wants them beside the XML, as a CVAT
    # task has them; VOC's in JPEGImages/), pixel for pixel the inputs
    for fmt, first in (("voc", "background"), ("cvat", None)):
        ds = dm.Dataset.import_from(str(out / fmt), fmt)
        labels = ds.categories()[dm.AnnotationType.label]
        n_boxes = sum(1 for item in ds for a in item.annotations if a.type == dm.AnnotationType.bbox)
        assert len(ds) == 20 and n_boxes == sum(len(v) for v in boxes.values()), fmt
        assert [labels[i].name for i in range(len(labels))] == ([first] if first else []) + VOCAB, fmt
        for item in ds:
            assert item.media.has_data, (fmt, item.id)
            source = np.asarray(Image.open(base / f"{item.id}.png").convert("RGB"))
            assert np.array_equal(item.media.data[:, :, ::-1].astype(np.uint8), source), (fmt, item.id)


def test_fiftyone_layout_points_at_the_images(job):
    base, out = job
    root = out / "fiftyone"
    assert (root / "data").is_symlink() and os.path.samefile(root / "data", base)
    labels = json.loads((root / "labels.json").read_text())
    assert labels["images"] and all((root / "data" / im["file_name"]).is_file() for im in labels["images"])
    assert _coco_boxes(labels) == _coco_boxes(_coco(out))


def test_label_studio_tasks_hold_coco_boxes_and_find_their_images(job):
    base, out = job
    coco = _coco(out)
    sizes = {im["file_name"]: (im["width"], im["height"]) for im in coco["images"]}
    tasks = json.loads((out / "labelstudio" / "tasks.json").read_text())
    got = {}
    for task in tasks:
        url = task["data"]["image"]
        assert url.startswith("/data/local-files/?d=")
        f = url[len("/data/local-files/?d="):]
        assert (base / f).is_file()  # served from the image root
        w, h = sizes[f]
        regions = task["predictions"][0]["result"]
        got[f] = sorted((r["value"]["rectanglelabels"][0], (r["value"]["x"] * w / 100, r["value"]["y"] * h / 100,
                                                           (r["value"]["x"] + r["value"]["width"]) * w / 100,
                                                           (r["value"]["y"] + r["value"]["height"]) * h / 100))
                        for r in regions if r["type"] == "rectanglelabels")
        polys = [r for r in regions if r["type"] == "polygonlabels"]
        assert len(polys) >= len(got[f]) and all(0 <= c <= 100 for p in polys for pt in p["value"]["points"] for c in pt)
        assert {r["from_name"] for r in regions} <= {"label", "polygon"} and all(0 < r["score"] <= 1 for r in regions)
    _same_boxes(got, _coco_boxes(coco), tol=1e-3)
    if _has("label_studio_sdk"):  # Label Studio's own check of predictions against the labeling config
        from label_studio_sdk.label_interface import LabelInterface

        interface = LabelInterface((out / "labelstudio" / "label_config.xml").read_text())
        assert all(interface.validate_prediction(t["predictions"][0]) for t in tasks)
