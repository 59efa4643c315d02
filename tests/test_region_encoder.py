"""The prototype matcher's transformers parts against transformers' own processing, on tiny random models: region
embeddings (DINOv2, CLIP) are the model's image embeddings of the processor's inputs for the region's cut-out;
OWLv2 objectness proposals are the model's objectness and boxes as its post-processing scales them; the mask
head's automatic mode is the head's own point prompts."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from grounding.exemplars.encoder import HFRegionEncoder
from grounding.exemplars.proposals import MaskHeadProposer, ObjectnessProposer, build_proposer
from openvocab.images import load_image
from openvocab.masks import decode_mask


@pytest.fixture(scope="module")
def image(shared_dir):
    return load_image(shared_dir / "images" / "demo4.jpg")[0]  # 428 x 640 (w x h)


@pytest.mark.parametrize("kind", ["dinov2", "clip"])
def test_region_embeddings_are_the_models_image_embeddings(exemplar_models, image, kind):
    import transformers as hf

    folder = exemplar_models[kind]
    processor = hf.AutoImageProcessor.from_pretrained(str(folder))
    model = hf.AutoModel.from_pretrained(str(folder)).eval()
    enc = HFRegionEncoder(model=str(folder), context=0.0)
    enc.setup("cpu")
    mask = np.zeros(image.shape[:2], bool)
    mask[100:200, 50:100] = True
    boxes = np.array([[50, 100, 100, 200], [0, 0, 428, 640]], np.float32)
    cut = enc.cutout(image, boxes[0], mask)
    fill = enc.fill()
    assert cut.shape == (100, 100, 3) and (cut[:, :25] == fill).all() and (cut[:, 75:] == fill).all()  # padded
    np.testing.assert_array_equal(cut[:, 25:75], image[100:200, 50:100])  # the region, as it is
    cuts = [cut, enc.cutout(image, boxes[1])]
    inputs = processor(images=cuts, return_tensors="pt")
    assert torch.equal(enc.pixels(cuts), inputs["pixel_values"])
    with torch.no_grad():
        ref = model.get_image_features(**inputs).pooler_output if kind == "clip" else model(**inputs).pooler_output
    got = enc.embed(image, boxes, [mask, None])
    np.testing.assert_allclose(got, torch.nn.functional.normalize(ref, dim=-1).numpy(), atol=1e-5)
    outside = mask.copy()
    outside[100:200, 50:75] = False  # a smaller mask: the background it blanks changes the embedding
    assert not np.allclose(enc.embed(image, boxes[:1], [outside]), got[:1], atol=1e-3)


def test_a_random_encoder_needs_no_download_and_is_seeded(image):
    config = dict(model_type="dinov2", hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                  intermediate_size=32, image_size=32, patch_size=8)
    a, b, c = (HFRegionEncoder(model=None, random=config, seed=s) for s in (0, 0, 1))
    for enc in (a, b, c):
        enc.setup("cpu")
    box = np.array([[10, 20, 200, 300]], np.float32)
    assert a.required_files() == [] and a.remote_repos() == []
    np.testing.assert_array_equal(a.embed(image, box), b.embed(image, box))
    assert not np.allclose(a.embed(image, box), c.embed(image, box))
    with pytest.raises(ValueError, match="one of the two"):
        HFRegionEncoder(model="x/y", random=config)


def test_objectness_proposals_are_owlv2_objectness(exemplar_models, image):
    import transformers as hf

    folder = exemplar_models["owlv2"]
    proc = hf.AutoProcessor.from_pretrained(str(folder))
    model = hf.Owlv2ForObjectDetection.from_pretrained(str(folder)).eval()
    inputs = proc(images=image, text=[["a thing"]], return_tensors="pt")
    with torch.no_grad():
        out = model(**inputs)
    h, w = image.shape[:2]
    as_detection = SimpleNamespace(logits=out.objectness_logits[..., None], pred_boxes=out.pred_boxes)
    ref = proc.image_processor.post_process_object_detection(as_detection, threshold=0.0, target_sizes=[(h, w)])[0]
    top = torch.argsort(ref["scores"], descending=True)[:7]
    prop = build_proposer(dict(kind="objectness", model=str(folder), top_k=7, min_objectness=0.0, nms_iou=None))
    assert isinstance(prop, ObjectnessProposer) and not prop.gives_masks
    prop.setup("cpu")
    got = prop.propose(image)
    np.testing.assert_allclose(got.scores, ref["scores"][top].numpy(), atol=1e-5)
    expected = ref["boxes"][top].numpy()
    expected[:, 0::2] = expected[:, 0::2].clip(0, w)
    expected[:, 1::2] = expected[:, 1::2].clip(0, h)
    np.testing.assert_allclose(got.boxes, expected, atol=1e-3)
    assert got.masks is None


def test_the_automatic_mode_is_the_mask_heads_point_prompts(exemplar_models, image):
    from grounding.hf.sam import HFSamMaskHead

    head = HFSamMaskHead(model=str(exemplar_models["sam"]))
    prop = MaskHeadProposer(mask_head=head, points_per_side=3, points_per_batch=4, min_score=0.0, min_area=0.0,
                            max_area=1.0, nms_iou=None, max_proposals=100)
    prop.setup("cpu")
    h, w = image.shape[:2]
    grid = prop.grid(h, w)
    assert grid.shape == (9, 2) and grid[0].tolist() == pytest.approx([w / 6, h / 6]) and grid[-1, 0] == pytest.approx(5 * w / 6)
    got = prop.propose(image)
    head.set_image(image)
    ref = head.predict(points=grid[:, None], point_labels=np.ones((9, 1), np.int64))
    expected = {decode_mask(m).tobytes(): float(s) for m, s in zip(ref.masks, ref.mask_scores)
                if decode_mask(m).any() and s >= 0.0}  # min_score 0: the head's negative scores are dropped
    assert len(got) == len(expected) > 0
    for mask, score, box in zip(got.masks, got.scores, got.boxes):
        assert expected[mask.tobytes()] == pytest.approx(float(score))
        ys, xs = np.nonzero(mask)
        np.testing.assert_array_equal(box, [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
    strict = MaskHeadProposer(mask_head=head, points_per_side=3, min_score=1.0, min_area=0.0)
    strict.setup("cpu")
    assert len(strict.propose(image)) == sum(s >= 1.0 for s in ref.mask_scores)
    with pytest.raises(ValueError, match="kind"):
        build_proposer(dict(kind="selective_search"))
