"""Image input: expanding inputs and loading odd/broken files (openvocab.images)."""
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

sys.path.insert(0, str(Path(__file__).parent))
from bad_images import BAD_FILES, DISPLAYED_SIZES, _bomb_png, make_bad_image_folder  # noqa: E402

from openvocab.images import DEFAULT_MAX_PIXELS, ImageLoadError, expand_inputs, load_image  # noqa: E402


@pytest.fixture(scope="module")
def bad_folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("odd") / "mixed"
    expected = make_bad_image_folder(d)
    return d, expected


def test_folder_of_odd_files_loads_good_ones_and_names_bad_ones(bad_folder):
    d, expected = bad_folder
    files, missing = expand_inputs([str(d)])
    assert missing == []
    assert [Path(f).name for f in files] == sorted(expected)  # all have image extensions, sorted
    assert {n for n, ok in expected.items() if not ok} == set(BAD_FILES)
    for f in files:
        name = Path(f).name
        if expected[name]:
            img, info = load_image(f)
            assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3, name
            assert (info.width, info.height) == DISPLAYED_SIZES[name], name
            assert img.shape[:2] == (info.height, info.width) and info.file == f
        else:
            with pytest.raises(ImageLoadError) as e:
                load_image(f)
            assert e.value.file == f and str(e.value).startswith(f + ": ") and e.value.message, name


def test_error_messages_say_what_is_wrong(bad_folder):
    d, _ = bad_folder

    def message(name):
        with pytest.raises(ImageLoadError) as e:
            load_image(str(d / name))
        return e.value.message

    assert "empty file" in message("zero_bytes.jpg")
    assert "truncated" in message("truncated.jpg")
    assert "truncated" in message("truncated.png")
    assert "not an image" in message("not_an_image.png")
    assert "corrupt" in message("corrupt.png")
    bomb = message("bomb.png")
    assert "10000x10000" in bomb and "decompression bomb" in bomb and str(DEFAULT_MAX_PIXELS) in bomb
    assert "cannot read file" in message("no_such_file.jpg")
    assert "folder" in message(".")


def test_pixel_conversions(bad_folder):
    d, _ = bad_folder
    # 16-bit gray: round(v / 257), the same value in all three channels
    img, _ = load_image(str(d / "gray16.png"))
    ramp16 = (np.arange(32 * 64).reshape(32, 64) * 32).astype(np.float64)
    assert np.array_equal(img[:, :, 0], np.rint(ramp16 / 257).astype(np.uint8))
    assert np.array_equal(img[:, :, 0], img[:, :, 2])
    assert img[0, 0, 0] == 0 and img[-1, -1, 0] == round(2047 * 32 / 257) == 255
    assert (load_image(str(d / "gray16.tif"))[0] == 255).all()
    assert (load_image(str(d / "rgb16.png"))[0] == [255, 100, 3]).all()  # 16-bit RGB: high byte
    # RGBA: transparent pixels become white, opaque ones keep their colour
    img, _ = load_image(str(d / "rgba.png"))
    rgba = np.asarray(Image.open(d / "rgba.png"))
    assert (img[:, :18] == 255).all()
    opaque = rgba[:, 18:, 3] == 255
    assert np.array_equal(img[:, 18:][opaque], rgba[:, 18:, :3][opaque])
    a = rgba[:, 18:, 3:].astype(np.float64) / 255  # partly transparent: composited on white
    assert np.abs(img[:, 18:].astype(np.float64) - (rgba[:, 18:, :3] * a + 255 * (1 - a))).max() <= 1
    # GIF palette: index 3 is transparent -> white; index 0 red
    img, _ = load_image(str(d / "palette_transparent.gif"))
    idx = np.arange(12 * 16).reshape(12, 16) % 4
    assert (img[idx == 3] == 255).all() and (img[idx == 0] == [255, 0, 0]).all()
    # CMYK -> RGB as Pillow converts it; 1x1 keeps its colour
    with Image.open(d / "cmyk.jpg") as im:
        assert im.mode == "CMYK"
        assert np.array_equal(load_image(str(d / "cmyk.jpg"))[0], np.asarray(im.convert("RGB")))
    assert load_image(str(d / "one_pixel.png"))[0].tolist() == [[[10, 200, 30]]]


