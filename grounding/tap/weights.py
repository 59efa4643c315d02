"""Where the official TAP files come from (data, not code).

Checkpoints and concept matrices live on the Hugging Face hub (``BAAI/tokenize-anything``); the
caption tokenizer ships inside the official GitHub repository. sha256 digests are not published
for any of them, so they are ``None`` (never invented).
"""
from __future__ import annotations

from openvocab.hub import RemoteFile

HF_REPO = "BAAI/tokenize-anything"
GITHUB_RAW = "https://raw.githubusercontent.com/baaivision/tokenize-anything/main"

#: input normalisation of every official model, in BGR order (the model consumes BGR)
PIXEL_MEAN_BGR = (103.53, 116.28, 123.675)
PIXEL_STD_BGR = (57.375, 57.12, 58.395)
#: padded square input size of the official models
INPUT_SIZE = 1024

CHECKPOINTS: dict[str, RemoteFile] = {
    f"tap_vit_{v}_v1_1": RemoteFile(
        filename=f"tap_vit_{v}_v1_1.pkl", hf_repo=HF_REPO, hf_filename=f"models/tap_vit_{v}_v1_1.pkl",
        sha256=None,
        description=f"TAP ViT-{v.upper()} v1.1 weights (pickle of numpy arrays, BGR input, "
                    f"{INPUT_SIZE}px)")
    for v in ("b", "l", "h")
}

#: checkpoint name -> build variant
CHECKPOINT_VARIANT = {"tap_vit_b_v1_1": "vit_b", "tap_vit_l_v1_1": "vit_l", "tap_vit_h_v1_1": "vit_h"}

CONCEPTS: dict[str, RemoteFile] = {
    name: RemoteFile(
        filename=f"{name}.pkl", hf_repo=HF_REPO, hf_filename=f"concepts/{name}.pkl", sha256=None,
        description=f"TAP concept matrix {name} ([1024 x C] EVA-CLIP text embeddings of 'a {{}}' "
                    "times exp(logit_scale), and C names)")
    for name in ("merged_2560", "lvis_1203", "coco_80")
}

TOKENIZER = RemoteFile(
    filename="text_tokenizer.model",
    url=f"{GITHUB_RAW}/tokenize_anything/modeling/text_tokenizer.model",
    sha256=None,
    description="TAP caption tokenizer (LLaMA SentencePiece, 32000 pieces)")
