"""PSALM at sizes the parity fixture does not contain.

What these tests show: the implementation builds, takes official-layout weights strictly (fused Phi attention,
official module names) and runs every task at other sizes and options than fixture A's: S=224 (res5 is 7x7, the
projector's stride-2 conv makes a 4x4 token grid), Swin window 5, 4 decoder layers (the 4th attends to the first
level again), CONVS_DIM != HIDDEN_DIM (the decoder's input projections exist), PRE_NORM and SEG_NORM. What they do
not show: that the numbers equal the official code's at these sizes (the hidden second fixture checks that).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from grounding.psalm.config import PSALMConfig, config_from_official
from grounding.psalm.loading import load_official_weights
from grounding.psalm.model import PSALMModel
from grounding.psalm.predictor import PSALMPredictor
from grounding.psalm.tokenizer import byte_tokenizer

SIZES = dict(image_size=224, swin_embed_dim=16, swin_depths=(2, 2, 4, 2), swin_num_heads=(2, 2, 4, 4),
             swin_window_size=5, projector_width=48, vocab_size=259, hidden_size=48, intermediate_size=128,
             num_hidden_layers=3, num_attention_heads=4, hidden_dim=96, conv_dim=64, mask_dim=96, num_queries=6,
             num_heads=4, dim_feedforward=96, decoder_layers=4, encoder_layers=1, pre_norm=True, seg_norm=True)


def official_layout(sd: dict, heads: int) -> dict:
    """This model's weights under the official names (written independently of convert.py: per head [q; k; v])."""
    out = {}
    for k, v in sd.items():
        proj = k.split(".")[-2] if "." in k else ""
        if k.startswith("language_model.") and proj in ("q_proj", "k_proj", "v_proj"):
            if proj != "q_proj":
                continue
            parts = [sd[k.replace("q_proj", n)] for n in ("q_proj", "k_proj", "v_proj")]
            per_head = torch.stack([p.reshape(heads, -1, *p.shape[1:]) for p in parts], 1)  # [heads, 3, hd, ...]
            out[k.replace("language_model.", "model.").replace("q_proj", "query_key_value")] = per_head.reshape(
                -1, *parts[0].shape[1:])
        elif k.startswith("language_model."):
            out["model." + k[len("language_model."):]] = v
        elif k.startswith(("vision_tower.", "mm_projector.")):
            out["model." + k] = v
        else:
            out[k] = v
    out["lm_head.weight"] = torch.zeros(sd["language_model.embed_tokens.weight"].shape)
    out["predictor.query_feat.weight"] = torch.zeros(6, 96)
    out["predictor.SEG_query_embed.weight"] = torch.zeros(7, 96)
    return out


@pytest.fixture(scope="module")
def predictor():
    torch.manual_seed(3)
    source = PSALMModel(config=PSALMConfig(**SIZES))
    with torch.no_grad():
        source.seg_query.normal_()
    target = PSALMModel(config=PSALMConfig(**SIZES))
    load_official_weights(target, official_layout(source.state_dict(), heads=4), source="official layout")
    for (name, a), b in zip(source.state_dict().items(), target.state_dict().values()):
        assert torch.equal(a, b), name
    return PSALMPredictor(model=target, tokenizer=byte_tokenizer())


def test_official_config_with_other_sizes_maps_to_them():
    llava = {"vocab_size": 259, "hidden_size": 48, "intermediate_size": 128, "num_hidden_layers": 3,
             "num_attention_heads": 4, "mm_input_embeds": 128, "projector_outdim": 48, "swin_type": "base"}
    mask_cfg = {"INPUT": {"IMAGE_SIZE": 224}, "MODEL": {
        "SEM_SEG_HEAD": {"CONVS_DIM": 64, "MASK_DIM": 96, "TRANSFORMER_ENC_LAYERS": 1},
        "MASK_FORMER": {"HIDDEN_DIM": 96, "NUM_OBJECT_QUERIES": 6, "NHEADS": 4, "DIM_FEEDFORWARD": 96,
                        "DEC_LAYERS": 5, "PRE_NORM": True, "SEG_NORM": True}}}
    swin = {"embed_dim": 16, "depths": [2, 2, 4, 2], "num_heads": [2, 2, 4, 4], "window_size": 5}
    assert config_from_official(llava, mask_cfg, swin=swin, projector_width=48) == PSALMConfig(**SIZES)
    with pytest.raises(ValueError, match="FUSE_SCORE"):
        config_from_official(llava, {"MODEL": {"MASK_FORMER": {"FUSE_SCORE": True}}}, swin=swin)
    with pytest.raises(ValueError, match="mm_input_embeds"):
        config_from_official(llava, mask_cfg)  # Swin-B's res5 has 1024 channels, not 128


def test_every_task_runs_at_other_sizes(predictor):
    model = predictor.model
    assert "predictor.input_proj.0.weight" in model.state_dict()  # CONVS_DIM != HIDDEN_DIM
    image = np.random.default_rng(0).integers(0, 256, (150, 97, 3), dtype=np.uint8)
    seen = {}

    def keys(module, args, output):
        seen.setdefault("keys", args[1].shape[0])

    hook = model.predictor.transformer_cross_attention_layers[3].multihead_attn.register_forward_hook(keys)
    predictor.set_image(image)
    assert predictor.current.encoding.image_tokens.shape == (1, 16, 48)
    res = predictor.categories(["cat", "dog", "tree"], mode="instance", max_detections=4)
    hook.remove()
    assert seen["keys"] == 7 * 7  # layer 3 attends to level 0 (stride 32 of 224 px) again
    assert res.masks.shape[1:] == (150, 97) and len(res) <= 4
    assert list(res.scores) == sorted(res.scores, reverse=True)
    pan = predictor.categories(["cat", "dog", "tree"], mode="panoptic", threshold=0.0)
    assert pan.masks.sum(0).max(initial=0) <= 1  # panoptic segments never overlap
    ref = predictor.refer("the dog near the tree", top_k=2)
    assert ref.masks.shape[1:] == (150, 97) and len(ref) <= 2
    boxes = np.array([[5, 5, 60, 90], [40, 100, 90, 145]], np.float32)
    reg = predictor.predict(boxes=boxes)
    assert len(reg) == 2 and list(reg.labels) == [0, 1]
