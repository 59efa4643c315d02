"""Where the official RAM checkpoint comes from (metadata only; see openvocab.hub).

The tag data (4585 English and Chinese names, per-class thresholds) are the same files as RAM++'s:
:data:`tagging.recognize_anything.weights.TAG_FILES`.
"""
from __future__ import annotations

from openvocab.hub import RemoteFile

from ..recognize_anything.weights import TAG_FILES  # noqa: F401  (RAM's tag data: shared with RAM++)

#: checkpoints by name (``RAMTagger(checkpoint=NAME)``)
CHECKPOINTS: dict[str, RemoteFile] = {
    "ram_swin_large_14m": RemoteFile(
        filename="ram_swin_large_14m.pth",
        hf_repo="xinyu1205/recognize_anything_model",
        # the official README's link (the Hugging Face Space of the demo)
        url="https://huggingface.co/spaces/xinyu1205/Recognize_Anything-Tag2Text/resolve/main/ram_swin_large_14m.pth",
        sha256=None,  # not published where this project could read it
        description="official RAM Swin-L 384 checkpoint (14M images)"),
}
