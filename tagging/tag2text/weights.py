"""Where the official Tag2Text checkpoint, tag list and tokenizer vocabulary come from (metadata only)."""
from __future__ import annotations

from openvocab.hub import RemoteFile

from ..recognize_anything.weights import OFFICIAL_RAW

#: checkpoints by name (``Tag2TextTagger(checkpoint=NAME)``)
CHECKPOINTS: dict[str, RemoteFile] = {
    "tag2text_swin_14m": RemoteFile(
        filename="tag2text_swin_14m.pth",
        hf_repo="xinyu1205/recognize_anything_model",
        # the official README's link (the Hugging Face Space of the demo)
        url="https://huggingface.co/spaces/xinyu1205/Recognize_Anything-Tag2Text/resolve/main/tag2text_swin_14m.pth",
        sha256=None,  # not published where this project could read it
        description="official Tag2Text Swin-B 384 checkpoint (14M images)"),
}

#: the official 3429-tag list (``tag2text_ori_tag_list.txt``; ``tag_list.txt`` is the same file)
TAG_FILES: dict[str, RemoteFile] = {
    "tag_list": RemoteFile(
        filename="tag2text_ori_tag_list.txt", url=OFFICIAL_RAW + "tag2text_ori_tag_list.txt",
        sha256="7d05c7cb88ed46a2aee1434776964f6bdbda0c0f4233c8633e109084382d3a45",
        description="Tag2Text English tag list (3429 tags)"),
}

#: the tokenizer's vocabulary (the official code's ``bert-base-uncased``, plus [DEC] and [ENC] added at load)
VOCAB = RemoteFile(
    filename="bert-base-uncased-vocab.txt",
    hf_repo="google-bert/bert-base-uncased",
    hf_filename="vocab.txt",
    sha256=None,
    description="bert-base-uncased WordPiece vocabulary (30522 tokens)")
