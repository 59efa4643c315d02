"""Where the official recognize-anything data files come from (metadata only; see openvocab.hub).

The 4585-tag lists and per-class thresholds are shared by RAM and RAM++ (the official code reads the
same three files for both); Tag2Text has its own 3429-tag list (``tagging.tag2text.weights``).
"""
from __future__ import annotations

from openvocab.hub import RemoteFile

#: recognize-anything commit the data-file URLs are pinned to (the sha256s are of these files)
OFFICIAL_COMMIT = "7cb804a8609e9f4b1a50b7f31436d2df40bb9481"
OFFICIAL_RAW = f"https://raw.githubusercontent.com/xinyu1205/recognize-anything/{OFFICIAL_COMMIT}/ram/data/"

#: official RAM/RAM++ tag data (English names, Chinese names, per-class thresholds; 4585 lines each)
TAG_FILES: dict[str, RemoteFile] = {
    "tag_list": RemoteFile(
        filename="ram_tag_list.txt", url=OFFICIAL_RAW + "ram_tag_list.txt",
        sha256="5d96d2f7225527480ad773aaac76b6e5c08a18adf6eae9ca7d2ab923d5e7bd8b",
        description="RAM/RAM++ English tag list"),
    "tag_list_chinese": RemoteFile(
        filename="ram_tag_list_chinese.txt", url=OFFICIAL_RAW + "ram_tag_list_chinese.txt",
        sha256="c912657a0f30be7b2f5df6ccffa17e1d84561d0bea508528e38b6d0d711bcfbe",
        description="RAM/RAM++ Chinese tag list"),
    "tag_list_threshold": RemoteFile(
        filename="ram_tag_list_threshold.txt", url=OFFICIAL_RAW + "ram_tag_list_threshold.txt",
        sha256="b6f81d0de1bc7f9c251af512c413eae976c77dbfbadf700d4e3d90510f4c6447",
        description="RAM/RAM++ per-class thresholds"),
}