def test_exif_orientation_is_applied(bad_folder):
    d, _ = bad_folder
    img, info = load_image(str(d / "exif_rotated.jpg"))
    with Image.open(d / "exif_rotated.jpg") as im:
        assert im.size == (40, 20) and im.getexif()[0x0112] == 6
        stored = np.asarray(im.convert("RGB"))
    assert (info.width, info.height) == (20, 40)
    assert np.array_equal(img, np.rot90(stored, k=-1))  # orientation 6: rotate 90 degrees clockwise


def test_real_photo_loads_in_displayed_size(shared_dir):
    img, info = load_image(str(shared_dir / "images" / "demo4.jpg"))
    assert (info.width, info.height) == (428, 640) and img.shape == (640, 428, 3)
    with Image.open(shared_dir / "images" / "demo3.jpg") as im:  # EXIF orientation tag 1: as stored
        assert im.getexif().get(0x0112) == 1 and im.size == (3216, 4288)
    img, info = load_image(str(shared_dir / "images" / "demo3.jpg"))
    assert (info.width, info.height) == (3216, 4288) and img.shape == (4288, 3216, 3)
    with pytest.raises(ImageLoadError, match="exceeds the limit of 13790207"):
        load_image(str(shared_dir / "images" / "demo3.jpg"), max_pixels=3216 * 4288 - 1)


def test_bombs_are_refused_from_the_header_only(tmp_path, monkeypatch):
    calls = []
    real_load = ImageFile.ImageFile.load

    def spy(self):
        calls.append(self.size)
        return real_load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", spy)
    soft = tmp_path / "soft.png"  # above Pillow's warning limit
    soft.write_bytes(_bomb_png(10_000, 10_000))
    hard = tmp_path / "hard.png"  # above Pillow's hard limit (2x): Pillow itself raises on open
    hard.write_bytes(_bomb_png(20_000, 10_000))
    for f in (soft, hard):
        with pytest.raises(ImageLoadError, match="decompression bomb") as e:
            load_image(str(f))
        assert e.value.file == str(f)
    with pytest.raises(ImageLoadError, match="100000000 pixels exceeds the limit of 5000"):
        load_image(str(soft), max_pixels=5000)
    assert calls == []  # no pixel was decoded


def test_max_pixels_limit_and_bad_values(bad_folder):
    d, _ = bad_folder
    f = str(d / "rgb.jpg")  # 40x30 = 1200 pixels
    assert load_image(f, max_pixels=1200)[1].width == 40
    with pytest.raises(ImageLoadError, match="1200 pixels exceeds the limit of 1199"):
        load_image(f, max_pixels=1199)
    for bad in (0, -5, 1.5, True):
        with pytest.raises(ValueError):
            load_image(f, max_pixels=bad)


def _touch(path: Path, data: bytes = b"x") -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return str(path)


