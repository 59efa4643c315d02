"""HFDetector against transformers' own processors and post-processing, on tiny random models of every family:
the adapter's inputs are the processor's, its boxes and scores are what transformers' post-processing makes of
the same model outputs, and its chunking of long vocabularies keeps (OWL) or merges (caption models, OmDet)
those results."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import hf_tiny
from grounding.hf.detector import HFDetector
from openvocab.cli import main
from openvocab.config import configs_dir
from openvocab.hub import MissingFileError
from openvocab.images import load_image


@pytest.fixture(scope="module")
def image(shared_dir):
    return load_image(shared_dir / "images" / "demo4.jpg")[0]  # 428 x 640


@pytest.fixture(scope="module")
def folders(hf_models):
    """The tiny detectors by model type."""
    return {hf_tiny.model_type(hf_models[k]): hf_models[k]
            for k in ("grounding_dino", "mm_grounding_dino", "owlv2", "owlvit", "omdet")}


def _ref(folder):
    import transformers as hf

    return (hf.AutoProcessor.from_pretrained(str(folder)),
            hf.AutoModelForZeroShotObjectDetection.from_pretrained(str(folder)).eval())


def _by_box(boxes, *others):
    order = np.lexsort(np.asarray(boxes).T[::-1])
    return [np.asarray(boxes)[order]] + [np.asarray(o)[order] for o in others]


@pytest.mark.parametrize("kind", ["grounding-dino", "mm-grounding-dino"])
def test_caption_models_follow_transformers_processing(folders, image, kind):
    proc, model = _ref(folders[kind])
    det = HFDetector(model=str(folders[kind]), box_threshold=0.2, text_threshold=0.0, nms_iou=None,
                     max_detections=1000)
    det.setup("cpu")
    tags = ["cat", "red car", "person"]
    (prompt,) = det.family.chunker(tags)
    inputs = proc(images=image, text=prompt.caption, return_tensors="pt")
    assert torch.equal(det.prepare(image), inputs["pixel_values"][0])
    text, _ = det.family.text(prompt.caption)
    for key in ("input_ids", "token_type_ids", "attention_mask"):
        assert torch.equal(text[key].cpu(), inputs[key]), key
    with torch.no_grad():
        out = model(**inputs)
    h, w = image.shape[:2]
    ref = proc.post_process_grounded_object_detection(out, threshold=0.2, text_threshold=0.0, target_sizes=[(h, w)])[0]
    ours = det.detect([image], [tags])[0]
    assert len(ours) == len(ref["boxes"]) > 0  # the same boxes pass the box threshold...
    b1, s1, l1 = _by_box(ours.boxes, ours.scores, ours.labels)
    b2, s2 = _by_box(ref["boxes"].numpy(), ref["scores"].numpy())
    np.testing.assert_allclose(b1, b2, atol=1e-3)
    assert (s1 <= s2 + 1e-6).all()  # ...each scored with its tag's tokens (transformers: the best of all tokens)
    for k, (score, label) in enumerate(zip(s1, l1)):
        # the tokens at or above the box's score are its tag's (transformers' phrase decoding at that threshold)
        res = proc.post_process_grounded_object_detection(out, threshold=0.2, text_threshold=float(score) - 1e-6,
                                                          target_sizes=[(h, w)])[0]
        same = np.flatnonzero(np.abs(res["boxes"].numpy() - b1[k]).max(1) < 1e-3)  # this box's query
        phrases = [[w for w in res["text_labels"][j].replace(".", " ").split() if w not in ("[CLS]", "[SEP]")]
                   for j in same]
        assert any(p and set(p) <= set(label.split()) for p in phrases), (label, phrases)


@pytest.mark.parametrize("kind", ["owlv2", "owlvit"])
def test_owl_models_follow_transformers_processing(folders, image, kind):
    proc, model = _ref(folders[kind])
    tags = ["cat", "dog", "red car", "a person on a bike", "tree"]
    texts = [f"a photo of a {t}" for t in tags]
    inputs = proc(images=image, text=[texts], return_tensors="pt", truncation=True)
    with torch.no_grad():
        out = model(**inputs)
    h, w = image.shape[:2]
    ref = proc.post_process_grounded_object_detection(out, threshold=0.1, target_sizes=[(h, w)], text_labels=[tags])[0]
    assert len(ref["boxes"]) > 0
    for chunk in (None, 2):  # one forward, or three: the chunks' logits side by side give the same result
        det = HFDetector(model=str(folders[kind]), box_threshold=0.1, nms_iou=None, max_detections=1000,
                         text_template="a photo of a {}", max_classes_per_forward=chunk)
        det.setup("cpu")
        assert torch.equal(det.prepare(image), inputs["pixel_values"][0])
        assert torch.equal(det.family.queries(texts)["input_ids"].cpu(), inputs["input_ids"])
        ours = det.detect([image], [tags])[0]
        b1, s1, l1 = _by_box(ours.boxes, ours.scores, ours.labels)
        b2, s2, l2 = _by_box(ref["boxes"].numpy(), ref["scores"].numpy(), ref["text_labels"])
        np.testing.assert_allclose(b1, b2, atol=1e-3)
        np.testing.assert_allclose(s1, s2, atol=1e-5)
        assert list(l1) == list(l2)


def test_omdet_follows_transformers_processing_and_chunks_its_task_prompt(folders, image):
    proc, model = _ref(folders["omdet-turbo"])
    tags = ["cat", "dog", "red car"]
    h, w = image.shape[:2]
    inputs = proc(images=image, text=tags, return_tensors="pt")
    with torch.no_grad():
        out = model(**inputs)
    ref = proc.post_process_grounded_object_detection(out, text_labels=tags, threshold=0.05, nms_threshold=0.5,
                                                      target_sizes=[(h, w)])[0]
    det = HFDetector(model=str(folders["omdet-turbo"]), box_threshold=0.05, nms_iou=0.5, max_detections=1000)
    det.setup("cpu")
    assert torch.equal(det.prepare(image), inputs["pixel_values"][0])
    task = det.family.encode(["Detect cat, dog, red car."])
    assert torch.equal(task["input_ids"], inputs["tasks_input_ids"])
    ours = det.detect([image], [tags])[0]
    assert len(ours) == len(ref["boxes"]) > 0
    b1, s1, l1 = _by_box(ours.boxes, ours.scores, ours.labels)
    b2, s2, l2 = _by_box(ref["boxes"].numpy(), ref["scores"].numpy(), ref["text_labels"])
    np.testing.assert_allclose(b1, b2, atol=1e-3)
    np.testing.assert_allclose(s1, s2, atol=1e-5)
    assert list(l1) == list(l2)
    # a vocabulary whose task prompt is longer than the text encoder takes runs in chunks that fit
    many = [f"thing {i}" for i in range(12)]  # one token per character with the test tokenizer
    chunks = det.family.chunk(many)
    assert len(chunks) > 1 and [t for c in chunks for t in c] == many
    assert all(det.family.count_tokens(f"Detect {', '.join(c)}.") <= 77 for c in chunks)
    assert set(det.detect([image], [many])[0].labels) <= set(many)


def test_batches_give_each_image_its_own_result(folders, image):
    other = np.ascontiguousarray(image[::2, ::-1])  # another size: batched apart for caption models
    for kind in ("grounding-dino", "owlv2", "omdet-turbo"):
        det = HFDetector(model=str(folders[kind]), box_threshold=0.1, text_threshold=0.0)
        det.setup("cpu")
        tags = [["cat", "dog"], ["tree"], ["cat", "dog"]]
        together = det.detect([image, other, image], tags)
        for img, names, got in zip([image, other, image], tags, together):
            alone = det.detect([img], [names])[0]
            assert got.labels == alone.labels, kind
            np.testing.assert_allclose(got.boxes, alone.boxes, atol=1e-3)


def test_free_text_is_transformers_phrase_grounding(folders, image, shared_dir, tmp_path, capsys):
    proc, model = _ref(folders["grounding-dino"])
    h, w = image.shape[:2]
    inputs = proc(images=image, text="a cat on a red car.", return_tensors="pt")  # the official caption form
    with torch.no_grad():
        out = model(**inputs)
    ref = proc.post_process_grounded_object_detection(out, threshold=0.3, text_threshold=0.3, target_sizes=[(h, w)])[0]
    det = HFDetector(model=str(folders["grounding-dino"]), box_threshold=0.3, text_threshold=0.3)
    det.setup("cpu")
    (got,) = det.detect_text([image], ["A cat on a red car"])
    assert len(got) == len(ref["boxes"]) > 0 and list(got.phrases) == list(ref["text_labels"])
    np.testing.assert_allclose(got.boxes, ref["boxes"].numpy(), atol=1e-3)
    np.testing.assert_allclose(got.scores, ref["scores"].numpy(), atol=1e-5)
    owl = HFDetector(model=str(folders["owlv2"]), box_threshold=0.1)  # a class-list model: the text is one class
    owl.setup("cpu")
    (found,) = owl.detect_text([image], ["a red car"])
    assert len(found) and set(found.phrases) == {"a red car"}
    # through the CLI, with the shipped config pointed at the tiny model
    config = tmp_path / "gd.py"
    config.write_text(f"_base_ = {str(configs_dir() / 'detect_gdino_hf.py')!r}\n"
                      f"detector = dict(model={str(folders['grounding-dino'])!r}, box_threshold=0.3, "
                      "text_threshold=0.3, "
                      "processor_backend=None)\n")  # the reference's image processor (the config asks for PIL's)
    assert main(["detect", "A cat on a red car", str(shared_dir / "images" / "demo4.jpg"), "--config", str(config),
                 "--json"]) == 0
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [d["phrase"] for d in row["detections"]] == list(ref["text_labels"])


def test_bad_models_and_options_are_named(folders, tmp_path):
    (tmp_path / "sam").mkdir()
    (tmp_path / "sam" / "config.json").write_text('{"model_type": "sam"}')
    with pytest.raises(ValueError, match="model type 'sam' is not supported.*owlv2"):
        HFDetector(model=str(tmp_path / "sam")).setup("cpu")
    with pytest.raises(MissingFileError, match="org/not-here.*HF_HUB_OFFLINE"):
        HFDetector(model="org/not-here").setup("cpu")
    with pytest.raises(ValueError, match="text_template"):
        HFDetector(model="x/y", text_template="no slot")
    with pytest.raises(ValueError, match="box_threshold"):
        HFDetector(model="x/y", box_threshold=2)
    det = HFDetector(model="x/y")  # no I/O before setup
    assert det.family is None and det.required_files() == ["x/y (transformers detector)"]
