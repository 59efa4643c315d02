"""Tiny random ``transformers`` models for the label-by-example tests, saved like hub repositories (``hf_tiny``'s
way): SegGPT and the region encoders (DINOv2, CLIP). OWL, CLIPSeg and SAM 3 come from ``hf_tiny``. A few output
layers are rescaled so the tiny models paint masks of some size."""
from __future__ import annotations

from pathlib import Path

import torch

import hf_tiny


def seggpt(folder: Path, *, size: int = 32, seed: int = 0) -> Path:
    """SegGPT: a 4-layer ViT on a ``size`` x ``size`` target (the model sees the prompt above it: 2 x size high)."""
    import transformers as hf

    cfg = hf.SegGptConfig(hidden_size=32, num_hidden_layers=4, num_attention_heads=2, image_size=[2 * size, size],
                          patch_size=8, mlp_dim=64, pretrain_image_size=size, decoder_hidden_size=16, merge_index=0,
                          intermediate_hidden_state_indices=[1, 3], drop_path_rate=0.0)
    torch.manual_seed(seed)
    model = hf.SegGptForImageSegmentation(cfg)
    ip = hf.SegGptImageProcessor(size={"height": size, "width": size})
    mean, std = torch.tensor(ip.image_mean), torch.tensor(ip.image_std)
    with torch.no_grad():  # one grey value per pixel around mid-grey: some pixels paint white (the class), some black
        head = model.decoder.decoder_pred.head
        head.weight.copy_(head.weight[:1].repeat(3, 1, 1, 1) * 4.0 / std.reshape(3, 1, 1, 1))
        head.bias.copy_((0.5 - mean) / std)
    return hf_tiny._save(model, ip, folder)


def dinov2(folder: Path, *, size: int = 32, seed: int = 0) -> Path:
    """DINOv2: 2 layers, 8-pixel patches, and its image processor (BitImageProcessor) at ``size``."""
    import transformers as hf

    torch.manual_seed(seed)
    model = hf.Dinov2Model(hf.Dinov2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                           intermediate_size=64, image_size=size, patch_size=8))
    ip = hf.BitImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size},
                              image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225])
    return hf_tiny._save(model, ip, folder)


def clip(folder: Path, bpe_files, *, size: int = 32, seed: int = 0) -> Path:
    """CLIP (both towers, 1 layer each) with its processor: ``get_image_features`` gives the region embeddings."""
    import transformers as hf

    tok = hf_tiny.clip_tokenizer(bpe_files, 16)
    torch.manual_seed(seed)
    model = hf.CLIPModel(hf.CLIPConfig(text_config=hf_tiny._clip_text(tok, 32, 16),
                                       vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                                          num_attention_heads=2, image_size=size, patch_size=8),
                                       projection_dim=16))
    ip = hf.CLIPImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size})
    return hf_tiny._save(model, hf.CLIPProcessor(image_processor=ip, tokenizer=tok), folder)


def models(root: Path, bpe_files) -> dict[str, Path]:
    """Every tiny model the exemplar stages use: name -> folder."""
    return {"owlv2": hf_tiny.owl(root / "owlv2", bpe_files), "owlvit": hf_tiny.owl(root / "owlvit", bpe_files, v2=False),
            "clipseg": hf_tiny.clipseg(root / "clipseg", bpe_files), "sam3": hf_tiny.sam3(root / "sam3", bpe_files),
            "sam": hf_tiny.sam(root / "sam", "sam"), "seggpt": seggpt(root / "seggpt"),
            "dinov2": dinov2(root / "dinov2"), "clip": clip(root / "clip", bpe_files)}
