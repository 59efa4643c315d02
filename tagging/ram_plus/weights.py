"""Where the official RAM++ checkpoint and data files come from (metadata only; see openvocab.hub)."""
from __future__ import annotations

from openvocab.hub import RemoteFile

from ..recognize_anything.preprocess import IMAGENET_MEAN, IMAGENET_STD
from ..recognize_anything.weights import TAG_FILES  # noqa: F401  (the RAM++ tag data: shared with RAM)

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
