"""Writes a folder of odd and broken image files, for the loader and end-to-end tests.

``make_bad_image_folder(dir)`` returns ``{file name: should load}``; :data:`DISPLAYED_SIZES` gives the
``(width, height)`` each good file must load with (EXIF orientation applied). Every file has an image
extension, so a folder walk picks all of them up.
"""
from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

#: name -> (width, height) as displayed, for the files that must load.
DISPLAYED_SIZES = {
    "rgb.jpg": (40, 30),
    "upper_case.JPG": (24, 16),
    "cmyk.jpg": (32, 20),
    "gray16.png": (64, 32),
    "gray16.tif": (20, 10),
    "rgb16.png": (8, 6),
    "palette.png": (30, 20),
    "palette_transparent.gif": (16, 12),
    "rgba.png": (36, 18),
    "gray_alpha.png": (10, 14),
    "exif_rotated.jpg": (20, 40),  # stored 40x20, EXIF orientation 6 (rotate 90 degrees clockwise)
    "one_pixel.png": (1, 1),
    "bilevel.bmp": (17, 9),
}
#: names of the files that must fail.
BAD_FILES = ("zero_bytes.jpg", "truncated.jpg", "truncated.png", "not_an_image.png", "corrupt.png",
             "bomb.png")


def _noise(h: int, w: int, c: int = 3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(h, w, c) if c else (h, w), dtype=np.uint8)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _bomb_png(width: int = 10_000, height: int = 10_000) -> bytes:
    """A valid 1-bit PNG of ``width x height`` all-black pixels: ~12 KB on disk, 100 megapixels."""
    row = b"\x00" + b"\x00" * ((width + 7) // 8)  # filter byte + packed bits
    comp = zlib.compressobj(9)
    body = b"".join(comp.compress(row * 500) for _ in range(height // 500)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", body)
            + _png_chunk(b"IEND", b""))


def _rgb16_png() -> bytes:
    """An 8x6 16-bit RGB PNG: every pixel (65535, 25700, 1000) -> 8-bit (255, 100, 3)."""
    raw = b"".join(b"\x00" + struct.pack(">HHH", 65535, 25700, 1000) * 8 for _ in range(6))
    ihdr = struct.pack(">IIBBBBB", 8, 6, 16, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(raw))
            + _png_chunk(b"IEND", b""))


def _encode(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def make_bad_image_folder(directory) -> dict[str, bool]:
    """Write the odd/broken files into ``directory`` (created if needed); ``{name: should load}``."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    files: dict[str, bytes] = {}
    files["rgb.jpg"] = _encode(Image.fromarray(_noise(30, 40)), "JPEG", quality=90)
    files["upper_case.JPG"] = _encode(Image.fromarray(_noise(16, 24, seed=1)), "JPEG")
    files["cmyk.jpg"] = _encode(Image.fromarray(_noise(20, 32, 4, seed=2), "CMYK"), "JPEG")
    ramp16 = (np.arange(32 * 64, dtype=np.uint32).reshape(32, 64) * 32).astype(np.uint16)
    files["gray16.png"] = _encode(Image.fromarray(ramp16), "PNG")
    files["gray16.tif"] = _encode(Image.fromarray(np.full((10, 20), 65535, np.uint16)), "TIFF")
    files["rgb16.png"] = _rgb16_png()
    pal = Image.fromarray(_noise(20, 30, seed=3)).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    files["palette.png"] = _encode(pal, "PNG")
    gif = Image.fromarray((np.arange(12 * 16).reshape(12, 16) % 4).astype(np.uint8), "P")
    gif.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0] + [0] * (256 * 3 - 12))
    files["palette_transparent.gif"] = _encode(gif, "GIF", transparency=3)
    rgba = _noise(18, 36, 4, seed=4)
    rgba[:, :18, 3] = 0  # left half fully transparent
    files["rgba.png"] = _encode(Image.fromarray(rgba, "RGBA"), "PNG")
    files["gray_alpha.png"] = _encode(Image.fromarray(_noise(14, 10, 2, seed=5), "LA"), "PNG")
    stored = Image.fromarray(_noise(20, 40, seed=6))
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 CW to display
    files["exif_rotated.jpg"] = _encode(stored, "JPEG", exif=exif.tobytes())
    files["one_pixel.png"] = _encode(Image.new("RGB", (1, 1), (10, 200, 30)), "PNG")
    files["bilevel.bmp"] = _encode(Image.fromarray(_noise(9, 17, 0, seed=7) > 127), "BMP")

    files["zero_bytes.jpg"] = b""
    jpg = _encode(Image.fromarray(_noise(64, 64, seed=8)), "JPEG", quality=95)
    files["truncated.jpg"] = jpg[: len(jpg) // 2]
    png = _encode(Image.fromarray(_noise(64, 64, seed=9)), "PNG")
    files["truncated.png"] = png[: len(png) // 2]
    files["not_an_image.png"] = b"This is a text file that only pretends to be a PNG.\n" * 3
    broken = bytearray(png)
    idat = broken.find(b"IDAT")
    broken[idat + 40: idat + 80] = bytes(40)  # damaged compressed data, CRC no longer matches
    files["corrupt.png"] = bytes(broken)
    files["bomb.png"] = _bomb_png()

    for name, data in files.items():
        (d / name).write_bytes(data)
    expected = {name: name in DISPLAYED_SIZES for name in files}
    assert set(expected) == set(DISPLAYED_SIZES) | set(BAD_FILES)
    return expected
