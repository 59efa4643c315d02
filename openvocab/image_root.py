"""A job's image root: the folder that every output names its images relative to.

COCO ``file_name``, CVAT/VOC/Label Studio image names and the YOLO train/val split use the path of
each image relative to the image root (``--image-root DIR``; by default the deepest folder that holds
every input), written with ``/`` separators, so a dataset tool pointed at the image root finds every
image without path fixing.
"""
from __future__ import annotations

import hashlib
import os
from typing import Optional, Sequence


def common_root(files: Sequence[str]) -> str:
    """The deepest folder holding every file of ``files`` (absolute; the current folder when empty)."""
    folders = [os.path.dirname(os.path.abspath(f)) for f in files]
    if not folders:
        return os.getcwd()
    try:
        return os.path.commonpath(folders)
    except ValueError:  # files on several drives (Windows): no common folder
        return os.path.abspath(os.sep)


def relative_name(file: str, root: str) -> Optional[str]:
    """``file`` relative to ``root`` with ``/`` separators; ``None`` when ``file`` is not under ``root``
    (compared as typed, then with symbolic links resolved)."""
    for f, r in ((os.path.abspath(file), os.path.abspath(root)), (os.path.realpath(file), os.path.realpath(root))):
        try:
            rel = os.path.relpath(f, r)
        except ValueError:  # another drive
            continue
        if rel != os.pardir and not rel.startswith(os.pardir + os.sep) and not os.path.isabs(rel):
            return rel.replace(os.sep, "/")
    return None


def outside_root(files: Sequence[str], root: str) -> list[str]:
    """The files of ``files`` that are not under ``root``."""
    return [f for f in files if relative_name(f, root) is None]


def split_of(name: str, val_fraction: float) -> str:
    """``"val"`` or ``"train"`` for an image's relative name: a fixed fraction of a hash of the name, so an
    image stays in its split whatever else the dataset holds (and in every run)."""
    if not 0.0 <= val_fraction <= 1.0:
        raise ValueError(f"val_fraction must be in [0, 1], got {val_fraction}")
    h = int.from_bytes(hashlib.sha1(name.encode("utf-8", "surrogateescape")).digest()[:8], "big")
    return "val" if h / 2.0 ** 64 < val_fraction else "train"
