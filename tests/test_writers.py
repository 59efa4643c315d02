"""Serialisation and the output writers (COCO, JSONL, YOLO, LabelMe, overlays)."""
import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from openvocab.registry import WRITERS
from openvocab.serialize import result_from_dict, result_to_dict
from openvocab.structures import (Concept, Detections, ImageInfo, ImageResult, Regions, Tag, Tags,
                                  TagSource)
from openvocab.writers import (CocoWriter, JsonlWriter, LabelMeWriter, OutputNamer, OverlayWriter, WriterContext,
                               YoloWriter, atomic_write_json, build_coco, tag_color)


def rle_of(mask: np.ndarray) -> dict:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")}


def rect_mask(h, w, x1, y1, x2, y2):
    m = np.zeros((h, w), bool)
    m[y1:y2, x1:x2] = True
    return m


def masked_result(file="/data/a/street.jpg") -> ImageResult:
    """200x100 image: a car (masked 30x20 rectangle) and a dog; tags incl. a non-boxable one."""
    h, w = 100, 200
    tags = Tags((Tag("car", 0.9123456789, TagSource.CLOSED_SET, name_zh="汽车", boxable=True),
                 Tag("dog", np.float32(0.71), TagSource.OPEN_SET, boxable=True),
                 Tag("sunny", 0.65, TagSource.CLOSED_SET, boxable=False)))
    dets = Detections(boxes=np.array([[20.25, 10.5, 120.125, 60.75], [150.1, 40.3, 199.9, 99.7]], np.float32),
                      scores=np.array([0.87654321, 0.4], np.float32), labels=("car", "dog"),
                      phrases=("car", "a dog"))
    regions = Regions(masks=(rle_of(rect_mask(h, w, 30, 20, 60, 40)), rle_of(rect_mask(h, w, 160, 50, 190, 90))),
                      mask_scores=np.array([0.95, 0.5], np.float32),
                      concepts=((Concept("car", 0.8), Concept("vehicle", 0.1)), (Concept("dog", 0.7),)),
                      captions=("a red car", "a small dog"))
    return ImageResult(image=ImageInfo(file, w, h), tags=tags, detections=dets, regions=regions)


def box_result(file="/data/b/street.jpg", label="person") -> ImageResult:
    dets = Detections(boxes=np.array([[-10, -10, 50, 50]], np.float32), scores=np.array([0.5], np.float32),
                      labels=(label,))
    return ImageResult(image=ImageInfo(file, 200, 100), tags=Tags.from_names([label]), detections=dets)


def empty_result(file="/data/c.png") -> ImageResult:
    return ImageResult(image=ImageInfo(file, 64, 48), tags=Tags((Tag("wall", 0.3),)))


def assert_same(a: ImageResult, b: ImageResult):
    assert a.image == b.image and a.tags == b.tags
    assert a.detections.boxes.dtype == b.detections.boxes.dtype == np.float32
    assert a.detections.boxes.tobytes() == b.detections.boxes.tobytes()
    assert a.detections.scores.tobytes() == b.detections.scores.tobytes()
    assert a.detections.labels == b.detections.labels and a.detections.phrases == b.detections.phrases
    assert (a.regions is None) == (b.regions is None)
    if a.regions is not None:
        assert a.regions.masks == b.regions.masks and a.regions.concepts == b.regions.concepts
        assert a.regions.mask_scores.tobytes() == b.regions.mask_scores.tobytes()
        assert a.regions.captions == b.regions.captions


# ----------------------------------------------------------------------------- serialize


