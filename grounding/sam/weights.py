"""Where the official SAM checkpoints come from, and the constants of the official models (data).

The three checkpoints are plain ``state_dict`` files (``torch.save`` of an ``OrderedDict`` of
tensors) whose keys are exactly those of :class:`segment_anything.modeling.Sam`, so they load
with ``weights_only=True`` and need no conversion. Meta publishes no digests; the sha256 values
below are the ones independent downloaders verify against (e.g. ``micro-sam``'s
``micro_sam/util.py``), found identical across many projects.
"""
from __future__ import annotations

from openvocab.hub import RemoteFile

BASE_URL = "https://dl.fbaipublicfiles.com/segment_anything"

#: input normalisation of every official model, RGB order, 0..255 pixels
PIXEL_MEAN_RGB = (123.675, 116.28, 103.53)
PIXEL_STD_RGB = (58.395, 57.12, 57.375)
#: padded square input size (longest side resized to this) of the official models
INPUT_SIZE = 1024

_FILES = {  # name: (variant, sha256, approximate size)
    "sam_vit_h_4b8939": ("vit_h", "a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e",
                         "2.4 GB"),
    "sam_vit_l_0b3195": ("vit_l", "3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622",
                         "1.2 GB"),
    "sam_vit_b_01ec64": ("vit_b", "ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912",
                         "375 MB"),
}

CHECKPOINTS: dict[str, RemoteFile] = {
    name: RemoteFile(filename=f"{name}.pth", url=f"{BASE_URL}/{name}.pth", sha256=sha,
                     description=f"Segment Anything ViT-{variant[-1].upper()} weights "
                                 f"({size}, RGB input, {INPUT_SIZE}px)")
    for name, (variant, sha, size) in _FILES.items()
}

#: checkpoint name -> build variant
CHECKPOINT_VARIANT: dict[str, str] = {name: variant for name, (variant, _, _) in _FILES.items()}
