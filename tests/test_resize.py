"""openvocab.images.resize_bilinear: Pillow's bilinear resize with Pillow 13's pass order on any Pillow."""
import numpy as np
import PIL
import pytest
from PIL import Image

from openvocab.images import resize_bilinear

PILLOW_13 = int(PIL.__version__.split(".")[0]) >= 13


def _vertical_first_reference(a: np.ndarray, h: int, w: int) -> np.ndarray:
    """Vertical pass first, built independently: Pillow < 13 starts horizontally, so resize the transpose."""
    t = Image.fromarray(np.ascontiguousarray(a.transpose(1, 0, 2)))
    return np.asarray(t.resize((h, w), Image.BILINEAR)).transpose(1, 0, 2)


def test_matches_pillow_bilinear_in_pillow_13_pass_order():
    rng = np.random.default_rng(0)
    checked = {True: 0, False: 0}
    for _ in range(120):
        h, w, oh, ow = (int(v) for v in rng.integers(3, 300, 4))
        a = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        got = resize_bilinear(a, oh, ow)
        assert got.shape == (oh, ow, 3) and got.dtype == np.uint8
        vertical_first = h - oh > 0 and h - oh > 2 * (w - ow)
        if PILLOW_13 or not vertical_first:
            want = np.asarray(Image.fromarray(a).resize((ow, oh), Image.BILINEAR))
        else:
            want = _vertical_first_reference(a, oh, ow)
        np.testing.assert_array_equal(got, want)
        checked[vertical_first] += 1
    assert checked[True] > 10 and checked[False] > 10


def test_pass_order_changes_pixels_so_it_is_pinned():
    # a tall image shrunk mostly in height: the two orders give different uint8 pixels
    a = np.random.default_rng(1).integers(0, 256, (300, 200, 3), dtype=np.uint8)
    horizontal_first = np.asarray(Image.fromarray(
        np.asarray(Image.fromarray(a).resize((224, 300), Image.BILINEAR))).resize((224, 224), Image.BILINEAR))
    assert (resize_bilinear(a, 224, 224) != horizontal_first).any()
    np.testing.assert_array_equal(resize_bilinear(a, 224, 224), _vertical_first_reference(a, 224, 224))


def test_bad_input():
    with pytest.raises(ValueError, match="uint8"):
        resize_bilinear(np.zeros((4, 4, 3), np.float32), 2, 2)
    with pytest.raises(ValueError, match="0 x 2"):
        resize_bilinear(np.zeros((4, 4, 3), np.uint8), 0, 2)