def test_result_dict_layout_and_lossless_round_trip():
    r = masked_result()
    d = result_to_dict(r)
    assert list(d) == ["file", "width", "height", "tags", "detections"]
    assert d["tags"][0] == {"name": "car", "score": 0.9123456789, "source": "closed-set", "name_zh": "汽车",
                            "boxable": True}
    assert d["tags"][1] == {"name": "dog", "score": float(np.float32(0.71)), "source": "open-set", "boxable": True}
    det = d["detections"][0]
    assert det["box"] == [20.25, 10.5, 120.125, 60.75] and det["score"] == float(np.float32(0.87654321))
    assert det["label"] == "car" and det["phrase"] == "car" and det["caption"] == "a red car"
    assert det["mask"]["size"] == [100, 200] and det["mask_score"] == float(np.float32(0.95))
    assert det["concepts"] == [{"name": "car", "score": 0.8}, {"name": "vehicle", "score": 0.1}]
    for res in (r, box_result(), empty_result()):
        text = json.dumps(result_to_dict(res), ensure_ascii=False)
        assert_same(res, result_from_dict(json.loads(text)))
    plain = result_to_dict(box_result())
    assert set(plain["detections"][0]) == {"box", "score", "label", "phrase"}
    assert set(plain["tags"][0]) == {"name", "score", "source"}


def test_result_from_bad_dict_raises_value_error():
    d = result_to_dict(masked_result())
    for broken in ({**d, "detections": [{"score": 1.0}]}, {k: v for k, v in d.items() if k != "width"},
                   {**d, "width": 0}, {**d, "tags": [{"name": "x"}]}, "nope"):
        with pytest.raises(ValueError):
            result_from_dict(broken)
    half = json.loads(json.dumps(d))
    del half["detections"][1]["mask"]
    with pytest.raises(ValueError, match="some detections have a mask"):
        result_from_dict(half)


# ----------------------------------------------------------------------------- COCO


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # pycocotools vs NumPy 2
def test_coco_loads_in_pycocotools_and_masks_decode(tmp_path):
    results = [masked_result(), box_result(), empty_result()]
    w = WRITERS.build(dict(type="CocoWriter"))
    w.open(tmp_path)  # stand-alone: kept, written at close
    for r in results:
        w.write(r, None)
    w.close()
    coco = COCO(str(tmp_path / "coco.json"))
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == ["car", "dog", "person"]  # sorted
    imgs = coco.loadImgs(coco.getImgIds())
    assert [(i["id"], i["file_name"], i["width"], i["height"]) for i in imgs] == [
        (1, "/data/a/street.jpg", 200, 100), (2, "/data/b/street.jpg", 200, 100), (3, "/data/c.png", 64, 48)]
    assert [t["name"] for t in imgs[0]["tags"]] == ["car", "dog", "sunny"]
    assert imgs[0]["tags"][2] == {"name": "sunny", "score": 0.65, "source": "closed-set", "boxable": False}
    anns = coco.loadAnns(coco.getAnnIds())
    assert [a["id"] for a in anns] == [1, 2, 3] and [a["image_id"] for a in anns] == [1, 1, 2]
    car = anns[0]
    assert car["bbox"] == [20.25, 10.5, 120.125 - 20.25, 60.75 - 10.5] and car["iscrowd"] == 0
    assert car["area"] == 30 * 20 and car["category_id"] == 1 and car["tag"] == "car" and car["phrase"] == "car"
    assert car["score"] == float(np.float32(0.87654321)) and car["mask_score"] == float(np.float32(0.95))
    assert car["concepts"][1] == {"name": "vehicle", "score": 0.1} and car["region_caption"] == "a red car"
    assert np.array_equal(coco.annToMask(car).astype(bool), rect_mask(100, 200, 30, 20, 60, 40))
    assert anns[1]["phrase"] == "a dog" and anns[1]["area"] == 30 * 40
    person = anns[2]
    assert "segmentation" not in person and person["area"] == 60.0 * 60.0 and person["category_id"] == 3
    # detections as results: loadRes keeps the RLE masks
    res = coco.loadRes([dict(a) for a in anns[:2]])
    assert len(res.getAnnIds()) == 2
    assert np.array_equal(res.annToMask(res.loadAnns(2)[0]).astype(bool), rect_mask(100, 200, 160, 50, 190, 90))
    # in a job: the job's class numbering, streamed from the record (finish), the same file as build_coco's
    w = CocoWriter(filename="job.json")
    w.open(tmp_path, context=WriterContext(classes=("person", "dog", "car", "cat")))
    w.finish(lambda: iter(results))
    w.close()
    job = json.loads((tmp_path / "job.json").read_text(encoding="utf-8"))
    assert [c["name"] for c in job["categories"]] == ["person", "dog", "car", "cat"]  # all classes, in order
    assert [a["category_id"] for a in job["annotations"]] == [3, 2, 1]
    ref = build_coco(results, classes=["person", "dog", "car", "cat"])
    for key in ("images", "annotations", "categories"):
        assert job[key] == ref[key]


