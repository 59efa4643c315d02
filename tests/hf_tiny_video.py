"""Tiny random ``transformers`` video models (SAM 2 video, SAM 3 video, SAM 3's tracker), built offline from small
configs and saved like hub repositories (config, weights, processor files), as ``hf_tiny`` does for the image
models. The object-score head is biased so the tiny trackers say "object present" (random weights would hide every
mask), which lets the trackers' outputs reach the writers; the weights are otherwise random (seeded)."""
from __future__ import annotations

from pathlib import Path

import torch

import hf_tiny

#: the memory and pointer history of the tiny trackers (small, so the tests go past it)
NUM_MASKMEM, MAX_POINTERS = 3, 4


def _tracker_kwargs(hidden: int, feat: int) -> dict:
    # SAM 2's memory attention reads 64-channel memories (kv_in_dim=64 in transformers) split from wider pointers
    return dict(num_maskmem=NUM_MASKMEM, max_object_pointers_in_encoder=MAX_POINTERS,
                memory_attention_hidden_size=hidden, memory_attention_num_layers=1,
                memory_attention_feed_forward_hidden_size=32, memory_attention_rope_feat_sizes=[feat, feat],
                memory_encoder_hidden_size=hidden, memory_encoder_output_channels=64,
                mask_downsampler_embed_dim=hidden, memory_fuser_embed_dim=hidden, memory_fuser_intermediate_dim=32)


def _present(model, prefix: str = "") -> None:
    """Bias the object-score head positive: the tiny tracker keeps its objects on screen."""
    head = dict(model.named_modules())[f"{prefix}mask_decoder.pred_obj_score_head"]
    with torch.no_grad():
        head.proj_out.weight.mul_(0.01)
        head.proj_out.bias.fill_(3.0)


def sam2_video(folder: Path, *, size: int = 64, seed: int = 0) -> Path:
    """SAM 2 video model: a 5-block Hiera on a ``size`` input, 128-wide neck, 1-layer memory attention."""
    import transformers as hf

    g, hidden = size // 4, 128
    hiera = hf.Sam2HieraDetConfig(hidden_size=8, image_size=[size, size], blocks_per_stage=[1, 1, 2, 1],
                                  embed_dim_per_stage=[8, 16, 32, 64], num_attention_heads_per_stage=[1, 1, 2, 2],
                                  window_size_per_stage=[4, 4, 4, 4], global_attention_blocks=[3],
                                  window_positional_embedding_background_size=[2, 2])
    vision = hf.Sam2VisionConfig(backbone_config=hiera, backbone_channel_list=[64, 32, 16, 8], fpn_hidden_size=hidden,
                                 backbone_feature_sizes=[[g, g], [g // 2, g // 2], [g // 4, g // 4]])
    cfg = hf.Sam2VideoConfig(
        vision_config=vision, image_size=size,
        mask_decoder_config=dict(hidden_size=hidden, mlp_dim=64, num_hidden_layers=1, num_attention_heads=2,
                                 iou_head_hidden_dim=16),
        prompt_encoder_config=dict(hidden_size=hidden, image_size=size, patch_size=16, mask_input_channels=4),
        **_tracker_kwargs(hidden, g // 4))
    torch.manual_seed(seed)
    model = hf.Sam2VideoModel(cfg)
    _present(model)
    ip = hf.Sam2ImageProcessor(size={"height": size, "width": size}, mask_size={"height": g, "width": g})
    vp = hf.Sam2VideoVideoProcessor(size={"height": size, "width": size})
    return hf_tiny._save(model, hf.Sam2VideoProcessor(image_processor=ip, video_processor=vp), folder)


def sam3_video(folder: Path, bpe_files, *, seed: int = 0) -> Path:
    """SAM 3 video model: the tiny SAM 3 detector of ``hf_tiny.sam3`` (128-wide neck) and a 1-layer tracker."""
    import transformers as hf

    tok = hf_tiny.clip_tokenizer(bpe_files, 32)
    size, g, hidden = 56, 4, 128
    vit = dict(model_type="sam3_vit_model", hidden_size=32, intermediate_size=64, num_hidden_layers=2,
               num_attention_heads=2, image_size=size, patch_size=14, window_size=2, global_attn_indexes=[1],
               pretrain_image_size=size)
    small = dict(hidden_size=hidden, num_layers=1, num_attention_heads=2, intermediate_size=64)
    detector = hf.Sam3Config(
        vision_config=dict(backbone_config=vit, fpn_hidden_size=hidden,
                           backbone_feature_sizes=[[4 * g, 4 * g], [2 * g, 2 * g], [g, g]]),
        text_config=hf_tiny._clip_text(tok, 32, 32, projection_dim=hidden), geometry_encoder_config=small,
        detr_encoder_config=small, detr_decoder_config=dict(small, num_queries=6),
        mask_decoder_config=dict(hidden_size=hidden, num_attention_heads=2, num_upsampling_stages=2))
    tracker = hf.Sam3TrackerVideoConfig(
        vision_config=detector.vision_config.to_dict(),
        mask_decoder_config=dict(hidden_size=hidden, mlp_dim=64, num_hidden_layers=1, num_attention_heads=2,
                                 iou_head_hidden_dim=16),
        prompt_encoder_config=dict(hidden_size=hidden, image_size=size, patch_size=14, mask_input_channels=4),
        **_tracker_kwargs(hidden, g))
    tracker.image_size = size
    cfg = hf.Sam3VideoConfig(detector_config=detector, tracker_config=tracker, low_res_mask_size=16 * g,
                             hotstart_delay=2, hotstart_unmatch_thresh=1, hotstart_dup_thresh=1,
                             score_threshold_detection=0.0, new_det_thresh=0.0, max_num_objects=4)
    torch.manual_seed(seed)
    model = hf.Sam3VideoModel(cfg)
    _present(model, "tracker_model.")
    ip = hf.Sam3ImageProcessor(size={"height": size, "width": size}, mask_size={"height": 4 * g, "width": 4 * g})
    vp = hf.Sam2VideoVideoProcessor(size={"height": size, "width": size})
    return hf_tiny._save(model, hf.Sam3VideoProcessor(image_processor=ip, video_processor=vp, tokenizer=tok), folder)
