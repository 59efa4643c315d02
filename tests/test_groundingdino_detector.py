"""Grounding DINO detector stage: registry, label wiring, batching (sizes, prompts, chunks), free text, released
checkpoint formats, bf16."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from grounding.groundingdino.detector import GroundingDINODetector
from grounding.groundingdino.postprocess import (best_tags, box_threshold, char_span_to_token_span,
                                                 cxcywh_to_xyxy_pixels)
from grounding.groundingdino.preprocess import preprocess_images
from grounding.groundingdino.tokenize import preprocess_caption, tokenize
from grounding.prompt import TagPromptBuilder
from openvocab.registry import DETECTORS


def _images(seed, *shapes):
    rs = np.random.RandomState(seed)
    return [rs.randint(0, 255, (*s, 3), dtype=np.uint8) for s in shapes]


def _box_iou(a, b):
    lt, rb = np.maximum(a[:, None, :2], b[None, :, :2]), np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), -1)
    area = lambda x: np.prod(x[:, 2:] - x[:, :2], -1)  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None] - inter)


@pytest.fixture(scope="module")
def det():
    d = DETECTORS.build(dict(type="GroundingDINODetector", variant="tiny", checkpoint=None, resize=(96, 160),
                             box_threshold=0.0, text_threshold=0.0, nms_iou=None, max_detections=10_000))
    d.setup("cpu")
    return d


def _twin(det, **kw):
    """Another detector sharing det's model and tokenizer, with other post-processing settings."""
    d = GroundingDINODetector(**{**dict(variant="tiny", checkpoint=None, resize=det.resize, box_threshold=0.0,
                                        text_threshold=0.0, nms_iou=None, max_detections=10_000), **kw})
    d.model, d.tokenizer = det.model, det.tokenizer
    return d


@pytest.fixture(scope="module")
def fix_a(parity_dir):
    return torch.load(parity_dir / "grounding_dino" / "gdino_tiny_A.pt", weights_only=True)


@pytest.fixture(scope="module")
def fixture_ckpt(fix_a, tmp_path_factory):
    d = tmp_path_factory.mktemp("gdino_a")
    (d / "vocab.txt").write_text(fix_a["vocab_txt"])
    torch.save({"model": {"module." + k: v for k, v in fix_a["state_dict"].items()}}, d / "groundingdino_a.pth")
    return d