# ----------------------------------------------------------------------------- JSONL


def test_jsonl_lines_in_input_order_replace_a_torn_file_atomically(tmp_path):
    r1, r2, r3 = masked_result(), box_result(), empty_result()
    (tmp_path / "labels.jsonl").write_text('{"file": "/old.png", "wid')  # a torn file from an older run
    w = JsonlWriter()
    w.open(tmp_path)
    w.finish(lambda: iter([r1, r2, r3]))
    w.close()
    lines = (tmp_path / "labels.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3
    for line, r in zip(lines, (r1, r2, r3)):
        assert_same(result_from_dict(json.loads(line)), r)
    assert "汽车" in lines[0]  # UTF-8, not escaped
    assert [p.name for p in tmp_path.iterdir()] == ["labels.jsonl"]  # no temp file left


def test_file_names_that_are_not_utf8_round_trip_in_json(tmp_path):
    raw = b"/data/caf\xe9-\xff.jpg"  # Latin-1 bytes: not UTF-8
    name = os.fsdecode(raw)
    w = JsonlWriter()
    w.open(tmp_path)
    w.write(box_result(name), None)
    w.close()
    text = (tmp_path / "labels.jsonl").read_bytes().decode("utf-8")  # the file is valid UTF-8
    assert "\\udce9" in text and "\\udcff" in text
    assert os.fsencode(json.loads(text)["file"]) == raw


# ----------------------------------------------------------------------------- YOLO


def test_yolo_numbers_classes_and_data_yaml(tmp_path):
    kept = tmp_path / "yolo" / "labels" / "train" / "kept.txt"
    kept.parent.mkdir(parents=True)
    kept.write_text("0 0.5 0.5 0.1 0.1\n")  # written by an earlier run: left alone
    (tmp_path / "yolo" / "images" / "train").mkdir(parents=True)
    os.symlink("/x/kept.png", tmp_path / "yolo" / "images" / "train" / "kept.png")
    w = YoloWriter(val_fraction=0.0)
    w.open(tmp_path, context=WriterContext(classes=("person", "car")))  # the job's class numbering
    w.write(masked_result(), None)
    w.write(empty_result(), None)
    w.finish(lambda: iter([box_result("/data/old.jpg", "person"), box_result("/x/kept.png", "person"),
                           masked_result(), empty_result()]))
    w.close()
    labels, images = tmp_path / "yolo" / "labels" / "train", tmp_path / "yolo" / "images" / "train"
    # an earlier run's image without a label file gets one; an existing one is left alone
    assert (labels / "old.txt").read_text() == "0 0.125000 0.250000 0.250000 0.500000\n"
    assert kept.read_text() == "0 0.5 0.5 0.1 0.1\n"
    lines = (labels / "street.txt").read_text().splitlines()
    # car box [20.25, 10.5, 120.125, 60.75] on 200x100: cx = 70.1875/200, cy = 35.625/100, w = 99.875/200, h = 0.5025
    assert lines[0] == "1 0.350938 0.356250 0.499375 0.502500"
    # dog box [150.1, 40.3, 199.9, 99.7] (float32): not in the job's classes -> appended as class 2
    x1, y1, x2, y2 = np.array([150.1, 40.3, 199.9, 99.7], np.float32).astype(float)
    assert lines[1] == f"2 {(x1 + x2) / 400:.6f} {(y1 + y2) / 200:.6f} {(x2 - x1) / 200:.6f} {(y2 - y1) / 100:.6f}"
    assert (labels / "c.txt").read_text() == ""
    # every image is linked beside its labels, under the same stem (Ultralytics: /images/ -> /labels/)
    assert sorted(p.name for p in images.iterdir()) == ["c.png", "kept.png", "old.jpg", "street.jpg"]
    assert os.readlink(images / "street.jpg") == "/data/a/street.jpg"
    assert not any((tmp_path / "yolo" / "labels" / "val").iterdir())
    yaml_text = (tmp_path / "yolo" / "data.yaml").read_text()
    import yaml

    data = yaml.safe_load(yaml_text)
    assert data["names"] == {0: "person", 1: "car", 2: "dog"} and data["nc"] == 3
    assert "path" not in data  # relative to the YAML's folder: the dataset can be moved
    assert data["train"] == "images/train" and data["val"] == "images/train"  # val_fraction 0: val = train
    # without a class numbering: the labels found, sorted by name, whatever the order of the images
    w = YoloWriter(subdir="yolo2", val_fraction=0.0)
    w.open(tmp_path)
    for r in (box_result(), masked_result("/x/m.png")):
        w.write(r, None)
    w.close()
    assert yaml.safe_load((tmp_path / "yolo2" / "data.yaml").read_text())["names"] == {0: "car", 1: "dog", 2: "person"}
    assert (tmp_path / "yolo2" / "labels" / "train" / "street.txt").read_text().startswith("2 ")


def test_yolo_split_is_stable_by_file(tmp_path):
    from openvocab.image_root import split_of

    root = tmp_path / "photos"
    files = [str(root / f"d{i % 7}" / f"im{i:03d}.jpg") for i in range(200)]
    results = [box_result(f) for f in files]
    names = {f: f"n{i}" for i, f in enumerate(files)}

    def run(subdir, these, fraction=0.25):
        w = YoloWriter(subdir=subdir, val_fraction=fraction)
        w.open(tmp_path, context=WriterContext(classes=("person",), names=names, image_root=str(root)))
        for r in these:
            w.write(r, None)
        w.finish(lambda: iter(these))
        w.close()
        return {p.stem for p in (tmp_path / subdir / "labels" / "val").iterdir()}

    val = run("a", results)
    assert 30 <= len(val) <= 70  # about a quarter of 200
    expected = {names[f] for f in files if split_of(os.path.relpath(f, root), 0.25) == "val"}
    assert val == expected
    # another run over half of the images (in another order) puts each image in the same split
    half = results[::2][::-1]
    assert run("b", half) == {names[r.image.file] for r in half} & val
    # a resumed job with another fraction moves images: none is left in both splits
    val_c = run("a", results, fraction=0.5)
    train_c = {p.stem for p in (tmp_path / "a" / "labels" / "train").iterdir()}
    assert val <= val_c and not (train_c & val_c) and len(train_c | val_c) == 200
    assert {p.stem for p in (tmp_path / "a" / "images" / "val").iterdir()} == val_c
    import yaml

    assert yaml.safe_load((tmp_path / "a" / "data.yaml").read_text())["val"] == "images/val"


def test_yolo_clips_boxes_and_writes_segments(tmp_path):
    w = YoloWriter(segments=True, val_fraction=0.0)
    w.open(tmp_path, context=WriterContext(classes=("person", "car", "dog")))
    w.write(box_result(), None)  # [-10, -10, 50, 50] on 200x100 -> clipped to [0, 0, 50, 50]
    w.write(masked_result("/x/seg.png"), None)
    w.close()
    labels = tmp_path / "yolo" / "labels" / "train"
    # no mask: the clipped box as a 4-corner polygon (a seg dataset has polygons only)
    assert (labels / "street.txt").read_text() == "0 " + " ".join(
        f"{v:.6f}" for v in (0, 0, 0.25, 0, 0.25, 0.5, 0, 0.5)) + "\n"
    seg = (labels / "seg.txt").read_text().splitlines()
    cid, *coords = seg[0].split()
    pts = np.array(coords, float).reshape(-1, 2) * [200, 100]
    assert cid == "1" and len(pts) == 4  # the car's rectangle mask: 4 corners, pixels 30..59 x 20..39
    assert sorted(map(tuple, np.rint(pts).astype(int).tolist())) == [(30, 20), (30, 39), (59, 20), (59, 39)]


# ----------------------------------------------------------------------------- LabelMe


def test_labelme_fields_shapes_and_unique_names(tmp_path):
    img_dir = tmp_path / "imgs"
    w = LabelMeWriter()
    w.open(tmp_path / "out")
    a = masked_result(str(img_dir / "a" / "street.jpg"))
    b = box_result(str(img_dir / "b" / "street.jpg"))
    w.write(a, None)
    w.write(b, None)
    w.close()
    files = sorted(p.name for p in (tmp_path / "out" / "labelme").iterdir())
    assert len(files) == 2 and "street.json" in files  # second street.jpg gets a disambiguator
    other = [f for f in files if f != "street.json"][0]
    b_hash = hashlib.sha1(str(img_dir / "b" / "street.jpg").encode()).hexdigest()[:8]
    assert other == f"street-{b_hash}.json"
    d = json.loads((tmp_path / "out" / "labelme" / "street.json").read_text(encoding="utf-8"))
    assert d["imageHeight"] == 100 and d["imageWidth"] == 200 and d["imageData"] is None
    assert d["imagePath"] == os.path.join("..", "..", "imgs", "a", "street.jpg")
    assert (tmp_path / "out" / "labelme" / d["imagePath"]).resolve() == (img_dir / "a" / "street.jpg").resolve()
    assert d["flags"] == {"car": True, "dog": True, "sunny": True}
    rect, poly = d["shapes"][0], d["shapes"][1]
    assert rect["shape_type"] == "rectangle" and rect["label"] == "car"
    assert rect["points"] == [[20.25, 10.5], [120.125, 60.75]] and rect["group_id"] == 0
    assert rect["description"] == "score 0.877; a red car; concepts: car 0.80, vehicle 0.10"
    assert poly["shape_type"] == "polygon" and poly["group_id"] == 0
    assert sorted(map(tuple, poly["points"])) == [(30.0, 20.0), (30.0, 39.0), (59.0, 20.0), (59.0, 39.0)]
    assert [s["shape_type"] for s in d["shapes"]] == ["rectangle", "polygon", "rectangle", "polygon"]
    d2 = json.loads((tmp_path / "out" / "labelme" / other).read_text())
    assert [(s["shape_type"], s["group_id"], s["points"]) for s in d2["shapes"]] == [
        ("rectangle", None, [[-10.0, -10.0], [50.0, 50.0]])]
    # resume: same names as before; a missing file of an earlier image is written again
    (tmp_path / "out" / "labelme" / "street.json").unlink()
    w2 = LabelMeWriter()
    c = empty_result(str(img_dir / "c" / "street.png"))
    names = {a.image.file: "street", b.image.file: other[:-len(".json")], c.image.file: "street-c"}
    w2.open(tmp_path / "out", context=WriterContext(names=names))  # a job's names: fixed for every input
    w2.write(c, None)
    w2.finish(lambda: iter([a, b, c]))
    w2.close()
    assert json.loads((tmp_path / "out" / "labelme" / "street.json").read_text(encoding="utf-8")) == d
    assert len(list((tmp_path / "out" / "labelme").glob("*.json"))) == 3
    # the class list for labelme's --labels: every label, sorted by name without a job numbering
    assert (tmp_path / "out" / "labelme" / "labels.txt").read_text() == "car\ndog\nperson\n"


def test_output_names_are_unique_and_stable():
    n1, n2 = OutputNamer(), OutputNamer()
    names = [n1(f) for f in ("a/x.jpg", "b/x.jpg", "c/X.png", "a/x.jpg", "y.jpg")]
    assert names[0] == "x" and names[3] == "x" and names[4] == "y"
    assert len(set(names[:3])) == 3 and names[1].startswith("x-") and names[2].startswith("X-")
    assert [n2(f) for f in ("a/x.jpg", "b/x.jpg", "c/X.png")] == names[:3]  # depends only on the paths
    assert names[1] == "x-" + hashlib.sha1(b"b/x.jpg").hexdigest()[:8]
    n3 = OutputNamer()  # the other order: the first one seen keeps the plain stem
    assert [n3("b/x.jpg"), n3("a/x.jpg")] == ["x", "x-" + hashlib.sha1(b"a/x.jpg").hexdigest()[:8]]


# ----------------------------------------------------------------------------- overlays


def test_overlay_png_size_and_drawn_pixels(tmp_path, shared_dir):
    rgb = np.asarray(Image.open(shared_dir / "images" / "demo4.jpg").convert("RGB"))  # 428x640
    h, w = rgb.shape[:2]
    mask = rect_mask(h, w, 200, 300, 300, 400)
    r = ImageResult(image=ImageInfo("demo4.jpg", w, h), tags=Tags((Tag("person", 0.9), Tag("outdoor", 0.8))),
                    detections=Detections(boxes=np.array([[100, 250, 350, 500]], np.float32),
                                          scores=np.array([0.87], np.float32), labels=("person",)),
                    regions=Regions(masks=(rle_of(mask),), mask_scores=np.array([0.9], np.float32),
                                    captions=("a person walking",)))
    wr = OverlayWriter(mask_alpha=0.5, format="png", max_side=None)
    wr.open(tmp_path)
    wr.write(r, rgb)
    wr.close()
    out = np.asarray(Image.open(tmp_path / "vis" / "demo4.png"))
    assert out.shape == rgb.shape
    color = np.array(tag_color("person"))
    assert np.array_equal(out[450, 100], color) and np.array_equal(out[500, 200], color)  # box outline
    inside = np.rint(rgb[350, 250] * 0.5 + color * 0.5)  # translucent mask, alpha 0.5
    assert np.abs(out[350, 250].astype(int) - inside).max() <= 1
    assert np.array_equal(out[600:, :80], rgb[600:, :80])  # nothing drawn in the bottom-left corner
    assert np.array_equal(out[420:480, 120:180], rgb[420:480, 120:180])  # inside the box, off the mask
    corner = out[:12, :30].astype(int) - rgb[:12, :30]  # the tag panel darkens the top-left corner
    assert corner.mean() < -10
    label = out[225:250, 100:200].astype(int) - rgb[225:250, 100:200]  # label above the box
    assert np.abs(label).mean() > 20
    with pytest.raises(ValueError, match="image is 428x640"):
        wr.render(ImageResult(image=ImageInfo("x", 10, 10)), rgb)


# ----------------------------------------------------------------------------- atomic writes


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "x.json"
    atomic_write_json(path, {"a": 1})
    assert json.loads(path.read_text()) == {"a": 1}
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # not the temp file's private 0600
    path.chmod(0o640)
    atomic_write_json(path, {"a": 1})
    assert path.stat().st_mode & 0o777 == 0o640  # the replaced file's permissions are kept

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_json(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_writer_misuse_and_bad_arguments(tmp_path):
    w = CocoWriter()
    with pytest.raises(ValueError):
        w.write(empty_result(), None)
    w.open(tmp_path)
    with pytest.raises(ValueError):
        w.write({"file": "x"}, None)
    for bad in (lambda: CocoWriter(filename="a/b.json"), lambda: OverlayWriter(mask_alpha=2),
                lambda: YoloWriter(subdir=""), lambda: LabelMeWriter(epsilon=-1)):
        with pytest.raises(ValueError):
            bad()
    with pytest.raises(TypeError):
        CocoWriter("coco.json")  # keyword-only


def _crowded(h=600, w=800, n=40, seed=0) -> ImageResult:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, [w - 60, h - 60], (n, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(20, 60, (n, 2))], axis=1).astype(np.float32)
    labels = tuple(f"thing{i % 7}" for i in range(n))
    masks = tuple(rle_of(rect_mask(h, w, *[int(v) for v in b])) for b in boxes)
    return ImageResult(image=ImageInfo("crowd.jpg", w, h), tags=Tags(tuple(Tag(f"tag{k}", 0.9 - k / 50) for k in range(12))),
                       detections=Detections(boxes=boxes, scores=rng.uniform(0.3, 0.9, n).astype(np.float32), labels=labels),
                       regions=Regions(masks=masks, mask_scores=np.ones(n, np.float32),
                                       captions=tuple(f"a caption for box {i}" for i in range(n))))


def test_overlay_labels_never_overlap_each_other_or_the_tag_panel(tmp_path):
    r = _crowded()
    wr = OverlayWriter()
    picture = wr.render(r, np.full((600, 800, 3), 128, np.uint8))
    assert picture.size == (800, 600)
    rects = list(wr.last_labels.values()) + [wr.last_panel]
    assert len(wr.last_labels) >= 30  # crowded, yet most boxes keep a label
    for k, a in enumerate(rects):
        assert 0 <= a[0] < a[2] <= 800 and 0 <= a[1] < a[3] <= 600
        for b in rects[k + 1:]:
            overlap_w = min(a[2], b[2]) - max(a[0], b[0])
            overlap_h = min(a[3], b[3]) - max(a[1], b[1])
            assert overlap_w <= 0 or overlap_h <= 0, (a, b)
    # the best box gets a place next to it
    best = int(np.argmax(r.detections.scores))
    x1, y1, x2, y2 = r.detections.boxes[best]
    lx1, ly1, lx2, ly2 = wr.last_labels[best]
    assert lx1 <= x2 + 1 and lx2 >= x1 - 1 and ly1 <= y2 + 1 and ly2 >= y1 - 1


def test_label_layout_places_until_full_and_keeps_reserved_areas_free():
    from openvocab.writers.label_layout import LabelLayout

    lay = LabelLayout(100, 50, reserved=[(0, 0, 40, 20)], cell=2)
    spots = [lay.place((50, 20, 60, 30), (30, 10)) for _ in range(30)]
    placed = [s for s in spots if s is not None]
    # 100x50 minus the 40x20 panel holds at most (5000 - 800) / 300 = 14 labels of 30x10; then none fits
    assert 8 <= len(placed) <= 14 and spots[-1] is None
    assert lay.place((0, 0, 1, 1), (200, 5)) is None  # wider than the picture
    for k, a in enumerate(placed + [(0, 0, 40, 20)]):
        for b in placed[k + 1:]:
            assert min(a[2], b[2]) <= max(a[0], b[0]) or min(a[3], b[3]) <= max(a[1], b[1])
    assert placed[0] == (50, 10, 80, 20)  # first choice: just above its box


def test_overlay_default_is_a_downscaled_jpeg(tmp_path):
    h, w = 3000, 4000
    r = ImageResult(image=ImageInfo("/x/big.jpg", w, h), tags=Tags((Tag("person", 0.9),)),
                    detections=Detections(boxes=np.array([[1000, 1000, 2000, 2500]], np.float32),
                                          scores=np.array([0.8], np.float32), labels=("person",)),
                    regions=Regions(masks=(rle_of(rect_mask(h, w, 1200, 1200, 1800, 2400)),),
                                    mask_scores=np.ones(1, np.float32)))
    rgb = np.full((h, w, 3), 100, np.uint8)
    wr = OverlayWriter()
    wr.open(tmp_path)
    wr.write(r, rgb)
    wr.close()
    path = tmp_path / "vis" / "big.jpg"
    with Image.open(path) as pic:
        assert pic.format == "JPEG" and pic.size == (2048, 1536)
        small = np.asarray(pic.convert("RGB")).astype(int)
    color = np.array(tag_color("person"))
    # the mask (1200..1800 x 1200..2400), scaled by 0.512: the default 0.45 blend of the tag colour; outside: grey
    assert np.abs(small[900, 768] - (100 * 0.55 + color * 0.45)).max() <= 4
    assert np.abs(small[1400, 1800] - 100).max() <= 4
    assert path.stat().st_size < 1_000_000