def test_expand_inputs_files_folders_globs_lists(tmp_path, monkeypatch):
    root = tmp_path / "data"
    b = _touch(root / "b.png")
    a_sub = _touch(root / "a" / "z.JPG")
    a_sub2 = _touch(root / "a" / "deeper" / "y.webp")
    c = _touch(root / "c.Jpeg")
    _touch(root / "notes.md")  # not an image: skipped in folders
    _touch(root / ".hidden" / "h.png")  # hidden folder: skipped
    _touch(root / ".h.png")
    other = _touch(tmp_path / "other" / "o.bmp")
    explicit = _touch(tmp_path / "other" / "weird.dat")  # named explicitly: kept
    empty = tmp_path / "empty"
    empty.mkdir()

    files, missing = expand_inputs([str(root)])
    assert files == [a_sub2, a_sub, b, c] and missing == []

    # globs (recursive **), duplicates removed with first occurrence kept, missing reported in order
    files, missing = expand_inputs([str(tmp_path / "other" / "*"), str(root / "**" / "*.png"), b,
                                    str(tmp_path / "nope.jpg"), str(empty), str(tmp_path / "x*.tif"),
                                    explicit])
    assert files == [other, b, explicit]
    assert missing == [str(tmp_path / "nope.jpg"), str(empty), str(tmp_path / "x*.tif")]

    # a .txt list: relative to the list's folder, absolute, comments and blank lines skipped
    lst = tmp_path / "lists" / "paths.txt"
    lst.parent.mkdir()
    lst.write_text(f"# my images\n\n../data/b.png\n  {other}  \n../data/a\n../missing.png\n../data/b.png\n",
                   encoding="utf-8")
    files, missing = expand_inputs([str(lst)])
    assert [os.path.abspath(f) for f in files] == [os.path.abspath(p) for p in (b, other, a_sub2, a_sub)]
    assert [Path(m).name for m in missing] == ["missing.png"]
    assert all(Path(f).is_file() for f in files)

    # relative inputs stay relative (as given)
    monkeypatch.chdir(tmp_path)
    files, missing = expand_inputs(["data/b.png", "data/b.png", os.path.abspath(b)])
    assert files == ["data/b.png"] and missing == []
    with pytest.raises(ValueError):
        expand_inputs("data")


def test_self_including_list_does_not_loop(tmp_path):
    img = _touch(tmp_path / "i.png")
    lst = tmp_path / "l.txt"
    lst.write_text("l.txt\ni.png\n")
    files, missing = expand_inputs([str(lst)])
    assert files == [img] and missing == []


def test_32bit_int_and_float_images(tmp_path):
    ints = np.array([[0, 1000, 65535]], np.int32)  # fits 16 bits: round(v / 257)
    Image.fromarray(ints).save(tmp_path / "i16range.tif")
    wide = np.array([[-100, 0, 100]], np.int32)  # any other range: stretched min..max -> 0..255
    Image.fromarray(wide).save(tmp_path / "iwide.tif")
    unit = np.array([[0.0, 0.5, 1.0]], np.float32)  # float in [0, 1]: * 255
    Image.fromarray(unit).save(tmp_path / "f.tif")
    for name, mode, want in (("i16range.tif", "I", [0, 4, 255]), ("iwide.tif", "I", [0, 128, 255]),
                             ("f.tif", "F", [0, 128, 255])):
        with Image.open(tmp_path / name) as im:
            assert im.mode == mode
        img, info = load_image(str(tmp_path / name))
        assert (info.width, info.height) == (3, 1)
        assert img[0, :, 0].tolist() == want and (img[..., 0] == img[..., 1]).all(), name


def test_max_pixels_above_pillows_own_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow refuses > 2000 pixels on open
    f = tmp_path / "big.png"
    Image.new("RGB", (60, 60), (1, 2, 3)).save(f)  # 3600 pixels
    with pytest.raises(ImageLoadError, match="decompression bomb.*limit is 2000 pixels"):
        load_image(str(f), max_pixels=2000)  # Pillow's own error, reported with our limit
    img, info = load_image(str(f), max_pixels=10_000)  # our larger limit wins
    assert (info.width, info.height) == (60, 60) and img[0, 0].tolist() == [1, 2, 3]
    assert Image.MAX_IMAGE_PIXELS == 1000  # restored


def test_a_library_error_naming_the_file_does_not_repeat_its_path(tmp_path, monkeypatch):
    from PIL import Image as PILImage

    from openvocab.images import ImageLoadError, load_image

    path = tmp_path / "x.png"
    path.write_bytes(b"\x89PNG....")

    def failing_open(p, *args, **kwargs):
        raise OSError(f"decoder error reading '{p}'")

    monkeypatch.setattr(PILImage, "open", failing_open)
    with pytest.raises(ImageLoadError) as e:
        load_image(str(path))
    assert str(e.value).count(str(path)) == 1
    assert e.value.message == "cannot open image: OSError: decoder error reading the file"