def test_registered_by_importing_grounding():
    code = ("import grounding\nfrom openvocab.registry import DETECTORS\n"
            "d = DETECTORS.build(dict(type='GroundingDINODetector', variant='tiny', checkpoint=None))\n"
            "d.setup('cpu')\n"
            "print(type(d).__name__, d.required_files(), sum(p.numel() for p in d.model.parameters()) > 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["GroundingDINODetector", "[]", "True"]


def test_tiny_random_config_builds_the_detector():
    from mmengine.config import Config

    from openvocab.cli import resolve_config

    cfg = Config.fromfile(str(resolve_config("tiny_random")))
    d = DETECTORS.build(cfg.detector)
    assert isinstance(d, GroundingDINODetector) and d.variant == "tiny" and d.max_detections == 5


def test_ctor_validation():
    for bad in (dict(variant="huge"), dict(box_threshold=1.5), dict(text_threshold=-0.1), dict(nms_iou=2.0),
                dict(agnostic_nms_iou=-1.0), dict(max_detections=0), dict(dtype="float16")):
        with pytest.raises(ValueError):
            GroundingDINODetector(**bad)
    with pytest.raises(ValueError, match="setup"):
        GroundingDINODetector(variant="tiny", checkpoint=None).detect_text(_images(0, (8, 8)), ["cat"])


def test_labels_are_best_scoring_tags(det):
    (im,) = _images(0, (70, 120))
    (pr,) = TagPromptBuilder().build(["cat", "fire hydrant", "dog"], det.count_tokens, 256)
    (r,) = det.detect_prompts([im], [[pr]])
    b = preprocess_images([im], 96, 160)
    tb = tokenize(det.tokenizer, [pr.caption])
    with torch.no_grad():
        o = det.model(b.pixel_values, b.pixel_mask, tb.input_ids, tb.attention_mask, tb.text_self_attention_masks,
                      tb.position_ids)
    th = box_threshold(o.pred_logits[0], o.pred_boxes[0], 0.0)
    tag_score, best = best_tags(th.probs, [char_span_to_token_span(tb.offsets[0], s.start, s.end)
                                           for s in pr.spans])
    order = torch.argsort(tag_score, descending=True, stable=True)  # a box's score is its label's score
    assert len(r) == 30
    assert list(r.labels) == [pr.spans[k].name for k in best[order].tolist()]
    np.testing.assert_allclose(r.scores, tag_score[order].numpy(), atol=1e-6)
    assert (tag_score <= th.scores + 1e-7).all()
    want = cxcywh_to_xyxy_pixels(th.boxes[order], 70, 120)  # official, unclipped (the pipeline clips)
    np.testing.assert_allclose(r.boxes, want.numpy(), atol=1e-3)


def test_batch_of_different_sizes_and_prompts_equals_each_image_alone(det):
    a, b, c = _images(1, (70, 120), (120, 70), (70, 120))  # a and c share a size; b does not
    build = TagPromptBuilder(max_tags_per_prompt=2).build
    pa = build(["cat", "dog", "a red car"], det.count_tokens, 256)  # two chunks
    pb = build(["tree", "person"], det.count_tokens, 256)
    pc = build(["bicycle riding man"], det.count_tokens, 256)
    assert [len(p) for p in (pa, pb, pc)] == [2, 1, 1]
    both = det.detect_prompts([a, b, c], [pa, pb, pc])
    for im, pr, got in zip((a, b, c), (pa, pb, pc), both):
        (alone,) = det.detect_prompts([im], [pr])
        assert got.labels == alone.labels and len(got) > 0
        np.testing.assert_allclose(got.scores, alone.scores, atol=1e-5)
        np.testing.assert_allclose(got.boxes, alone.boxes, atol=1e-3)
    # the official padded batching (pad_batch=True) is different: b is padded to 120x160 with a and c
    padded = _twin(det, pad_batch=True).detect_prompts([a, b, c], [pa, pb, pc])
    assert any(p.labels != g.labels or not np.allclose(p.scores, g.scores, atol=1e-3) for p, g in zip(padded, both))


def test_pad_batch_is_the_official_nested_tensor_batching(det):
    a, b = _images(2, (70, 120), (120, 70))
    texts = ["a cat on a table", "the dog"]
    got = _twin(det, pad_batch=True).detect_text([a, b], texts)
    batch = preprocess_images([a, b], 96, 160)  # zero-padded to the batch max, mask True on padding
    tb = tokenize(det.tokenizer, [preprocess_caption(t) for t in texts])
    with torch.no_grad():
        o = det.model(batch.pixel_values, batch.pixel_mask, tb.input_ids, tb.attention_mask,
                      tb.text_self_attention_masks, tb.position_ids)
    for i, (h, w) in enumerate(batch.original_sizes):
        th = box_threshold(o.pred_logits[i], o.pred_boxes[i], 0.0)
        np.testing.assert_allclose(got[i].scores, th.scores.numpy(), atol=1e-5)
        np.testing.assert_allclose(got[i].boxes, cxcywh_to_xyxy_pixels(th.boxes, h, w).numpy(), atol=1e-3)


def test_thousand_tag_vocabulary_is_chunked_and_merged(tmp_path):
    from grounding.groundingdino.detector import tiny_vocab

    names = [f"tag{i}" for i in range(1000)]
    (tmp_path / "vocab.txt").write_text("\n".join(tiny_vocab() + names) + "\n")  # one token per tag
    d = GroundingDINODetector(variant="tiny", checkpoint=None, vocab=str(tmp_path / "vocab.txt"), resize=(64, 64),
                              box_threshold=0.0, text_threshold=0.0, nms_iou=None, agnostic_nms_iou=0.5,
                              max_detections=10_000)
    d.setup("cpu")
    chunks = TagPromptBuilder().build(names, d.count_tokens, d.max_text_tokens)
    assert len(chunks) > 3 and all(d.count_tokens(c.caption) <= 256 for c in chunks)
    assert [n for c in chunks for n in c.names] == names
    calls = []
    hooks = [d.model.backbone.register_forward_hook(lambda m, i, o: calls.append("backbone")),
             d.model.register_forward_hook(lambda m, i, o: calls.append(int((o.pred_logits[0] > -1e9).any(0).sum())))]
    try:
        (im,) = _images(3, (64, 64))
        (r,) = d.detect_prompts([im], [chunks])
    finally:
        for h in hooks:
            h.remove()
    # the image went through the backbone once; every chunk ran with its own caption's tokens
    assert calls[0] == "backbone" and calls.count("backbone") == 1
    assert calls[1:] == [d.count_tokens(c.caption) for c in chunks]
    assert 0 < len(r) < 30 * len(chunks)  # thresholds 0: 30 boxes per chunk before NMS
    assert np.all(np.diff(r.scores) <= 0)
    iou = _box_iou(r.boxes, r.boxes)
    np.fill_diagonal(iou, 0)
    assert iou.max() <= 0.5  # class-agnostic NMS ran across the merged chunks
    chunk_of = {n: k for k, c in enumerate(chunks) for n in c.names}
    assert len({chunk_of[n] for n in r.labels}) > 1
    # through the tag interface: the same chunks, built by the detector itself
    (by_names,) = d.detect([im], [names])
    assert by_names.labels == r.labels
    np.testing.assert_allclose(by_names.scores, r.scores, atol=1e-6)


def test_a_vocabulary_is_tokenized_and_text_encoded_once_per_chunk_not_per_image(tmp_path):
    from grounding.groundingdino import text_cache
    from grounding.groundingdino.detector import tiny_vocab

    names = [f"tag{i}" for i in range(600)]
    (tmp_path / "vocab.txt").write_text("\n".join(tiny_vocab() + names) + "\n")
    d = GroundingDINODetector(variant="tiny", checkpoint=None, vocab=str(tmp_path / "vocab.txt"), resize=(64, 64))
    d.setup("cpu")
    n_chunks = len(d.chunker(names))
    assert n_chunks > 2
    bert_calls, tokenized = [], []
    hook = d.model.bert.register_forward_hook(lambda m, i, o: bert_calls.append(i[0].shape))
    real_tokenize = text_cache.tokenize
    text_cache.tokenize = lambda tok, caps, *a: tokenized.append(list(caps)) or real_tokenize(tok, caps, *a)
    try:
        images = _images(4, *[(64, 64)] * 3)
        first = d.detect(images, [names] * 3)
        for _ in range(2):  # more batches of the same vocabulary
            again = d.detect(images[:2], [names] * 2)
    finally:
        hook.remove()
        text_cache.tokenize = real_tokenize
    assert len(bert_calls) == n_chunks == len(tokenized) == d.text_cache.encodes
    assert all(len(caps) == 1 for caps in tokenized)  # one caption each, never re-tokenized per image
    assert d.chunker.builds == 1
    for a, b in zip(first[:2], again):
        assert a.labels == b.labels
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-6)


