"""The official Tag2Text tags: 3429 English names, threshold 0.68 but three hard-coded 0.7, deleted tags.

``Tag2Text.__init__`` sets ``class_threshold = ones(C) * threshold`` then ``{2701: 0.7, 2828: 0.7, 1167: 0.7}``
('person', 'man', 'woman'); ``delete_tag_index`` defaults to 7 tags that disturb captions ('quarter', 'back',
'two', 'three', 'four', 'five', 'one'), and the official inference passes the same list.
"""
from __future__ import annotations

import numpy as np

from openvocab.hub import resolve

from ..recognize_anything.tag_lists import TagList, read_lines
from .weights import TAG_FILES

#: the official ctor threshold of every tag
THRESHOLD = 0.68
#: the official hard-coded per-class thresholds (index -> threshold)
CLASS_THRESHOLDS = {2701: 0.7, 2828: 0.7, 1167: 0.7}
#: the official ``delete_tag_index``
DELETE_TAG_INDEX = (127, 2961, 3351, 3265, 3338, 3355, 3359)
NUM_TAGS = 3429


def official_thresholds(threshold: float = THRESHOLD) -> np.ndarray:
    """``float32 [3429]``: ``threshold`` everywhere but the hard-coded classes."""
    th = np.full(NUM_TAGS, threshold, dtype=np.float32)
    for index, value in CLASS_THRESHOLDS.items():
        th[index] = value
    return th


def official_tag_list(threshold: float = THRESHOLD) -> TagList:
    """The 3429 official tags with the official thresholds (downloads once)."""
    names = read_lines(resolve(TAG_FILES["tag_list"]))
    if len(names) != NUM_TAGS:
        raise ValueError(f"{TAG_FILES['tag_list'].filename} has {len(names)} tags, expected {NUM_TAGS}")
    return TagList(names=tuple(names), thresholds=official_thresholds(threshold))
