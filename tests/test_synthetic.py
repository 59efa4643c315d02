"""Synthetic shapes generator: determinism, mask/box/tag consistency, loadable by the training datasets
and pycocotools, class names tokenizable by the tiny Grounding DINO vocab."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from openvocab.masks import decode_mask
from openvocab.training.datasets import CocoTrainDataset, JsonlTagDataset
from openvocab.training.synthetic import COLOURS, SHAPES, make_synthetic_dataset


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return make_synthetic_dataset(tmp_path_factory.mktemp("synth") / "a", num_images=40, image_size=(96, 80),
                                  seed=3)


def test_deterministic_and_prefix_stable(synth, tmp_path):
    again = make_synthetic_dataset(tmp_path / "b", num_images=40, image_size=(96, 80), seed=3)
    assert again.coco_json.read_bytes() == synth.coco_json.read_bytes()
    assert again.tags_jsonl.read_bytes() == synth.tags_jsonl.read_bytes()
    for i in (0, 17, 39):
        assert (again.root / f"images/{i:05d}.png").read_bytes() == (synth.root / f"images/{i:05d}.png").read_bytes()
    # a smaller set is a prefix of the larger one; another seed gives other images
    small = make_synthetic_dataset(tmp_path / "c", num_images=5, image_size=(96, 80), seed=3)
    assert (small.root / "images/00004.png").read_bytes() == (synth.root / "images/00004.png").read_bytes()
    other = make_synthetic_dataset(tmp_path / "d", num_images=5, image_size=(96, 80), seed=4)
    assert (other.root / "images/00004.png").read_bytes() != (synth.root / "images/00004.png").read_bytes()


def test_images_masks_boxes_tags_consistent(synth):
    assert synth.classes == SHAPES and 4 <= len(SHAPES) <= 6
    data = json.loads(synth.coco_json.read_text())
    assert [c["name"] for c in data["categories"]] == list(SHAPES)
    assert [c["id"] for c in data["categories"]] == list(range(1, len(SHAPES) + 1))
    by_image: dict[int, list] = {}
    for a in data["annotations"]:
        by_image.setdefault(a["image_id"], []).append(a)
    n_objects = []
    for im in data["images"]:
        pixels = np.asarray(Image.open(synth.root / im["file_name"]))
        assert pixels.shape == (80, 96, 3) and pixels.dtype == np.uint8 and (im["width"], im["height"]) == (96, 80)
        anns = by_image[im["id"]]
        n_objects.append(len(anns))
        names = [SHAPES[a["category_id"] - 1] for a in anns]
        assert len(set(names)) == len(names)  # distinct classes per image
        assert im["tags"] == names
        assert all(n in im["caption"] for n in names) and im["caption"].endswith("background")
        for a in anns:
            assert a["iscrowd"] == 0 and isinstance(a["segmentation"]["counts"], str)
            m = decode_mask(a["segmentation"])
            assert m.shape == (80, 96) and a["area"] == int(m.sum()) > 0
            ys, xs = np.nonzero(m)
            x, y, w, h = a["bbox"]
            assert (x, y, x + w - 1, y + h - 1) == (xs.min(), ys.min(), xs.max(), ys.max())
            assert np.allclose(mask_utils.toBbox({**a["segmentation"], "counts": a["segmentation"]["counts"].encode()}),
                               a["bbox"])
            # the object's visible pixels carry its colour (up to the pixel noise)
            assert f"{a['color']} {SHAPES[a['category_id'] - 1]}" in im["caption"]
            assert np.abs(pixels[m].mean(0) - COLOURS[a["color"]]).max() < 5
        # visible masks of one image never overlap
        masks = np.stack([decode_mask(a["segmentation"]) for a in anns])
        assert masks.sum(0).max() == 1
    assert min(n_objects) == 1 and max(n_objects) == 3


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
def test_loaders_read_it(synth):
    coco = COCO(str(synth.coco_json))
    assert len(coco.getImgIds()) == 40 and len(coco.getCatIds()) == len(SHAPES)
    ann = coco.loadAnns(coco.getAnnIds(imgIds=[1]))[0]
    assert coco.annToMask(ann).sum() == ann["area"]

    ds = CocoTrainDataset(ann_file=str(synth.coco_json))
    lines = [json.loads(x) for x in synth.tags_jsonl.read_text().splitlines()]
    jl = JsonlTagDataset(ann_file=str(synth.tags_jsonl))
    assert len(ds) == len(jl) == len(lines) == 40 and ds.categories == list(SHAPES)
    for i in (0, 9):
        s, t = ds[i], jl[i]
        assert s.image.shape == (80, 96, 3) and np.array_equal(s.image, t.image)
        assert s.tags == t.tags == tuple(lines[i]["tags"]) == s.labels
        assert s.boxes.shape == (len(s.labels), 4)
        assert np.all(s.boxes[:, 2:] > s.boxes[:, :2])
        assert lines[i]["caption"] == json.loads(synth.coco_json.read_text())["images"][i]["caption"]


def test_class_names_tokenize_in_tiny_grounding_vocab(tmp_path):
    from grounding.groundingdino.detector import tiny_vocab
    from grounding.groundingdino.tokenize import load_tokenizer

    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(tiny_vocab()) + "\n")
    tok = load_tokenizer(str(vocab))
    unk = tok.convert_tokens_to_ids("[UNK]")
    for name in SHAPES:
        ids = tok(name, add_special_tokens=False)["input_ids"]
        assert ids and unk not in ids and len(ids) <= len(name), (name, ids)


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="classes"):
        make_synthetic_dataset(tmp_path, num_images=1, classes=("circle", "hexagon"))
    with pytest.raises(ValueError, match="max_objects"):
        make_synthetic_dataset(tmp_path, num_images=1, classes=("circle", "star"), max_objects=3)
    with pytest.raises(ValueError, match="num_images"):
        make_synthetic_dataset(tmp_path, num_images=0)


def test_module_cli(tmp_path):
    r = subprocess.run([sys.executable, "-m", "openvocab.training.synthetic", str(tmp_path / "s"), "--num-images", "3",
                        "--size", "64", "48", "--classes", "circle", "star", "--max-objects", "2", "--class-colours"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    data = json.loads((tmp_path / "s" / "coco.json").read_text())
    assert len(data["images"]) == 3 and [c["name"] for c in data["categories"]] == ["circle", "star"]
    assert Image.open(tmp_path / "s" / "images" / "00002.png").size == (64, 48)
    # --class-colours: class k is drawn in colour k
    assert {(a["category_id"], a["color"]) for a in data["annotations"]} <= {(1, list(COLOURS)[0]), (2, list(COLOURS)[1])}


def test_class_colours_keep_everything_else(tmp_path):
    plain = make_synthetic_dataset(tmp_path / "p", num_images=20, image_size=(64, 64), seed=5)
    easy = make_synthetic_dataset(tmp_path / "e", num_images=20, image_size=(64, 64), seed=5, class_colours=True)
    pa, ea = (json.loads(s.coco_json.read_text())["annotations"] for s in (plain, easy))
    assert len({a["color"] for a in pa}) > len(SHAPES) // 2  # random colours
    assert all(a["color"] == list(COLOURS)[a["category_id"] - 1] for a in ea)
    # same objects, boxes and masks; only the colours differ
    strip = [{k: v for k, v in a.items() if k != "color"} for a in pa]
    assert strip == [{k: v for k, v in a.items() if k != "color"} for a in ea]
