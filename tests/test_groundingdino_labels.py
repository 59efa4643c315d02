"""Tag labels from crafted logits: the tag whose token span scores highest (word pieces count for their tag,
adjacent tags never merge), thresholds, and NMS across prompt chunks, through ``GroundingDINODetector.detect_prompts``."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from grounding.groundingdino.detector import GroundingDINODetector
from grounding.groundingdino.postprocess import best_tags, char_span_to_token_span
from grounding.groundingdino.tokenize import tokenize
from openvocab.boxes import clip_detections
from grounding.prompt import TagPromptBuilder
from openvocab.structures import Detections

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", "car", "taxi", "fire", "hy", "##dra", "##nt", "dog",
         "cat"]


def _logit(p: float) -> float:
    return float(np.log(p / (1 - p)))


@pytest.fixture()
def det(tmp_path):
    (tmp_path / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    return GroundingDINODetector(variant="tiny", checkpoint=None, vocab=str(tmp_path / "vocab.txt"),
                                 box_threshold=0.3, text_threshold=0.25, nms_iou=None)


def _fake_run(det, table):
    """Replace the network: ``table[(image, chunk)] = (logits [Q,256], boxes [Q,4])`` for each caption."""
    def run(images, captions, prepared=None):
        for i, caps in enumerate(captions):
            for c, cap in enumerate(caps):
                tb = tokenize(det.tokenizer, [cap])
                logits, boxes = table[(i, c)]
                yield i, c, (tb.offsets[0], tb.word_ids[0]), logits, boxes
    det.tokenizer = det._load_tokenizer()
    det._run = run


def _logits(rows: list[dict[int, float]], n_tokens: int) -> torch.Tensor:
    out = torch.full((len(rows), 256), float("-inf"))
    out[:, :n_tokens] = _logit(0.01)
    for q, row in enumerate(rows):
        for t, p in row.items():
            out[q, t] = _logit(p)
    return out


def test_word_piece_and_adjacent_tags(det):
    (prompt,) = TagPromptBuilder().build(["car", "taxi", "fire hydrant"], det.count_tokens, 256)
    assert prompt.caption == "car . taxi . fire hydrant ."
    tb = tokenize(det._load_tokenizer(), [prompt.caption])
    toks = det._load_tokenizer().convert_ids_to_tokens(tb.input_ids[0])
    # [CLS] car . taxi . fire hy ##dra ##nt . [SEP]
    assert toks[6:9] == ["hy", "##dra", "##nt"]
    rows = [
        {8: 0.9, 6: 0.4},        # best token is the word piece "##nt" -> the whole tag "fire hydrant"
        {1: 0.6, 3: 0.7},        # "car" and "taxi" both above text_threshold -> the better one, not "car taxi"
        {1: 0.8, 3: 0.7},        # -> "car"
        {2: 0.9, 4: 0.9},        # only the "." slots are high: passes box_threshold, no tag above text_threshold
        {1: 0.29},               # below box_threshold
        {7: 0.5},                # "##dra" alone -> "fire hydrant"
    ]
    boxes = torch.tensor([[0.5, 0.5, 0.2, 0.2], [0.2, 0.2, 0.1, 0.1], [0.8, 0.8, 0.1, 0.1], [0.4, 0.6, 0.1, 0.1],
                          [0.3, 0.3, 0.1, 0.1], [0.6, 0.3, 0.1, 0.2]])
    _fake_run(det, {(0, 0): (_logits(rows, len(toks)), boxes)})
    img = np.zeros((100, 200, 3), np.uint8)
    (r,) = det.detect_prompts([img], [[prompt]])
    assert r.labels == ("fire hydrant", "car", "taxi", "fire hydrant")  # sorted by score: 0.9, 0.8, 0.7, 0.5
    np.testing.assert_allclose(r.scores, [0.9, 0.8, 0.7, 0.5], atol=1e-6)
    np.testing.assert_allclose(r.boxes[0], [80, 40, 120, 60], atol=1e-4)  # xyxy pixels of the 200x100 image
    assert r.phrases == r.labels


def test_best_tags_ties_and_empty():
    probs = torch.tensor([[0.1, 0.5, 0.5, 0.2]])
    score, idx = best_tags(probs, [[0], [1], [2, 3]])
    assert idx.tolist() == [1] and float(score) == pytest.approx(0.5)  # a tie goes to the earlier tag
    with pytest.raises(ValueError):
        best_tags(probs, [])
    assert char_span_to_token_span([(0, 0), (0, 3), (4, 5)], 0, 3) == [1]
    with pytest.raises(ValueError):
        char_span_to_token_span([(0, 0)], 3, 3)


@pytest.mark.parametrize("nms_iou,agnostic,expected", [
    (None, None, ["cat", "dog", "car", "dog"]),
    (0.5, None, ["cat", "dog", "car"]),        # the two overlapping "dog" boxes of one chunk -> one
    (None, 0.5, ["cat", "car"]),               # cat (chunk 2) suppresses the dogs (chunk 1) at the same place
    (0.5, 0.5, ["cat", "car"]),
])
def test_nms_per_tag_and_across_chunks(det, nms_iou, agnostic, expected):
    det.nms_iou, det.agnostic_nms_iou = nms_iou, agnostic
    chunks = TagPromptBuilder(max_tags_per_prompt=1).build(["dog", "cat", "car"], det.count_tokens, 256)
    assert [p.caption for p in chunks] == ["dog .", "cat .", "car ."]
    same = [0.5, 0.5, 0.4, 0.4]
    t = {(0, 0): (_logits([{1: 0.8}, {1: 0.6}], 4), torch.tensor([same, [0.51, 0.5, 0.4, 0.4]])),
         (0, 1): (_logits([{1: 0.9}], 4), torch.tensor([same])),
         (0, 2): (_logits([{1: 0.7}], 4), torch.tensor([[0.1, 0.1, 0.1, 0.1]]))}
    _fake_run(det, t)
    (r,) = det.detect_prompts([np.zeros((50, 50, 3), np.uint8)], [chunks])
    assert list(r.labels) == expected
    assert np.all(np.diff(r.scores) <= 0)


def test_boxes_are_official_unclipped_and_the_shared_clip_drops_outside_ones(det):
    (prompt,) = TagPromptBuilder().build(["dog"], det.count_tokens, 256)
    boxes = torch.tensor([[0.05, 0.5, 0.3, 0.2], [1.3, 0.5, 0.2, 0.2], [0.5, 0.5, 0.2, 0.2]])
    _fake_run(det, {(0, 0): (_logits([{1: 0.9}, {1: 0.8}, {1: 0.7}], 4), boxes)})
    img = np.zeros((100, 200, 3), np.uint8)
    (r,) = det.detect_prompts([img], [[prompt]])
    assert len(r) == 3 and r.boxes[0, 0] == pytest.approx(-20, abs=1e-4) and r.boxes[1, 0] > 200
    clipped = clip_detections(r, 100, 200)  # what the pipeline does to every detector's boxes
    np.testing.assert_allclose(clipped.boxes, [[0, 40, 40, 60], [80, 40, 120, 60]], atol=1e-4)
    assert clipped.labels == ("dog", "dog") and clipped.scores.tolist() == pytest.approx([0.9, 0.7])


def test_tag_names_come_back_as_the_caller_spelled_them(det):
    _fake_run(det, {(0, 0): (_logits([{1: 0.9}, {3: 0.8}], 5), torch.tensor([[0.5, 0.5, 0.2, 0.2]] * 2))})
    (r,) = det.detect([np.zeros((50, 50, 3), np.uint8)], [["Car", "TAXI"]])
    assert sorted(r.labels) == ["Car", "TAXI"]


def test_images_without_prompts_get_no_boxes(det):
    _fake_run(det, {})
    out = det.detect([np.zeros((8, 8, 3), np.uint8)] * 2, [[], []])
    assert [len(d) for d in out] == [0, 0]
    with pytest.raises(ValueError):
        det.detect([np.zeros((8, 8, 3), np.uint8)], [])


def test_free_text_phrases_are_whole_caption_words(tmp_path):
    from grounding.groundingdino.postprocess import phrase_spans
    from grounding.groundingdino.tokenize import load_tokenizer

    (tmp_path / "v.txt").write_text("\n".join(VOCAB + ["zebra", "cross", "##ing", "white", "bird", ",", "'", "s"]))
    tok = load_tokenizer(str(tmp_path / "v.txt"))
    cap = "zebra crossing, white bird's dog."
    tb = tokenize(tok, [cap])
    toks = tok.convert_ids_to_tokens(tb.input_ids[0])
    assert toks == ["[CLS]", "zebra", "cross", "##ing", ",", "white", "bird", "'", "s", "dog", ".", "[SEP]"]

    def phrase(*selected):
        p = torch.zeros(256)
        p[list(selected)] = 0.9
        return phrase_spans(p, tb.offsets[0], cap, 0.5, tb.word_ids[0])

    assert phrase(3) == "crossing"  # a lone word piece stands for its word (official: "##ing")
    assert phrase(1, 3) == "zebra crossing"  # official: "zebraing"
    assert phrase(1, 5, 6) == "zebra white bird"  # separate spans joined by one space, "," not glued on
    assert phrase(6, 7, 8) == "bird's"  # touching punctuation of selected tokens stays caption text
    assert phrase(9, 10, 11) == "dog"  # "." and [SEP] are dropped
    assert phrase(0) == ""  # position 0 ([CLS]) is never selected, as in the official predict
    # without word ids every token is its own word
    p = torch.zeros(256)
    p[3] = 0.9
    assert phrase_spans(p, tb.offsets[0], cap, 0.5) == "ing"


def test_box_conversion_hand_values():
    from grounding.groundingdino.postprocess import cxcywh_to_xyxy_pixels

    b = cxcywh_to_xyxy_pixels(torch.tensor([[0.5, 0.5, 0.2, 0.4], [0.0, 1.0, 0.4, 0.2]]), 100, 200)
    torch.testing.assert_close(b, torch.tensor([[80.0, 30.0, 120.0, 70.0], [-40.0, 90.0, 40.0, 110.0]]))
    clipped = clip_detections(Detections(boxes=b.numpy(), scores=[0.5, 0.5], labels=("a", "b")), 100, 200)
    np.testing.assert_allclose(clipped.boxes, [[80.0, 30, 120, 70], [0.0, 90, 40, 100]])
