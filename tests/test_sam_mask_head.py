"""The registered SAM mask head: parity with ``segment_anything.SamPredictor``, checkpoints, pipeline."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from pycocotools.coco import COCO
from segment_anything import SamPredictor, sam_model_registry

from grounding.groundingdino import GroundingDINODetector
from grounding.sam import BUILDERS, CHECKPOINT_VARIANT, CHECKPOINTS, SAMMaskHead, select_mask_index
from openvocab.checkpoint import CheckpointError
from openvocab.hub import MissingFileError
from openvocab.masks import decode_mask
from openvocab.pipeline import Pipeline
from openvocab.registry import MASK_HEADS
from openvocab.structures import Detections, ImageInfo
from openvocab.writers.coco import CocoWriter

W, H = 214, 320  # demo4.jpg (428 x 640) at half size


@pytest.fixture(scope="module")
def photo(shared_dir) -> np.ndarray:
    with Image.open(shared_dir / "images" / "demo4.jpg") as im:
        return np.asarray(im.convert("RGB").resize((W, H), Image.BILINEAR))


def _sharpen(model: torch.nn.Module, seed: int = 1, gain: float = 0.9) -> None:
    """Rescale the random decoder weights so that masks and IoUs depend clearly on the prompt
    (at the default init every prompt gets a ~60% mask and the same multimask choice)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.mask_decoder.parameters():
            if p.ndim > 1:
                p.copy_(torch.randn(p.shape, generator=g) * gain / p.shape[1] ** 0.5)


@pytest.fixture(scope="module")
def head(photo) -> SAMMaskHead:
    h = MASK_HEADS.build(dict(type="SAMMaskHead", variant="tiny", checkpoint=None, prompt_batch_size=3))
    h.setup("cpu")
    _sharpen(h.predictor.model)
    return h


def _boxes(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 0.6, (n, 2)) * [W, H]
    return np.concatenate([xy, xy + rng.uniform(0.1, 0.4, (n, 2)) * [W, H]], 1).astype(np.float32)


def test_boxes_equal_official_predictor(head, photo):
    boxes = _boxes(7)
    head.set_image(photo)
    regions = head.predict(boxes=boxes)  # 7 boxes in batches of 3: three decoder calls
    assert len(regions) == 7 and regions.concepts is None and regions.captions is None
    assert regions.mask_scores.dtype == np.float32
    official = SamPredictor(head.predictor.model)
    official.set_image(photo)
    assert torch.equal(official.features, head.predictor.features)
    fractions = []
    for rle, score, box in zip(regions.masks, regions.mask_scores, boxes):
        masks, scores, _ = official.predict(box=box, multimask_output=False)
        assert rle["size"] == [H, W]
        got = decode_mask(rle)
        assert np.array_equal(got, masks[0])
        np.testing.assert_allclose(score, scores[0], atol=1e-5, rtol=0)
        fractions.append(got.mean())
    assert 0.02 < min(fractions) and max(fractions) < 0.98 and np.ptp(fractions) > 0.05  # not trivial


def test_points_and_multimask_choice_equal_official(head, photo):
    rng = np.random.default_rng(3)
    points = (rng.uniform(0, 1, (6, 2, 2)) * [W, H]).astype(np.float32)
    labels = np.array([[1, 0], [1, 1], [1, -1], [1, 0], [0, 1], [1, 1]])
    head.set_image(photo)
    official = SamPredictor(head.predictor.model)
    official.set_image(photo)
    pred = head.predictor.predict(points=points, point_labels=labels)
    want_index = []
    for i in range(6):
        masks, scores, _ = official.predict(point_coords=points[i], point_labels=labels[i],
                                            multimask_output=True)
        k = int(scores.argmax())
        want_index.append(k + 1)
        assert np.array_equal(pred.masks[i], masks[k])
        np.testing.assert_allclose(pred.scores[i], scores[k], atol=1e-5, rtol=0)
        np.testing.assert_allclose(pred.iou_pred[i, 1:], scores, atol=1e-5, rtol=0)
    assert pred.mask_index.tolist() == want_index
    assert len(set(want_index)) > 1  # the choice really varies
    # a fixed index: the single-mask output, as SamPredictor with multimask_output=False
    head.predictor.multimask = 0
    try:
        fixed = head.predict(points=points, point_labels=labels)
    finally:
        head.predictor.multimask = "auto"
    for i in range(6):
        masks, scores, _ = official.predict(point_coords=points[i], point_labels=labels[i],
                                            multimask_output=False)
        assert np.array_equal(decode_mask(fixed.masks[i]), masks[0])
        np.testing.assert_allclose(fixed.mask_scores[i], scores[0], atol=1e-5, rtol=0)


