"""Where PSALM's weights come from (data, not code).

The release is one Hugging Face model repository: ``config.json`` (``model_type`` ``llava_phi``), the tokenizer
files (Phi-1.5's plus ``[PAD]`` and ``[SEG]``) and sharded safetensors with ``model.safetensors.index.json``.
No sha256 digests are published, so none are checked (never invented); the files are found and cached by
:func:`openvocab.hub.resolve_repo` like every transformers model of the project.
"""
from __future__ import annotations

from openvocab.hub import RemoteRepo

HF_REPO = "EnmingZhang/PSALM"
#: the GitHub repository of the official code (its LICENSE file, read at commit d5dbfda, is Apache-2.0)
CODE_REPO = "https://github.com/zamling/PSALM"
#: as published: the code's licence; the model card on the hub could not be read here, so it is not verified
LICENCE = "Apache-2.0 (the code repository's LICENSE; the model card could not be checked)"

CHECKPOINTS: dict[str, RemoteRepo] = {
    HF_REPO: RemoteRepo(repo=HF_REPO, description="PSALM (Phi-1.5 + Swin-B + Mask2Former decoder, 1024 px): "
                                                  "config.json, tokenizer, sharded safetensors"),
}
