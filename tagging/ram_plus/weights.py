"""Where the official RAM++ checkpoint and data files come from (metadata only; see openvocab.hub)."""
from __future__ import annotations

from openvocab.hub import RemoteFile

from .preprocess import IMAGENET_MEAN, IMAGENET_STD

#: recognize-anything commit the tag-list URLs are pinned to (the sha256s are of these files)
OFFICIAL_COMMIT = "7cb804a8609e9f4b1a50b7f31436d2df40bb9481"
_RAW = f"https://raw.githubusercontent.com/xinyu1205/recognize-anything/{OFFICIAL_COMMIT}/ram/data/"

#: checkpoints by name (``RAMPlusTagger(checkpoint=NAME)``)
CHECKPOINTS: dict[str, RemoteFile] = {
    "ram_plus_swin_large_14m": RemoteFile(
        filename="ram_plus_swin_large_14m.pth",
        hf_repo="xinyu1205/recognize-anything-plus-model",
        # Git LFS oid of the file (HF commit 6afd703f04b23e1c18d4c7d9882c4f5f954848f8, 3010210801 bytes)
        sha256="497c178836ba66698ca226c7895317e6e800034be986452dbd2593298d50e87d",
        description="official RAM++ Swin-L 384 checkpoint (14M images)"),
}

#: model settings of each checkpoint (variant of the build function, preprocessing)
CHECKPOINT_SETTINGS: dict[str, dict] = {
    "ram_plus_swin_large_14m": dict(variant="swin_l_384", image_size=384, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                                    num_classes=4585, descriptions_per_tag=51),
}

#: official tag data (English names, Chinese names, per-class thresholds; 4585 lines each)
TAG_FILES: dict[str, RemoteFile] = {
    "tag_list": RemoteFile(
        filename="ram_tag_list.txt", url=_RAW + "ram_tag_list.txt",
        sha256="5d96d2f7225527480ad773aaac76b6e5c08a18adf6eae9ca7d2ab923d5e7bd8b",
        description="RAM++ English tag list"),
    "tag_list_chinese": RemoteFile(
        filename="ram_tag_list_chinese.txt", url=_RAW + "ram_tag_list_chinese.txt",
        sha256="c912657a0f30be7b2f5df6ccffa17e1d84561d0bea508528e38b6d0d711bcfbe",
        description="RAM++ Chinese tag list"),
    "tag_list_threshold": RemoteFile(
        filename="ram_tag_list_threshold.txt", url=_RAW + "ram_tag_list_threshold.txt",
        sha256="b6f81d0de1bc7f9c251af512c413eae976c77dbfbadf700d4e3d90510f4c6447",
        description="RAM++ per-class thresholds"),
}
