"""HFDetector on transformers' Grounding DINO and the native GroundingDINODetector give the same boxes and scores on
the shared fixture weights (``gdino_tiny_A_hf.pt`` is fixture A in the transformers layout), on the shared photos,
with a vocabulary that fits one caption and one that is chunked."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from grounding.groundingdino.detector import GroundingDINODetector
from grounding.hf.detector import HFDetector
from openvocab.images import load_image

SIZE = (160, 266)  # (shortest edge, longest edge) of both detectors' resize: small, for speed
SETTINGS = dict(box_threshold=0.0, text_threshold=0.0, nms_iou=0.5, max_detections=1000)


@pytest.fixture(scope="module")
def weights(parity_dir, tmp_path_factory):
    """The fixture as a transformers model folder (config, safetensors, tokenizer, processor)."""
    import transformers as hf
    from safetensors.torch import save_file
    from transformers.models.bert.tokenization_bert import load_vocab

    d = tmp_path_factory.mktemp("gdino_a_hf")
    fix = torch.load(parity_dir / "grounding_dino" / "gdino_tiny_A_hf.pt", weights_only=True)
    vocab = torch.load(parity_dir / "grounding_dino" / "gdino_tiny_A.pt", weights_only=True)["vocab_txt"]
    meta = json.loads(fix["meta_json"])["hf_config"]
    keep = ("backbone_config", "text_config", "num_queries", "encoder_layers", "decoder_layers", "encoder_ffn_dim",
            "decoder_ffn_dim", "encoder_attention_heads", "decoder_attention_heads", "d_model", "max_text_len")
    hf.GroundingDinoConfig(**{k: meta[k] for k in keep}, disable_custom_kernels=True).save_pretrained(d)
    save_file({k: v.detach().clone().contiguous() for k, v in fix["state_dict"].items()}, str(d / "model.safetensors"),
              metadata={"format": "pt"})
    (d / "vocab.txt").write_text(vocab)
    tok = hf.BertTokenizer(vocab=load_vocab(str(d / "vocab.txt")), do_lower_case=True)
    ip = hf.GroundingDinoImageProcessor(size={"shortest_edge": SIZE[0], "longest_edge": SIZE[1]})
    hf.GroundingDinoProcessor(image_processor=ip, tokenizer=tok).save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def photos(shared_dir):
    return [load_image(p)[0] for p in sorted((shared_dir / "images").glob("*.jpg"))]


def test_hf_backend_matches_native_detector(weights, photos):
    torch.set_num_threads(2)
    native = GroundingDINODetector(variant="tiny", checkpoint=str(weights / "model.safetensors"),
                                   vocab=str(weights / "vocab.txt"), resize=SIZE, **SETTINGS)
    native.setup("cpu")
    ours = HFDetector(model=str(weights), processor_backend="pil", **SETTINGS)  # PIL: the official resize
    ours.setup("cpu")
    colours, things = ["red", "green", "blue", "white", "small"], ["cat", "dog", "car", "horse", "tree", "bird", "cup"]
    long = [f"{a} {b} {t}" for a in colours for b in colours if a != b for t in things][:90]  # fixture-vocab words
    assert len(native.chunker(long)) == 2  # 90 x 4 tokens: two captions under the 256-token limit
    vocabularies = [["cat", "dog", "red car"], ["a person riding a horse", "tree", "horse"], long]
    tags = [vocabularies[i % 3] for i in range(len(photos))] + [long]
    images = photos + photos[-1:]
    a, b = native.detect(images, tags), ours.detect(images, tags)
    compared = 0
    for image, x, y in zip(images, a, b):
        h, w = image.shape[:2]
        assert x.labels == y.labels and len(x) > 0
        np.testing.assert_allclose(y.boxes / [w, h, w, h], x.boxes / [w, h, w, h], atol=1e-4, rtol=0)
        np.testing.assert_allclose(y.scores, x.scores, atol=1e-4, rtol=0)
        compared += len(x)
    assert compared >= 4 * 20
