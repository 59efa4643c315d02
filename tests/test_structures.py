import numpy as np
import pytest

from grounding.prompt import Prompt, TagSpan
from openvocab.structures import Concept, Detections, ImageInfo, ImageResult, Regions, Tag, Tags, TagSource


def test_tags_sorted_by_score_and_typed():
    tags = Tags((Tag("sky", 0.2), Tag("dog", 0.9, TagSource.OPEN_SET), Tag("cat", 0.5, "closed-set")))
    assert tags.names == ["dog", "cat", "sky"]
    assert tags[0].source is TagSource.OPEN_SET and tags[1].source is TagSource.CLOSED_SET
    np.testing.assert_allclose(tags.scores, [0.9, 0.5, 0.2])


@pytest.mark.parametrize("bad", ["", "   ", None])
def test_tag_rejects_empty_name(bad):
    with pytest.raises(ValueError):
        Tag(bad, 0.5)


def test_tag_rejects_nan_and_unknown_source():
    with pytest.raises(ValueError):
        Tag("cat", float("nan"))
    with pytest.raises(ValueError):
        Tag("cat", 0.5, source="made-up")


def test_detections_lengths_validated():
    with pytest.raises(ValueError, match="lengths differ"):
        Detections(boxes=np.zeros((2, 4)), scores=np.zeros(2), labels=("a",))
    with pytest.raises(ValueError, match="shape"):
        Detections(boxes=np.zeros((2, 3)), scores=np.zeros(2), labels=("a", "b"))
    d = Detections(boxes=[[0, 0, 10, 10], [1, 1, 5, 5]], scores=[0.9, 0.1], labels=("a", "b"))
    assert d.boxes.dtype == np.float32 and d.phrases == ("a", "b")
    sub = d.select(np.array([False, True]))
    assert sub.labels == ("b",) and sub.boxes.tolist() == [[1, 1, 5, 5]]
    both = Detections.concatenate([d, Detections(), sub])
    assert len(both) == 3 and both.labels == ("a", "b", "b")
    assert len(Detections()) == 0 and Detections().boxes.shape == (0, 4)


def test_regions_validated_and_aligned_with_detections():
    rle = {"size": [4, 4], "counts": "04"}
    with pytest.raises(ValueError):
        Regions(masks=[rle], mask_scores=[0.5, 0.4])
    with pytest.raises(ValueError):
        Regions(masks=[rle], mask_scores=[0.5], captions=["a", "b"])
    with pytest.raises(ValueError):
        Regions(masks=[{"counts": "x"}], mask_scores=[0.5])
    r = Regions(masks=[rle], mask_scores=[0.5], concepts=[[Concept("dog", 0.7)]], captions=["a dog"])
    info = ImageInfo("x.jpg", 4, 4)
    with pytest.raises(ValueError, match="regions"):
        ImageResult(image=info, regions=r)
    det = Detections(boxes=[[0, 0, 1, 1]], scores=[1.0], labels=("dog",))
    assert ImageResult(image=info, detections=det, regions=r).regions.captions == ("a dog",)


def test_prompt_spans_must_match_caption():
    p = Prompt("cat . fire hydrant .", (TagSpan("cat", 0, 3), TagSpan("fire hydrant", 6, 18)))
    assert p.names == ["cat", "fire hydrant"]
    with pytest.raises(ValueError):
        Prompt("cat . dog .", (TagSpan("dog", 0, 3),))
    with pytest.raises(ValueError):
        TagSpan("x", 3, 3)


def test_image_info_rejects_empty_size():
    with pytest.raises(ValueError, match="x.png"):
        ImageInfo("x.png", 0, 10)


def test_check_prompts_shared_by_mask_heads():
    from openvocab.stages import check_prompts

    pr = check_prompts(boxes=[[0, 0, 4, 4], [1, 1, 2, 2]], points=np.zeros((2, 3, 2)), point_labels=[[1, 0, -1]] * 2)
    assert pr.count == 2 and pr.boxes.dtype == np.float32 and pr.point_labels.dtype == np.int64
    assert check_prompts(points=np.ones((1, 1, 2)), point_labels=[[1]]).boxes is None
    for bad, msg in [(dict(), "boxes and/or points"), (dict(boxes=[[0, 0, 1]]), r"\[N, 4\]"),
                     (dict(boxes=[[0, 0, np.nan, 1]]), "finite"), (dict(points=np.zeros((1, 2, 2))), "point_labels"),
                     (dict(points=np.zeros((1, 2, 2)), point_labels=[[1, 2]]), "foreground"),
                     (dict(boxes=np.zeros((2, 4)), points=np.zeros((1, 1, 2)), point_labels=[[1]]), "1 point prompts for 2"),
                     (dict(boxes=np.zeros((1, 4)), point_labels=[[1]]), "without points")]:
        with pytest.raises(ValueError, match=msg):
            check_prompts(**bad)