def test_box_plus_points_equal_official(head, photo):
    boxes = _boxes(3, seed=5)
    points = ((boxes[:, :2] + boxes[:, 2:]) / 2)[:, None, :]
    head.set_image(photo)
    official = SamPredictor(head.predictor.model)
    official.set_image(photo)
    r = head.predict(boxes=boxes, points=points, point_labels=np.ones((3, 1), np.int64))
    for i in range(3):
        masks, scores, _ = official.predict(point_coords=points[i], point_labels=np.ones(1), box=boxes[i],
                                            multimask_output=False)
        assert np.array_equal(decode_mask(r.masks[i]), masks[0])
        np.testing.assert_allclose(r.mask_scores[i], scores[0], atol=1e-5, rtol=0)


def test_select_mask_index_rule():
    iou = torch.tensor([[0.9, 0.1, 0.5, 0.2], [0.0, 0.1, 0.5, 0.7]])
    assert select_mask_index(iou, True).tolist() == [0, 0]
    assert select_mask_index(iou, False).tolist() == [2, 3]
    assert select_mask_index(iou, False, 1).tolist() == [1, 1]
    with pytest.raises(ValueError):
        select_mask_index(iou, False, 4)


def test_checkpoint_round_trip_and_broken_checkpoint(head, photo, tmp_path):
    sd = head.predictor.model.state_dict()
    path = tmp_path / "sam_tiny.pth"
    torch.save(sd, path)
    # same prompt batches as ``head``: bit-identical outputs (seed is unused when weights load)
    loaded = SAMMaskHead(variant="tiny", checkpoint=str(path), seed=123, prompt_batch_size=3)
    loaded.setup("cpu")
    boxes = _boxes(4, seed=9)
    head.set_image(photo)
    loaded.set_image(photo)
    a, b = head.predict(boxes=boxes), loaded.predict(boxes=boxes)
    assert a.masks == b.masks
    np.testing.assert_array_equal(a.mask_scores, b.mask_scores)

    broken = dict(sd)
    del broken["mask_decoder.iou_token.weight"]
    broken["mask_decoder.extra_head.weight"] = torch.zeros(2)
    bad = tmp_path / "broken.pth"
    torch.save(broken, bad)
    with pytest.raises(CheckpointError, match=r"missing keys: mask_decoder\.iou_token\.weight") as e:
        SAMMaskHead(variant="tiny", checkpoint=str(bad)).setup("cpu")
    assert "unexpected keys: mask_decoder.extra_head.weight" in str(e.value) and str(bad) in str(e.value)
    # a checkpoint of another size names the mis-shaped tensors
    other = tmp_path / "other.pth"
    torch.save(BUILDERS["tiny"](prompt_embed_dim=16, decoder_mlp_dim=32).state_dict(), other)
    with pytest.raises(CheckpointError, match="shape mismatches"):
        SAMMaskHead(variant="tiny", checkpoint=str(other)).setup("cpu")


def test_random_weights_are_seeded(photo):
    boxes = _boxes(2)
    out = []
    for seed in (0, 0, 1):
        h = SAMMaskHead(variant="tiny", checkpoint=None, seed=seed)
        h.setup("cpu")
        h.set_image(photo)
        out.append(h.predict(boxes=boxes).mask_scores)
    np.testing.assert_array_equal(out[0], out[1])
    assert not np.allclose(out[0], out[2])


def test_official_sizes_match_segment_anything():
    for variant in ("vit_b", "vit_l", "vit_h"):
        with torch.device("meta"):
            ours, theirs = BUILDERS[variant](), sam_model_registry[variant]()
        assert repr(ours) == repr(theirs)
        assert {k: v.shape for k, v in ours.state_dict().items()} == \
               {k: v.shape for k, v in theirs.state_dict().items()}
        assert ours.image_encoder.img_size == 1024
    assert set(CHECKPOINT_VARIANT.values()) == {"vit_b", "vit_l", "vit_h"}
    for name, spec in CHECKPOINTS.items():
        assert spec.url.endswith(f"/segment_anything/{name}.pth") and len(spec.sha256) == 64


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # pycocotools, NumPy 2
def test_pipeline_with_sam_writes_coco(head, photo, tmp_path):
    detector = GroundingDINODetector(variant="tiny", checkpoint=None, box_threshold=0.0, text_threshold=0.0,
                                     max_detections=3, resize=(96, 160))
    pipe = Pipeline(detector=detector, mask_head=head, vocabulary="person, dog, chair")
    info = ImageInfo(file="demo4.jpg", width=W, height=H)
    (result,) = pipe([photo], [info])
    assert len(result.detections) == 3 and len(result.regions) == 3
    direct = head.segment(photo, result.detections)  # the stage on the same boxes
    assert direct.masks == result.regions.masks
    with CocoWriter() as writer:
        writer.open(tmp_path)
        writer.write(result, photo)
    coco = COCO(str(tmp_path / "coco.json"))
    anns = coco.loadAnns(coco.getAnnIds(imgIds=[1]))
    assert len(anns) == 3
    for ann, rle, score in zip(anns, result.regions.masks, result.regions.mask_scores):
        assert ann["tag"] in ("person", "dog", "chair")
        assert np.array_equal(coco.annToMask(ann).astype(bool), decode_mask(rle))
        assert ann["mask_score"] == pytest.approx(float(score))
        assert "concepts" not in ann and "region_caption" not in ann


