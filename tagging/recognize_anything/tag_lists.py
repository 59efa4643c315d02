"""Tag lists of the recognize-anything taggers: names, per-class thresholds, Chinese names.

The official 4585-tag RAM/RAM++ list is read through :func:`openvocab.hub.resolve`."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from openvocab.hub import resolve

from .weights import TAG_FILES

#: the official ctor default threshold for classes without a line in the threshold file
DEFAULT_THRESHOLD = 0.68


@dataclass(frozen=True)
class TagList:
    """Names and thresholds of a tagger's closed-set classes, in the model's class order.

    Attributes:
        names: ``C`` English names.
        thresholds: ``float32 [C]``; a tag fires when ``sigmoid(logit) > threshold`` (strict).
        names_zh: ``C`` Chinese names (trailing spaces of the official file stripped) or ``None``.
    """

    names: tuple[str, ...]
    thresholds: np.ndarray
    names_zh: Optional[tuple[str, ...]] = None

    def __post_init__(self) -> None:
        th = np.asarray(self.thresholds, dtype=np.float32).reshape(-1)
        if len(th) != len(self.names):
            raise ValueError(f"{len(self.names)} tags but {len(th)} thresholds")
        if self.names_zh is not None and len(self.names_zh) != len(self.names):
            raise ValueError(f"{len(self.names)} tags but {len(self.names_zh)} Chinese names")
        if not all(isinstance(n, str) and n.strip() for n in self.names):
            raise ValueError("tag names must be non-empty strings")
        object.__setattr__(self, "thresholds", th)

    def __len__(self) -> int:
        return len(self.names)


def read_lines(path: os.PathLike | str) -> list[str]:
    """Lines of a UTF-8 text file (``splitlines``, as the official loader; no trailing empty line)."""
    return Path(path).read_text(encoding="utf-8").splitlines()


def read_thresholds(path: os.PathLike | str) -> np.ndarray:
    lines = read_lines(path)
    try:
        return np.asarray([float(x) for x in lines], dtype=np.float32)
    except ValueError as e:
        raise ValueError(f"{path}: bad threshold line ({e})") from None


def official_tag_list() -> TagList:
    """The 4585 official tags (English + Chinese) with their per-class thresholds (downloads once)."""
    names = read_lines(resolve(TAG_FILES["tag_list"]))
    names_zh = [n.strip() for n in read_lines(resolve(TAG_FILES["tag_list_chinese"]))]
    thresholds = read_thresholds(resolve(TAG_FILES["tag_list_threshold"]))
    return TagList(names=tuple(names), thresholds=thresholds, names_zh=tuple(names_zh))


def custom_tag_list(names: Sequence[str] | str, *, thresholds: Sequence[float] | str | float | None = None,
                    names_zh: Sequence[str] | str | None = None) -> TagList:
    """A tag list from names (or a text file of names, one a line) and optional thresholds/Chinese names.

    ``thresholds``: a float for every tag, a list, or a file with one value a line
    (default :data:`DEFAULT_THRESHOLD`).
    """
    if isinstance(names, (str, os.PathLike)):
        names = read_lines(resolve(names))
    names = tuple(names)
    if isinstance(names_zh, (str, os.PathLike)):
        names_zh = read_lines(resolve(names_zh))
    if thresholds is None:
        thresholds = DEFAULT_THRESHOLD
    if isinstance(thresholds, (str, os.PathLike)):
        th = read_thresholds(resolve(thresholds))
    elif isinstance(thresholds, (int, float)):
        th = np.full(len(names), thresholds, dtype=np.float32)
    else:
        th = np.asarray(list(thresholds), dtype=np.float32)
    return TagList(names=names, thresholds=th,
                   names_zh=None if names_zh is None else tuple(n.strip() for n in names_zh))


#: tags of the tiny random variants (no checkpoint): everyday objects plus scenes, actions, colours
TINY_TAGS = ("person", "dog", "cat", "car", "bicycle", "bus", "boat", "bird", "horse", "tree", "flower",
             "grass", "building", "road", "chair", "table", "cup", "bottle", "book", "laptop", "phone",
             "water", "beach", "sky", "cloud", "sunset", "night", "running", "red", "blue")
#: their threshold (random weights give probabilities around 0.5)
TINY_THRESHOLD = 0.5
