"""The exemplar stages against transformers' own processors and post-processing, on tiny random models: each stage's
inputs are the processor's (target images, query crops, visual prompts, prompt pairs, exemplar boxes), and its boxes,
masks and scores are what transformers' post-processing makes of the model's outputs on those inputs."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from grounding.exemplars import (CLIPSegExemplarSegmenter, OwlExemplarDetector, Sam3ExemplarSegmenter,
                                 SegGptExemplarSegmenter)
from openvocab.examples import ExampleSet
from openvocab.images import load_image
from openvocab.masks import decode_mask


@pytest.fixture(scope="module")
def image(shared_dir):
    return load_image(shared_dir / "images" / "demo4.jpg")[0]  # 428 x 640 (w x h)


def _ref(folder, auto_class: str):
    import transformers as hf

    return hf.AutoProcessor.from_pretrained(str(folder)), getattr(hf, auto_class).from_pretrained(str(folder)).eval()


def _sorted(boxes, scores):
    order = np.lexsort(np.asarray(boxes).T[::-1])
    return np.asarray(boxes)[order], np.asarray(scores)[order]


@pytest.mark.parametrize("kind", ["owlv2", "owlvit"])
def test_owl_crop_queries_are_transformers_image_guided_detection(exemplar_models, image, kind):
    proc, model = _ref(exemplar_models[kind], "AutoModelForZeroShotObjectDetection")
    crop_box = [40, 60, 300, 420]
    examples = ExampleSet.from_boxes(image, [crop_box], ["thing"])
    crop = examples.examples[0].crop()
    det = OwlExemplarDetector(model=str(exemplar_models[kind]), query="crop", box_threshold=0.0, nms_iou=0.3,
                              max_detections=10_000)
    det.setup("cpu")
    inputs = proc(images=image, query_images=crop, return_tensors="pt")
    assert torch.equal(det.prepare(image), inputs["pixel_values"][0])
    assert torch.equal(det.prepare(np.ascontiguousarray(crop)), inputs["query_pixel_values"][0])
    with torch.no_grad():
        out = model.image_guided_detection(**inputs)
    h, w = image.shape[:2]
    ref = proc.post_process_image_guided_detection(out, threshold=0.0, nms_threshold=0.3,
                                                   target_sizes=torch.tensor([[h, w]]))[0]
    (got,) = det.detect_examples([image], examples)
    assert set(got.detections.labels) == {"thing"} and got.regions is None
    # transformers keeps the boxes above a tenth of the best score (its display alphas); ours are the same boxes
    raw = torch.sigmoid(out.logits[0, :, 0]).numpy()
    shown = got.detections.scores > 0.1 * raw.max() + 1e-6
    assert shown.sum() == len(ref["boxes"]) > 0
    b1, _ = _sorted(got.detections.boxes[shown], got.detections.scores[shown])
    b2, _ = _sorted(ref["boxes"].numpy(), ref["scores"].numpy())
    np.testing.assert_allclose(b1, b2, atol=1e-3)
    # and each box is scored with the sigmoid of its patch's logit (transformers' post_process_object_detection)
    plain = proc.image_processor.post_process_object_detection(out_as_detection(out), threshold=0.0, target_sizes=[(h, w)])[0]
    for box, score in zip(got.detections.boxes, got.detections.scores):
        k = int(np.abs(plain["boxes"].numpy() - box).max(1).argmin())
        assert np.abs(plain["boxes"].numpy()[k] - box).max() < 1e-3 and score == pytest.approx(float(raw[k]), abs=1e-5)


def out_as_detection(out):
    """An image-guided output read as a detection output (logits and boxes) by transformers' post-processing."""
    from types import SimpleNamespace

    return SimpleNamespace(logits=out.logits, pred_boxes=out.target_pred_boxes)


def test_owlvit_box_query_of_the_whole_image_is_transformers_query_embedding(exemplar_models, image):
    proc, model = _ref(exemplar_models["owlvit"], "AutoModelForZeroShotObjectDetection")
    h, w = image.shape[:2]
    det = OwlExemplarDetector(model=str(exemplar_models["owlvit"]), query="box")
    det.setup("cpu")
    (example,) = ExampleSet.from_boxes(image, [[0, 0, w, h]], ["all"]).examples
    pv = proc(query_images=image, return_tensors="pt")["query_pixel_values"]
    with torch.no_grad():
        fmap = model.image_embedder(pixel_values=pv)[0]
        query, _, _ = model.embed_image_query(fmap.reshape(1, -1, fmap.shape[-1]), fmap)
        ours = det.box_query(example)
    torch.testing.assert_close(ours, query.reshape(-1), rtol=0, atol=1e-6)