def _official_phrase_words(case):
    """Per kept query, the caption words (split at spaces) holding the tokens the official predict selects,
    from the stored official logits and tokens."""
    cap, tokens = case["caption"], case["tokens"]
    word_of, pos = [], 0
    for tok in tokens:
        if tok in ("[CLS]", "[SEP]", "[PAD]", "."):
            word_of.append(None)
            pos += 1 if tok == "." else 0
            continue
        piece = tok[2:] if tok.startswith("##") else tok
        a = cap.index(piece, pos)
        pos = a + len(piece)
        word_of.append(cap[:a].count(" "))
    probs = case["pred_logits"][0].sigmoid()
    rows = probs[probs.max(-1)[0] > case["box_threshold"]]
    return [sorted({word_of[t] for t in range(1, len(tokens)) if row[t] > case["text_threshold"]} - {None})
            for row in rows]


def test_free_text_phrases_match_official_predict(fixture_ckpt, fix_a):
    for case in fix_a["predict"]:
        d = GroundingDINODetector(variant="tiny", checkpoint=str(fixture_ckpt / "groundingdino_a.pth"),
                                  vocab=str(fixture_ckpt / "vocab.txt"), box_threshold=case["box_threshold"],
                                  text_threshold=case["text_threshold"])
        d.setup("cpu")
        (r,) = d.detect_text([fix_a["raw_images"][case["image_name"]].numpy()], [case["caption_raw"]])
        assert len(r) == len(case["phrases"])
        # the official phrases decode the selected ids ("##" glued, "." removed); ours are the caption words
        # holding the same selected tokens
        words = case["caption"].split(" ")
        assert list(r.phrases) == [" ".join(words[w] for w in ws) for ws in _official_phrase_words(case)]
        norm = lambda p: p.replace("##", "").replace("[SEP]", "").replace(" ", "")  # noqa: E731
        assert [norm(p) for p in r.phrases] == [norm(p) for p in case["phrases"]]  # no split words in fixture A
        h, w = fix_a["raw_images"][case["image_name"]].shape[:2]
        np.testing.assert_allclose(r.boxes, case["xyxy_pixels"].numpy(), atol=1e-2)  # unclipped, as official
        np.testing.assert_allclose(r.scores, case["scores"].numpy(), atol=1e-4)


@pytest.mark.parametrize("layout", ["official", "hf"])
def test_detector_loads_released_formats_and_matches_predict(parity_dir, tmp_path, fixture_ckpt, fix_a, layout):
    from safetensors.torch import save_file

    if layout == "official":
        ckpt = fixture_ckpt / "groundingdino_a.pth"
    else:
        ckpt = tmp_path / "model.safetensors"
        hf = torch.load(parity_dir / "grounding_dino" / "gdino_tiny_A_hf.pt", weights_only=True)["state_dict"]
        # as save_pretrained writes tied weights: only bbox_embed.0 of the shared box heads is kept
        keep = {k: v.clone() for k, v in hf.items() if not k.startswith("model.decoder.bbox_embed.")
                and not (k.startswith("bbox_embed.") and not k.startswith("bbox_embed.0."))}
        assert len(keep) < len(hf)
        save_file(keep, str(ckpt))
    case = fix_a["predict"][0]
    d = GroundingDINODetector(variant="tiny", checkpoint=str(ckpt), vocab=str(fixture_ckpt / "vocab.txt"),
                              box_threshold=case["box_threshold"], text_threshold=case["text_threshold"])
    d.setup("cpu")
    (r,) = d.detect_text([fix_a["raw_images"][case["image_name"]].numpy()], [case["caption_raw"]])
    assert r.boxes[:, 0].min() < 0  # the official boxes are not clipped, nor are these
    np.testing.assert_allclose(r.boxes, case["xyxy_pixels"].numpy(), atol=1e-2)
    np.testing.assert_allclose(r.scores, case["scores"].numpy(), atol=1e-4)


