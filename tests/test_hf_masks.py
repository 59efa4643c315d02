"""The transformers mask stages against transformers' own processing, on tiny random models: HFSamMaskHead (SAM,
SAM-HQ, SAM 2) against processor -> model -> ``post_process_masks``; Sam3Segmenter (one image pass, prompts
batched, text features cached) against one processor -> model -> ``post_process_instance_segmentation`` run per
tag; CLIPSegSegmenter against the processor's inputs and CLIPSeg's documented recipe on the model's logits."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from grounding.hf.clipseg import CLIPSegSegmenter
from grounding.hf.sam import HFSamMaskHead
from grounding.hf.sam3 import Sam3Segmenter
from openvocab.images import load_image
from openvocab.masks import decode_mask, mask_box
from openvocab.structures import Detections


@pytest.fixture(scope="module")
def image(shared_dir):
    return load_image(shared_dir / "images" / "demo4.jpg")[0]  # 428 x 640


def _ref(folder, auto_class: str = "AutoModel"):
    import transformers as hf

    return (hf.AutoProcessor.from_pretrained(str(folder)),
            getattr(hf, auto_class).from_pretrained(str(folder)).eval())


@pytest.mark.parametrize("kind", ["sam", "sam_hq", "sam2"])
def test_sam_heads_follow_transformers_processing(hf_models, image, kind):
    proc, model = _ref(hf_models[kind])
    boxes = np.array([[10, 20, 300, 400], [50.5, 60, 420, 630], [0, 0, 428, 640]], np.float32)
    head = HFSamMaskHead(model=str(hf_models[kind]), prompt_batch_size=2)  # two decoder calls for three boxes
    head.setup("cpu")
    inputs = proc(images=image, input_boxes=[boxes.tolist()], return_tensors="pt")
    prepared = head.prepare(image)
    assert torch.equal(prepared.pixel_values, inputs["pixel_values"][0])
    head.set_image(image)
    assert torch.allclose(head.predictor.to_input(boxes), inputs["input_boxes"][0].float())
    with torch.no_grad():
        out = model(**inputs, multimask_output=False)
    sizes = dict(original_sizes=inputs["original_sizes"])
    if "reshaped_input_sizes" in inputs:
        sizes["reshaped_input_sizes"] = inputs["reshaped_input_sizes"]
    ref = proc.post_process_masks(out.pred_masks, **sizes)[0][:, 0].numpy()
    regions = head.segment_batch([image, image[:100]], [Detections(boxes=boxes, scores=[1, 1, 1], labels="abc"),
                                                        Detections()])
    got = np.stack([decode_mask(m) for m in regions[0].masks])
    assert got.shape == ref.shape and (got != ref).mean() < 1e-4  # equal but for a rare pixel at a logit of ~0
    np.testing.assert_allclose(regions[0].mask_scores, out.iou_scores[0, :, 0].numpy(), atol=1e-5)
    assert len(regions[1]) == 0 and head.encoded_images == 2  # set_image + the one image with boxes
    # a point prompt alone: the best of the three multimask outputs
    point = np.array([[[200, 300]]], np.float32)
    inputs = proc(images=image, input_points=[[[[200, 300]]]], input_labels=[[[1]]], return_tensors="pt")
    with torch.no_grad():
        out = model(**inputs, multimask_output=True)
    best = int(out.iou_scores[0, 0].argmax())
    ref = proc.post_process_masks(out.pred_masks, **{**sizes, "original_sizes": inputs["original_sizes"]})[0][0, best]
    pred = head.predict(points=point, point_labels=np.array([[1]]))
    assert (decode_mask(pred.masks[0]) != ref.numpy()).mean() < 1e-4
    assert pred.mask_scores[0] == pytest.approx(float(out.iou_scores[0, 0, best]), abs=1e-5)


def test_sam3_segmenter_is_transformers_run_per_tag(hf_models, image):
    proc, model = _ref(hf_models["sam3"])
    tags = ["cat", "dog", "red car"]
    seg = Sam3Segmenter(model=str(hf_models["sam3"]), threshold=0.249, text_batch_size=2, max_detections=1000)
    seg.setup("cpu")
    assert torch.equal(seg.prepare(image), proc(images=image, return_tensors="pt")["pixel_values"][0])
    (got,) = seg.segment([image], [tags])
    assert seg.encoded_images == 1  # one image pass for three tags (two decoder batches)
    h, w = image.shape[:2]
    expected = []
    for tag in tags:
        inputs = proc(images=image, text=tag, return_tensors="pt")
        with torch.no_grad():
            out = model(**inputs)
        r = proc.post_process_instance_segmentation(out, threshold=0.249, mask_threshold=0.5, target_sizes=[(h, w)])[0]
        expected += [(tag, float(s), b.numpy(), m.numpy().astype(bool)) for s, b, m in zip(r["scores"], r["boxes"],
                                                                                           r["masks"])]
    assert 0 < len(got) == len(expected)
    expected.sort(key=lambda e: -e[1])
    for k, (tag, score, box, mask) in enumerate(expected):
        assert got.detections.labels[k] == tag
        assert got.detections.scores[k] == pytest.approx(score, abs=1e-5)
        np.testing.assert_allclose(got.detections.boxes[k], box, atol=1e-2)
        assert (decode_mask(got.regions.masks[k]) != mask).mean() < 1e-4
    assert len(seg._texts) == 3  # each tag's text features once


def test_clipseg_masks_are_its_recipe_on_transformers_outputs(hf_models, image):
    proc, model = _ref(hf_models["clipseg"], "CLIPSegForImageSegmentation")
    tags = ["sky", "grass", "water"]
    seg = CLIPSegSegmenter(model=str(hf_models["clipseg"]), threshold=0.5, min_area=0.0, text_batch_size=2,
                           exclude=["water"])
    seg.setup("cpu")
    inputs = proc(text=tags[:2], images=[image] * 2, padding="max_length", return_tensors="pt")
    assert torch.equal(seg.prepare(image), inputs["pixel_values"][0])
    with torch.no_grad():
        logits = model(**inputs).logits
    h, w = image.shape[:2]
    probs = F.interpolate(logits.sigmoid()[:, None], size=(h, w), mode="bilinear", align_corners=False)[:, 0]
    (got,) = seg.segment([image], [tags])
    assert got.detections.labels == ("sky", "grass")  # 'water' excluded
    for k in range(2):
        mask = (probs[k] > 0.5).numpy()
        assert (decode_mask(got.regions.masks[k]) != mask).mean() < 1e-4
        np.testing.assert_allclose(got.detections.boxes[k], mask_box(mask), atol=1)
        assert got.detections.scores[k] == pytest.approx(float(probs[k][torch.from_numpy(mask)].mean()), abs=1e-3)
    tight = CLIPSegSegmenter(model=str(hf_models["clipseg"]), threshold=0.5, min_area=1.0, tags=["sky"])
    tight.setup("cpu")
    assert len(tight.segment([image], [tags])[0]) == 0  # a mask smaller than the whole image is dropped


def test_mask_stages_check_their_options_and_need_setup():
    with pytest.raises(ValueError, match="multimask"):
        HFSamMaskHead(model="a/b", multimask=7)
    with pytest.raises(ValueError, match="threshold"):
        Sam3Segmenter(threshold=3)
    with pytest.raises(ValueError, match="not a string"):
        CLIPSegSegmenter(tags="sky")
    with pytest.raises(ValueError, match="setup"):
        Sam3Segmenter().segment([np.zeros((4, 4, 3), np.uint8)], [["cat"]])