def test_owlv2_box_queries_come_from_boxes_over_the_example(exemplar_models, image):
    from torchvision.ops import box_iou
    from transformers.image_transforms import center_to_corners_format

    proc, model = _ref(exemplar_models["owlv2"], "AutoModelForZeroShotObjectDetection")
    h, w = image.shape[:2]
    det = OwlExemplarDetector(model=str(exemplar_models["owlv2"]), query="box")
    det.setup("cpu")
    pv = proc(images=image, return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        fmap = model.image_embedder(pixel_values=pv)[0]
        feats = fmap.reshape(1, -1, fmap.shape[-1])
        _, class_embeds = model.class_predictor(feats)
        boxes = center_to_corners_format(model.box_predictor(feats, fmap))[0] * max(h, w)  # square-padded input
    picked = []
    for box in ([20, 30, 200, 260], [250, 380, 420, 630]):
        (example,) = ExampleSet.from_boxes(image, [box], ["x"]).examples
        with torch.no_grad():
            q = det.box_query(example)
        k = int(torch.argmin((class_embeds[0] - q).abs().sum(-1)))  # the patch whose embedding it is
        assert torch.allclose(class_embeds[0, k], q, atol=1e-6)
        ious = box_iou(torch.tensor([box], dtype=torch.float32), boxes)[0]
        assert ious[k] >= 0.8 * ious.max() > 0  # among the boxes that cover the example best
        picked.append(k)
    assert picked[0] != picked[1]


def test_owl_negative_examples_drop_the_boxes_they_win(exemplar_models, image):
    positive = ExampleSet.from_boxes(image, [[40, 60, 300, 420]], ["thing"])
    both = ExampleSet.from_boxes(image, [[40, 60, 300, 420], [200, 300, 420, 640]], ["thing", "thing"],
                                 positive=[True, False])
    det = OwlExemplarDetector(model=str(exemplar_models["owlv2"]), box_threshold=0.0, nms_iou=None,
                              max_detections=10_000)
    det.setup("cpu")
    alone, = det.detect_examples([image], positive)
    fewer, = det.detect_examples([image], both)
    assert 0 < len(fewer) < len(alone)
    kept = {tuple(np.round(b, 3)) for b in alone.detections.boxes}
    assert {tuple(np.round(b, 3)) for b in fewer.detections.boxes} <= kept
    assert det.prepare_examples(both) == ["OwlExemplarDetector: 1 example classes, 1 queries + 1 negative (box "
                                          "queries, max over a class's examples)"]


def test_clipseg_visual_prompts_are_transformers_conditional_pixels(exemplar_models, image):
    proc, model = _ref(exemplar_models["clipseg"], "CLIPSegForImageSegmentation")
    boxes = [[40, 60, 300, 420], [100, 100, 200, 400], [250, 380, 420, 630]]
    examples = ExampleSet.from_boxes(image, boxes, ["a", "a", "b"])
    crops = [e.crop() for e in examples]
    seg = CLIPSegExemplarSegmenter(model=str(exemplar_models["clipseg"]), threshold=0.5, min_area=0.0, split="none")
    seg.setup("cpu")
    inputs = proc(images=[image] * 3, visual_prompt=crops, return_tensors="pt")
    assert torch.equal(seg.prepare(image), inputs["pixel_values"][0])
    assert torch.equal(seg.prompt_pixels(crops), inputs["conditional_pixel_values"])
    with torch.no_grad():
        single = model(**inputs).logits  # each crop its own prompt, as transformers runs visual prompts
        emb = model.get_conditional_embeddings(batch_size=3, conditional_pixel_values=inputs["conditional_pixel_values"])
        merged = model(pixel_values=inputs["pixel_values"][:2],
                       conditional_embeddings=torch.stack([emb[:2].mean(0), emb[2]])).logits
    h, w = image.shape[:2]
    (got,) = seg.detect_examples([image], examples)
    assert got.detections.labels == ("a", "b")
    for k, logits in enumerate((merged[0], single[2])):  # class a: its two crops' mean embedding; b: its one crop
        prob = F.interpolate(logits.sigmoid()[None, None], size=(h, w), mode="bilinear", align_corners=False)[0, 0]
        mask = (prob > 0.5).numpy()
        assert 0 < mask.mean() < 1
        assert (decode_mask(got.regions.masks[k]) != mask).mean() < 1e-4
        assert got.detections.scores[k] == pytest.approx(float(prob[torch.from_numpy(mask)].mean()), abs=1e-3)
    parts = CLIPSegExemplarSegmenter(model=str(exemplar_models["clipseg"]), threshold=0.5, min_area=0.0)
    parts.setup("cpu")
    (split,) = parts.detect_examples([image], examples)  # one instance per connected region, together the mask
    union = np.zeros((h, w), bool)
    for m, label in zip(split.regions.masks, split.detections.labels):
        union |= decode_mask(m) if label == "a" else False
    assert (union == decode_mask(got.regions.masks[0])).all() and split.detections.labels.count("a") >= 1


def test_seggpt_prompts_and_masks_are_transformers_processing(exemplar_models, image, shared_dir):
    proc, model = _ref(exemplar_models["seggpt"], "SegGptForImageSegmentation")
    other = load_image(shared_dir / "images" / "demo2.jpg")[0]
    mask = np.zeros(image.shape[:2], bool)
    mask[100:300, 50:250] = True
    examples = ExampleSet(ExampleSet.from_boxes(image, [[50, 100, 250, 300]], ["a"], masks=[mask]).examples
                          + ExampleSet.from_boxes(other, [[10, 20, 200, 150]], ["a"]).examples)
    seg = SegGptExemplarSegmenter(model=str(exemplar_models["seggpt"]), min_area=0.0, split="none")
    seg.setup("cpu")
    prompt_mask = np.zeros(other.shape[:2], np.uint8)
    prompt_mask[20:150, 10:200] = 1  # a box without a mask: its box, filled
    inputs = proc(images=[image, image], prompt_images=[image, other], prompt_masks=[mask.astype(np.uint8), prompt_mask],
                  num_labels=1, return_tensors="pt")
    assert torch.equal(seg.prepare(image), inputs["pixel_values"][0])
    pixels, masks = zip(*[seg.prompt(e.image, e.region_mask()) for e in examples])
    assert torch.equal(torch.stack(pixels), inputs["prompt_pixel_values"])
    assert torch.equal(torch.stack(masks), inputs["prompt_masks"])
    h, w = image.shape[:2]
    with torch.no_grad():
        one = model(**{k: v[:1] for k, v in inputs.items()})
        ensemble = model(**inputs, feature_ensemble=True)
    ref_one = proc.post_process_semantic_segmentation(one, target_sizes=[(h, w)], num_labels=1)[0].numpy() == 1
    (got,) = seg.detect_examples([image], ExampleSet(examples.examples[:1]))
    assert 0 < ref_one.mean() < 1 and (decode_mask(got.regions.masks[0]) == ref_one).all()
    mean = type(ensemble)(pred_masks=ensemble.pred_masks.mean(0, keepdim=True))  # the ensemble's rows averaged
    ref_two = proc.post_process_semantic_segmentation(mean, target_sizes=[(h, w)], num_labels=1)[0].numpy() == 1
    (both,) = seg.detect_examples([image], examples)
    assert (decode_mask(both.regions.masks[0]) == ref_two).all() and not (ref_two == ref_one).all()


def test_sam3_exemplar_boxes_are_transformers_box_prompts(exemplar_models, image, shared_dir):
    proc, model = _ref(exemplar_models["sam3"], "AutoModel")
    boxes, signs = [[40, 60, 300, 420], [250, 380, 420, 630]], [True, False]
    examples = ExampleSet.from_boxes(image, boxes, ["thing", "thing"], positive=signs)
    seg = Sam3ExemplarSegmenter(model=str(exemplar_models["sam3"]), threshold=0.249, max_detections=1000)
    seg.setup("cpu")
    inputs = proc(images=image, input_boxes=[boxes], input_boxes_labels=[[1, 0]], return_tensors="pt")
    assert torch.equal(seg.prepare(image)[0], inputs["pixel_values"][0])
    got_boxes, got_labels = seg.boxes(examples.examples, image.shape[:2])
    torch.testing.assert_close(got_boxes, inputs["input_boxes"], rtol=0, atol=1e-6)
    assert torch.equal(got_labels, inputs["input_boxes_labels"])
    with torch.no_grad():
        out = model(**inputs)  # no text: the processor's "visual" prompt
    h, w = image.shape[:2]
    ref = proc.post_process_instance_segmentation(out, threshold=0.249, mask_threshold=0.5, target_sizes=[(h, w)])[0]
    other = load_image(shared_dir / "images" / "demo2.jpg")[0]
    got, elsewhere = seg.detect_examples([image, other], examples)
    assert len(elsewhere) == 0 and seg.encoded_images == 1  # an image without its examples is never encoded
    order = np.argsort(-ref["scores"].numpy(), kind="stable")
    assert len(got) == len(order) > 0 and set(got.detections.labels) == {"thing"}
    np.testing.assert_allclose(got.detections.scores, ref["scores"].numpy()[order], atol=1e-5)
    np.testing.assert_allclose(got.detections.boxes, ref["boxes"].numpy()[order], atol=1e-2)
    for k, j in enumerate(order):
        assert (decode_mask(got.regions.masks[k]) != ref["masks"][j].numpy().astype(bool)).mean() < 1e-4


def test_exemplar_stages_check_their_options_and_need_setup(image):
    with pytest.raises(ValueError, match="query"):
        OwlExemplarDetector(query="text")
    with pytest.raises(ValueError, match="merge"):
        OwlExemplarDetector(merge="min")
    with pytest.raises(ValueError, match="split"):
        CLIPSegExemplarSegmenter(split="pieces")
    with pytest.raises(ValueError, match="embedding_type"):
        SegGptExemplarSegmenter(embedding_type="panoptic")
    with pytest.raises(ValueError, match="text"):
        Sam3ExemplarSegmenter(text="caption")
    examples = ExampleSet.from_boxes(image, [[1, 1, 20, 20]], ["a"])
    for stage in (OwlExemplarDetector(), CLIPSegExemplarSegmenter(), SegGptExemplarSegmenter(),
                  Sam3ExemplarSegmenter()):
        assert stage.required_files() and stage.remote_repos()  # named for download, nothing read yet
        with pytest.raises(ValueError, match="setup"):
            stage.detect_examples([image], examples)