def test_empty_prompts_give_empty_regions(head, photo):
    assert len(head.segment(photo, Detections())) == 0
    head.set_image(photo)
    r = head.predict(boxes=np.zeros((0, 4), np.float32))
    assert len(r) == 0 and r.mask_scores.shape == (0,)


def test_bfloat16_close_to_float32(photo):
    boxes = _boxes(4, seed=2)
    results = {}
    for dtype in ("float32", "bfloat16"):
        h = SAMMaskHead(variant="tiny", checkpoint=None, dtype=dtype)
        h.setup("cpu")
        _sharpen(h.predictor.model)
        h.set_image(photo)
        results[dtype] = h.predict(boxes=boxes)
    h.predictor.model.image_encoder.float()  # the pipeline's autocast on an fp32 model
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        h.set_image(photo)
        results["autocast"] = h.predict(boxes=boxes)
    ref = results["float32"]
    for name in ("bfloat16", "autocast"):
        np.testing.assert_allclose(results[name].mask_scores, ref.mask_scores, atol=0.05)
        for a, b in zip(results[name].masks, ref.masks):
            a, b = decode_mask(a), decode_mask(b)
            assert (a & b).sum() / (a | b).sum() > 0.9


def test_bad_arguments(head, photo):
    for kwargs in (dict(variant="vit_x"), dict(variant="vit_b", checkpoint="sam_vit_h_4b8939"),
                   dict(multimask="best"), dict(multimask=4), dict(multimask=True),
                   dict(mask_threshold=float("nan")), dict(prompt_batch_size=0), dict(dtype="int8"),
                   dict(model_kwargs=[1])):
        with pytest.raises(ValueError):
            SAMMaskHead(**{"variant": "tiny", "checkpoint": None, **kwargs})
    with pytest.raises(ValueError, match="model_kwargs"):
        SAMMaskHead(variant="tiny", checkpoint=None, model_kwargs=dict(depth=3)).setup("cpu")
    with pytest.raises(ValueError, match="float16"):
        SAMMaskHead(variant="tiny", checkpoint=None, dtype="float16").setup("cpu")
    with pytest.raises(ValueError, match="setup"):
        SAMMaskHead(variant="tiny", checkpoint=None).set_image(photo)
    with pytest.raises(ValueError):
        head.set_image(np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError):
        head.set_image(photo.astype(np.float32))
    head.set_image(photo)
    with pytest.raises(ValueError):
        head.predict()
    with pytest.raises(ValueError):
        head.predict(boxes=np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError):
        head.predict(boxes=np.array([[0, 0, np.nan, 5]], np.float32))
    with pytest.raises(ValueError):
        head.predict(points=np.zeros((2, 1, 2), np.float32))
    with pytest.raises(ValueError):
        head.predict(points=np.zeros((2, 1, 2), np.float32), point_labels=np.zeros((2, 2)))
    with pytest.raises(ValueError):
        head.predict(points=np.zeros((1, 1, 2), np.float32), point_labels=np.array([[5]]))
    with pytest.raises(ValueError):
        head.predict(boxes=_boxes(2), points=np.zeros((3, 1, 2), np.float32), point_labels=np.ones((3, 1)))
    with pytest.raises(ValueError):
        head.predict(boxes=_boxes(2), point_labels=np.ones((2, 1)))


def test_official_checkpoint_resolved_in_setup_not_init(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENVOCAB_CACHE", str(tmp_path))
    monkeypatch.setenv("OPENVOCAB_CHECKPOINT_DIR", str(tmp_path))
    head = SAMMaskHead()  # vit_h + sam_vit_h_4b8939: no I/O yet
    assert head.required_files() == [
        "sam_vit_h_4b8939.pth (https://dl.fbaipublicfiles.com/segment_anything/sam_vit_h_4b8939.pth)"]
    with pytest.raises(MissingFileError, match=r"sam_vit_h_4b8939\.pth.*downloads are off"):
        head.setup("cpu")  # HF_HUB_OFFLINE=1 (conftest): no download attempted
    assert SAMMaskHead(variant="vit_b", checkpoint="sam_vit_b_01ec64").required_files()[0].startswith(
        "sam_vit_b_01ec64.pth")
    with pytest.raises(MissingFileError, match="no_such.pth"):
        SAMMaskHead(variant="tiny", checkpoint=str(tmp_path / "no_such.pth")).setup("cpu")
