"""TAP region outputs: concepts from a user vocabulary (CLIP text encoder), the tiny_random mask head,
and captions / concepts through every writer."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config
from PIL import Image
from pycocotools.coco import COCO

from grounding.tap import TAPMaskHead, concepts_from_spec
from grounding.tap.concepts import RandomTextEncoder, read_names_file
from openvocab.registry import MASK_HEADS
from openvocab.serialize import result_from_dict
from openvocab.structures import Detections, ImageInfo, ImageResult, Tags
from openvocab.writers import CocoWriter, JsonlWriter, LabelMeWriter, OverlayWriter, YoloWriter

ROOT = Path(__file__).resolve().parents[1]
VOCAB = ["cat", "dog", "fire hydrant", "bicycle", "traffic light"]


def _image(h=120, w=160):
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([(x * 3) % 256, (y * 5) % 256, ((x + y) * 2) % 256], -1).astype(np.uint8)


def test_concepts_from_user_vocabulary_with_the_taggers_clip_text_encoder(bpe_files, tmp_path):
    import tagging.descriptions  # noqa: F401  (registers CLIPTextEncoder, as a config's custom_imports does)
    from tagging.descriptions.clip_text import CLIPTextEncoder

    names_file = tmp_path / "vocab.txt"
    names_file.write_text("# my classes\n" + "\n".join(VOCAB) + "\n\n", encoding="utf-8")
    assert read_names_file(names_file) == VOCAB
    enc_cfg = dict(type="CLIPTextEncoder", variant="tiny", checkpoint=None, vocab=bpe_files[0],
                   merges=bpe_files[1])
    spec = dict(names_file=str(names_file), text_encoder=enc_cfg, template="a photo of a {}")
    # the CLIP ViT-B/16 text space is 512-d: a TAP whose semantic embeddings are 512-d can use it
    head = MASK_HEADS.build(dict(type="TAPMaskHead", variant="tiny", checkpoint=None, concepts=spec,
                                 top_k_concepts=3, caption=False, model_kwargs=dict(sem_embed_dim=512)))
    assert str(names_file) in head.required_files()
    head.setup("cpu")
    cm = head.predictor.concepts
    assert cm.names == tuple(VOCAB) and tuple(cm.weights.shape) == (512, 5)
    enc = CLIPTextEncoder(variant="tiny", checkpoint=None, vocab=bpe_files[0], merges=bpe_files[1]).setup()
    want = enc.encode([f"a photo of a {n}" for n in VOCAB])  # unit rows
    torch.testing.assert_close(cm.weights, 100.0 * want.t())
    head.set_image(_image())
    pred = head.predictor.predict(boxes=np.array([[10, 10, 90, 100], [50, 20, 150, 110]], np.float32))
    probs = torch.softmax(torch.nn.functional.normalize(torch.from_numpy(pred.sem_embeds), dim=-1)
                          @ (100.0 * want.t()), -1)
    top = probs.topk(3, -1)
    assert pred.concept_names == [[VOCAB[j] for j in row] for row in top.indices.tolist()]
    np.testing.assert_allclose(pred.concept_scores, top.values.numpy(), rtol=1e-5, atol=1e-6)
    # the default tiny TAP (64-d semantic space) cannot use 512-d concepts: one clear error
    wrong = TAPMaskHead(variant="tiny", checkpoint=None, concepts=spec, caption=False)
    with pytest.raises(ValueError, match=r"512-d embeddings but the TAP model's semantic embeddings are 64-d.*"
                                         r"EVA02-CLIP-bigE-14-plus"):
        wrong.setup("cpu")


def test_vocabulary_spec_errors():
    with pytest.raises(ValueError, match="not registered.*custom_imports"):
        concepts_from_spec(dict(names=VOCAB, text_encoder=dict(type="NoSuchTextEncoder")), dim=8)
    with pytest.raises(ValueError, match="exactly one of 'names'"):
        concepts_from_spec(dict(text_encoder="random"), dim=8)
    with pytest.raises(ValueError, match="needs a 'text_encoder'"):
        concepts_from_spec(dict(names=VOCAB), dim=8)
    with pytest.raises(ValueError, match="unknown concept vocabulary keys"):
        concepts_from_spec(dict(names=VOCAB, text_encoder="random", scale=3), dim=8)
    with pytest.raises(ValueError, match="names file not found"):
        concepts_from_spec(dict(names_file="/nonexistent/v.txt", text_encoder="random"), dim=8)


def test_random_text_encoder_is_deterministic_per_text():
    enc = RandomTextEncoder(dim=16, seed=0)
    a, b = enc.encode(["cat", "dog"]), enc.encode(["dog", "cat", "cat"])
    torch.testing.assert_close(a[0], b[1])
    torch.testing.assert_close(a[1], b[0])
    torch.testing.assert_close(a.norm(dim=-1), torch.ones(2))
    assert not torch.allclose(a[0], a[1]) and not torch.allclose(RandomTextEncoder(dim=16, seed=1).encode(["cat"])[0], a[0])


def test_grounding_does_not_import_tagging():
    code = ("import sys, grounding, grounding.tap, grounding.verify\n"
            "from grounding.tap import TAPMaskHead\n"
            "h = TAPMaskHead(variant='tiny', checkpoint=None, concepts=dict(names=['a'], text_encoder='random'))\n"
            "h.setup('cpu')\n"
            "bad = [m for m in sys.modules if m.split('.')[0] == 'tagging']\n"
            "print(bad); sys.exit(1 if bad else 0)\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.fixture(scope="module")
def tiny_random_head():
    """The mask head exactly as configs/tiny_random.py builds it."""
    cfg = Config.fromfile(str(ROOT / "configs" / "tiny_random.py"))
    head = MASK_HEADS.build(cfg.mask_head)
    head.setup("cpu")
    return head, tuple(cfg.mask_head.concepts.names)


def _tap_result(head, file="/photos/street.jpg") -> ImageResult:
    img = _image()
    dets = Detections(boxes=np.array([[5, 8, 70, 90], [60, 30, 150, 115], [0, 0, 159, 119]], np.float32),
                      scores=np.array([0.9, 0.6, 0.3], np.float32), labels=("dog", "car", "dog"))
    regions = head.segment(img, dets)
    return ImageResult(image=ImageInfo(file, img.shape[1], img.shape[0]), tags=Tags.from_names(["dog", "car"]),
                       detections=dets, regions=regions)


def test_tiny_random_mask_head_gives_concepts_and_captions(tiny_random_head):
    head, vocab = tiny_random_head
    r = _tap_result(head).regions
    assert len(r) == 3 and r.captions is not None and r.concepts is not None
    for caption, concepts in zip(r.captions, r.concepts):
        assert isinstance(caption, str) and caption.isprintable()
        assert len(concepts) == 3 and all(c.name in vocab for c in concepts)
        scores = [c.score for c in concepts]
        assert scores == sorted(scores, reverse=True) and 0 < sum(scores) <= 1 + 1e-6
    assert head.required_files() == []  # nothing to download


def test_tap_captions_and_concepts_reach_every_writer(tiny_random_head, tmp_path):
    head, _ = tiny_random_head
    res = _tap_result(head)
    regions = res.regions
    out = tmp_path / "out"
    writers = [CocoWriter(), JsonlWriter(), LabelMeWriter(), OverlayWriter(), YoloWriter()]
    for w in writers:
        w.open(out)
        w.write(res, _image())
        w.close()
    # COCO: extra fields per annotation, and pycocotools still reads the file as detections
    coco = COCO(str(out / "coco.json"))
    anns = sorted(coco.loadAnns(coco.getAnnIds()), key=lambda a: a["id"])
    assert [a["region_caption"] for a in anns] == list(regions.captions)
    assert [[(c["name"], c["score"]) for c in a["concepts"]] for a in anns] == \
        [[(c.name, c.score) for c in cs] for cs in regions.concepts]
    # JSONL: the result reads back identically
    line = json.loads((out / "labels.jsonl").read_text(encoding="utf-8").splitlines()[0])
    back = result_from_dict(line)
    assert back.regions.captions == regions.captions and back.regions.concepts == regions.concepts
    # LabelMe: caption and concepts in each shape's description
    lm = json.loads((out / "labelme" / "street.json").read_text(encoding="utf-8"))
    rects = [s for s in lm["shapes"] if s["shape_type"] == "rectangle"]
    for s, cap, cs in zip(rects, regions.captions, regions.concepts):
        assert s["description"] == (f"score {float(res.detections.scores[rects.index(s)]):.3f}; {cap}; concepts: "
                                    + ", ".join(f"{c.name} {c.score:.2f}" for c in cs))
    # overlays: the concept and caption lines are drawn (the label block grows), and can be turned off
    png = np.asarray(Image.open(out / "vis" / "street.jpg"))
    assert png.shape == (120, 160, 3)
    plain = ImageResult(image=res.image, tags=res.tags, detections=res.detections,
                        regions=type(regions)(masks=regions.masks, mask_scores=regions.mask_scores))
    drawn = OverlayWriter(font_size=10, max_tags=0)
    full = np.asarray(drawn.render(res, _image())).astype(int)
    bare = np.asarray(drawn.render(plain, _image())).astype(int)
    off = np.asarray(OverlayWriter(font_size=10, max_tags=0, captions=False, concepts=0).render(res, _image()))
    assert np.array_equal(off, bare)
    assert (np.abs(full - bare).sum(-1) > 0).sum() > 200
    only_concepts = np.asarray(OverlayWriter(font_size=10, max_tags=0, captions=False).render(res, _image()))
    assert not np.array_equal(only_concepts, bare) and not np.array_equal(only_concepts, full)
    # YOLO has no place for text: one row per detection all the same
    assert len(next((out / "yolo" / "labels").glob("*/street.txt")).read_text().splitlines()) == 3