def test_wrong_checkpoint_names_the_keys(tmp_path, fix_a, fixture_ckpt):
    sd = {k: v for k, v in fix_a["state_dict"].items() if not k.startswith("feat_map.")}
    torch.save({"model": sd}, tmp_path / "bad.pth")
    d = GroundingDINODetector(variant="tiny", checkpoint=str(tmp_path / "bad.pth"),
                              vocab=str(fixture_ckpt / "vocab.txt"))
    with pytest.raises(ValueError, match="missing keys: feat_map.bias, feat_map.weight"):
        d.setup("cpu")


def test_bf16_autocast_is_applied_and_close(fixture_ckpt, fix_a):
    case = fix_a["predict"][0]
    im = fix_a["raw_images"][case["image_name"]].numpy()
    runs = {}
    for mode in ("fp32", "dtype_bf16", "pipeline_autocast"):
        d = GroundingDINODetector(variant="tiny", checkpoint=str(fixture_ckpt / "groundingdino_a.pth"),
                                  vocab=str(fixture_ckpt / "vocab.txt"), box_threshold=case["box_threshold"],
                                  text_threshold=case["text_threshold"],
                                  dtype="bfloat16" if mode == "dtype_bf16" else "float32")
        d.setup("cpu")
        rec = {}
        d.model.feat_map.register_forward_hook(lambda m, i, o: rec.__setitem__("dtype", o.dtype))
        d.model.transformer.decoder.register_forward_pre_hook(
            lambda m, args: rec.__setitem__("anchors", args[1].float().sigmoid()[0]))
        d.model.register_forward_hook(lambda m, i, o: rec.update(probs=o.pred_logits[0].float().sigmoid(),
                                                                 boxes=o.pred_boxes[0].float()))
        if mode == "pipeline_autocast":  # the pipeline's --precision bf16 must reach the detector
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
                rec["dets"] = d.detect_text([im], [case["caption_raw"]])[0]
        else:
            rec["dets"] = d.detect_text([im], [case["caption_raw"]])[0]
        runs[mode] = rec
    ref = runs["fp32"]
    assert ref["dtype"] == torch.float32
    for mode in ("dtype_bf16", "pipeline_autocast"):
        r = runs[mode]
        assert r["dtype"] == torch.bfloat16, mode
        assert np.isfinite(r["dets"].boxes).all() and len(r["dets"]) > 0
        # bf16 can swap near-tied top-k ranks (content queries follow the rank); compare the queries whose
        # anchor (selected encoder token) is the same in both runs
        same = (r["anchors"] - ref["anchors"]).abs().amax(-1) < 1e-3
        assert int(same.sum()) >= 10
        assert float((r["probs"][same] - ref["probs"][same]).abs().max()) < 0.05
        assert float((r["boxes"][same] - ref["boxes"][same]).abs().max()) < 5e-3


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(det, device="cuda"):
    a, b = _images(4, (70, 120), (120, 70))
    names = ["cat", "dog", "fire hydrant"]  # a detector takes tag names (prompts are its own business)
    cpu = det.detect([a, b], [names, names])
    g = _twin(det)
    g.setup(device)
    g.model.load_state_dict(det.model.state_dict())
    tf32 = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False  # fp32 convolutions, as on the CPU
    try:
        on_gpu = g.detect([a, b], [names, names])
    finally:
        torch.backends.cudnn.allow_tf32 = tf32
    for got, want in zip(on_gpu, cpu):
        assert got.labels == want.labels
        np.testing.assert_allclose(got.scores, want.scores, atol=1e-4)
        np.testing.assert_allclose(got.boxes, want.boxes, atol=1e-2)
    g.dtype = "bfloat16"
    assert all(np.isfinite(d.boxes).all() for d in g.detect([a, b], [names, names]))


def test_the_cuda_check_runs_its_code_on_the_cpu(det):
    """The GPU test's own code, run with the CPU as its device: it cannot rot unseen until the first GPU."""
    test_cuda_matches_cpu(det, device="cpu")
