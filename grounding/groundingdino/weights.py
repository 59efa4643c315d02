"""Weight and vocab metadata for Grounding DINO (data only; resolved in ``setup()``)."""
from __future__ import annotations

from openvocab.hub import RemoteFile

_RELEASES = "https://github.com/IDEA-Research/GroundingDINO/releases/download"

#: ImageNet normalisation used by the official ``load_image``.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
#: Official RandomResize([800], max_size=1333).
INPUT_SHORT = 800
INPUT_MAX = 1333

WEIGHTS: dict[str, RemoteFile] = {
    "groundingdino_swint_ogc": RemoteFile(
        filename="groundingdino_swint_ogc.pth",
        hf_repo="ShilongLiu/GroundingDINO",
        url=f"{_RELEASES}/v0.1.0-alpha/groundingdino_swint_ogc.pth",
        # 693,997,677 bytes; digest as published with the file (Hugging Face LFS pointer of
        # ShilongLiu/GroundingDINO, quoted by several independent downstream projects)
        sha256="3b3ca2563c77c69f651d7bd133e97139c186df06231157a64c507099c52bc799",
        description="official Grounding DINO Swin-T (OGC), {'model': state_dict}, 'module.'-prefixed keys",
    ),
    "groundingdino_swinb_cogcoor": RemoteFile(
        filename="groundingdino_swinb_cogcoor.pth",
        hf_repo="ShilongLiu/GroundingDINO",
        url=f"{_RELEASES}/v0.1.0-alpha2/groundingdino_swinb_cogcoor.pth",
        # 938,057,991 bytes; digest quoted by several independent downstream projects
        sha256="46270f7a822e6906b655b729c90613e48929d0f2bb8b9b76fd10a856f3ac6ab7",
        description="official Grounding DINO Swin-B (COCO+O365+GoldG+Cap4M+OI+RefCOCO), {'model': state_dict}",
    ),
    "grounding-dino-tiny": RemoteFile(
        filename="grounding-dino-tiny.safetensors",  # local name (checkpoint dirs / cache); distinct per model
        hf_repo="IDEA-Research/grounding-dino-tiny",
        hf_filename="model.safetensors",
        sha256=None,
        description="transformers GroundingDinoForObjectDetection (Swin-T) safetensors",
    ),
    "grounding-dino-base": RemoteFile(
        filename="grounding-dino-base.safetensors",  # local name (checkpoint dirs / cache); distinct per model
        hf_repo="IDEA-Research/grounding-dino-base",
        hf_filename="model.safetensors",
        sha256=None,
        description="transformers GroundingDinoForObjectDetection (Swin-B) safetensors",
    ),
    "bert-base-uncased-vocab": RemoteFile(
        filename="bert-base-uncased-vocab.txt",
        hf_repo="google-bert/bert-base-uncased",
        hf_filename="vocab.txt",
        sha256=None,
        description="bert-base-uncased WordPiece vocabulary (30522 tokens)",
    ),
}
