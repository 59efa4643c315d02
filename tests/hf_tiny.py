"""Tiny random ``transformers`` models for the HF backend tests, built offline and saved like hub repositories.

Every builder writes ``config.json``, ``model.safetensors`` and the processor files into a folder, which a
stage then loads by path exactly as it loads a hub snapshot. Tokenizers are built from local vocabularies:
the Grounding DINO fixture's WordPiece vocabulary (it keeps the BERT ids of [CLS], [SEP], "." and "?" that the
model hard-codes), the character-level CLIP BPE files of ``conftest.bpe_files`` and a character-level BART
tokenizer (Florence-2). Weights are random (seeded); a few output layers are rescaled so the tiny models give boxes
and masks of some size, which the writers then exercise.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

_BOS, _EOS = "<|startoftext|>", "<|endoftext|>"


def clip_tokenizer(bpe_files, max_length: int):
    from transformers import CLIPTokenizer

    vocab, merges = bpe_files
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=max_length)


def _clip_text(tok, hidden: int, max_length: int, **extra) -> dict:
    vocab = tok.get_vocab()
    return {**dict(vocab_size=len(vocab), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=1,
                   num_attention_heads=2, max_position_embeddings=max_length, bos_token_id=vocab[_BOS],
                   eos_token_id=vocab[_EOS], pad_token_id=vocab[_EOS]), **extra}


def _save(model, processor, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    model.eval().save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def grounding_dino(folder: Path, vocab_txt: str, *, mm: bool = False, size: int = 64, seed: int = 0) -> Path:
    """Grounding DINO (or MM-Grounding-DINO) with a 2-layer BERT and a tiny Swin."""
    import transformers as hf
    from transformers.models.bert.tokenization_bert import load_vocab

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text(vocab_txt)
    tok = hf.BertTokenizer(vocab=load_vocab(str(folder / "vocab.txt")), do_lower_case=True)
    swin = hf.SwinConfig(embed_dim=16, depths=[1, 1, 2, 1], num_heads=[1, 2, 4, 8], window_size=7,
                         out_features=["stage2", "stage3", "stage4"])
    bert = hf.BertConfig(vocab_size=len(tok.get_vocab()), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64)
    cls = hf.MMGroundingDinoConfig if mm else hf.GroundingDinoConfig
    cfg = cls(backbone_config=swin.to_dict(), text_config=bert.to_dict(), num_queries=20, encoder_layers=1,
              decoder_layers=2, encoder_ffn_dim=64, decoder_ffn_dim=64, encoder_attention_heads=4,
              decoder_attention_heads=4, disable_custom_kernels=True)
    torch.manual_seed(seed)
    model = (hf.MMGroundingDinoForObjectDetection if mm else hf.GroundingDinoForObjectDetection)(cfg)
    with torch.no_grad():  # token probabilities spread over (0, 1) instead of saturating (or, MM, sitting at 0.01)
        scale = 2.0 if mm else 0.05
        model.model.decoder.layer_norm.weight.mul_(scale)
        model.model.decoder.layer_norm.bias.mul_(scale)
        for head in model.model.decoder.class_embed if mm else ():
            head.bias.zero_()
    ip = hf.GroundingDinoImageProcessor(size={"shortest_edge": size, "longest_edge": int(size * 5 / 3)})
    return _save(model, hf.GroundingDinoProcessor(image_processor=ip, tokenizer=tok), folder)


def owl(folder: Path, bpe_files, *, v2: bool = True, size: int = 64, seed: int = 0) -> Path:
    """OWLv2 / OWL-ViT with 1-layer CLIP towers, 16-pixel patches on a ``size`` input."""
    import transformers as hf

    tok = clip_tokenizer(bpe_files, 16)
    text = _clip_text(tok, 32, 16)
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, image_size=size,
                  patch_size=16)
    cfg_cls, model_cls = (hf.Owlv2Config, hf.Owlv2ForObjectDetection) if v2 else (hf.OwlViTConfig,
                                                                                    hf.OwlViTForObjectDetection)
    torch.manual_seed(seed)
    model = model_cls(cfg_cls(text_config=text, vision_config=vision, projection_dim=32))
    with torch.no_grad():  # boxes near their patch priors, not the saturated (zero-size) ones of a fresh head
        model.box_head.dense2.weight.mul_(0.05)
    square = {"height": size, "width": size}
    ip = hf.Owlv2ImageProcessor(size=square) if v2 else hf.OwlViTImageProcessor(size=square, crop_size=square)
    proc = (hf.Owlv2Processor if v2 else hf.OwlViTProcessor)(image_processor=ip, tokenizer=tok)
    return _save(model, proc, folder)


def omdet(folder: Path, bpe_files, *, size: int = 64, seed: int = 0) -> Path:
    """OmDet-Turbo with a transformers Swin backbone (the released model uses timm's) and a 1-layer CLIP text tower."""
    import transformers as hf

    tok = clip_tokenizer(bpe_files, 77)
    swin = hf.SwinConfig(embed_dim=8, depths=[1, 1, 1, 1], num_heads=[1, 1, 2, 2], window_size=7, image_size=size,
                         out_indices=[2, 3, 4])
    # the text width must equal class_embed_dim and differ from the decoder's (transformers' OmDet assumes both)
    cfg = hf.OmDetTurboConfig(backbone_config=swin, text_config=hf.CLIPTextConfig(**_clip_text(tok, 48, 77)),
                              use_timm_backbone=False, apply_layernorm_after_vision_backbone=False, image_size=size,
                              text_projection_in_dim=48, text_projection_out_dim=48, task_encoder_hidden_dim=64,
                              class_embed_dim=48, num_queries=20, encoder_hidden_dim=32,
                              vision_features_channels=[32, 32, 32], encoder_in_channels=[16, 32, 64],
                              encoder_attention_heads=2, encoder_dim_feedforward=32, decoder_hidden_dim=32,
                              decoder_num_heads=2, decoder_num_layers=1, decoder_dim_feedforward=32,
                              disable_custom_kernels=True)
    torch.manual_seed(seed)
    model = hf.OmDetTurboForObjectDetection(cfg)
    ip = hf.DetrImageProcessor(size={"height": size, "width": size}, do_pad=False)
    return _save(model, hf.OmDetTurboProcessor(image_processor=ip, tokenizer=tok), folder)


def sam(folder: Path, kind: str = "sam", *, size: int = 64, seed: int = 0) -> Path:
    """SAM / SAM-HQ (ViT of 2 layers) or SAM 2 (Hiera of 5 blocks) on a ``size`` input."""
    import transformers as hf

    torch.manual_seed(seed)
    decoder = dict(hidden_size=16, mlp_dim=32, num_hidden_layers=1, num_attention_heads=2, iou_head_hidden_dim=16)
    if kind in ("sam", "sam_hq"):
        vit = dict(hidden_size=16, output_channels=16, num_hidden_layers=2, num_attention_heads=2, image_size=size,
                   patch_size=8, window_size=4, global_attn_indexes=[1], mlp_dim=32, num_pos_feats=8)
        prompt = dict(hidden_size=16, image_size=size, patch_size=8, mask_input_channels=4)
        if kind == "sam":
            model = hf.SamModel(hf.SamConfig(vision_config=vit, prompt_encoder_config=prompt,
                                             mask_decoder_config=decoder))
            proc = hf.SamProcessor
        else:
            model = hf.SamHQModel(hf.SamHQConfig(vision_config=vit, prompt_encoder_config=prompt,
                                                 mask_decoder_config=dict(decoder, vit_dim=16)))
            proc = hf.SamHQProcessor
        ip = hf.SamImageProcessor(size={"longest_edge": size}, pad_size={"height": size, "width": size})
        return _save(model, proc(image_processor=ip), folder)
    if kind != "sam2":
        raise ValueError(kind)
    g = size // 4
    hiera = hf.Sam2HieraDetConfig(hidden_size=8, image_size=[size, size], blocks_per_stage=[1, 1, 2, 1],
                                  embed_dim_per_stage=[8, 16, 32, 64], num_attention_heads_per_stage=[1, 1, 2, 2],
                                  window_size_per_stage=[4, 4, 4, 4], global_attention_blocks=[3],
                                  window_positional_embedding_background_size=[2, 2])
    vision = hf.Sam2VisionConfig(backbone_config=hiera, backbone_channel_list=[64, 32, 16, 8], fpn_hidden_size=16,
                                 backbone_feature_sizes=[[g, g], [g // 2, g // 2], [g // 4, g // 4]])
    model = hf.Sam2Model(hf.Sam2Config(vision_config=vision, mask_decoder_config=decoder,
                                       prompt_encoder_config=dict(hidden_size=16, image_size=size, patch_size=16,
                                                                  mask_input_channels=4)))
    ip = hf.Sam2ImageProcessor(size={"height": size, "width": size}, mask_size={"height": g, "width": g})
    return _save(model, hf.Sam2Processor(image_processor=ip), folder)


def sam3(folder: Path, bpe_files, *, seed: int = 0) -> Path:
    """SAM 3: a 2-layer ViT on a 56-pixel input (4 x 4 patches of 14), 1-layer DETR, 1-layer CLIP text tower."""
    import transformers as hf

    tok = clip_tokenizer(bpe_files, 32)
    size, g = 56, 4
    vit = dict(model_type="sam3_vit_model", hidden_size=32, intermediate_size=64, num_hidden_layers=2,
               num_attention_heads=2, image_size=size, patch_size=14, window_size=2, global_attn_indexes=[1],
               pretrain_image_size=size)
    small = dict(hidden_size=32, num_layers=1, num_attention_heads=2, intermediate_size=64)
    cfg = hf.Sam3Config(vision_config=dict(backbone_config=vit, fpn_hidden_size=32,
                                           backbone_feature_sizes=[[4 * g, 4 * g], [2 * g, 2 * g], [g, g]]),
                        text_config=_clip_text(tok, 32, 32, projection_dim=32), geometry_encoder_config=small,
                        detr_encoder_config=small, detr_decoder_config=dict(small, num_queries=10),
                        mask_decoder_config=dict(hidden_size=32, num_attention_heads=2, num_upsampling_stages=2))
    torch.manual_seed(seed)
    model = hf.Sam3Model(cfg)
    ip = hf.Sam3ImageProcessor(size={"height": size, "width": size}, mask_size={"height": 4 * g, "width": 4 * g})
    return _save(model, hf.Sam3Processor(image_processor=ip, tokenizer=tok), folder)


def clipseg(folder: Path, bpe_files, *, size: int = 64, seed: int = 0) -> Path:
    """CLIPSeg with 3-layer CLIP towers (the decoder reads all three) on a ``size`` input."""
    import transformers as hf

    tok = clip_tokenizer(bpe_files, 77)
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=2, image_size=size,
                  patch_size=16)
    cfg = hf.CLIPSegConfig(text_config=_clip_text(tok, 32, 77, num_hidden_layers=3), vision_config=vision,
                           projection_dim=32, extract_layers=[0, 1, 2], reduce_dim=16, decoder_intermediate_size=32,
                           decoder_num_attention_heads=2)
    torch.manual_seed(seed)
    model = hf.CLIPSegForImageSegmentation(cfg)
    ip = hf.ViTImageProcessor(size={"height": size, "width": size}, image_mean=[0.485, 0.456, 0.406],
                              image_std=[0.229, 0.224, 0.225])
    return _save(model, hf.CLIPSegProcessor(image_processor=ip, tokenizer=tok), folder)


def bart_char_tokenizer(**extra):
    """A BART (byte-level BPE) tokenizer with no merges: BART's four special tokens at their ids (<s> 0, <pad> 1,
    </s> 2, <unk> 3), then one token per byte, then <mask>."""
    import transformers as hf
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    vocab = {t: i for i, t in enumerate(("<s>", "<pad>", "</s>", "<unk>"))}
    for c in bytes_to_unicode().values():
        vocab.setdefault(c, len(vocab))
    vocab["<mask>"] = len(vocab)
    return hf.BartTokenizer(vocab=vocab, merges=[], **extra)


def florence2(folder: Path, *, size: int = 32, seed: int = 2) -> Path:
    """Florence-2: a 2-stage DaViT (strides 4, 2: a ``size / 8`` grid + 1 pooled token) and a 1-layer BART, with
    the generation settings the published checkpoints carry. Weights are drawn wider than transformers' init (std
    0.5) so captions depend on the image, and the end token's embedding is scaled so some captions end early: a
    batch then holds rows padded after their end."""
    import transformers as hf

    tok = bart_char_tokenizer(extra_special_tokens={"image_token": "<image>"})
    text = dict(model_type="bart", vocab_size=len(tok), d_model=32, encoder_layers=1, decoder_layers=1,
                encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64,
                max_position_embeddings=128, bos_token_id=0, pad_token_id=1, eos_token_id=2, decoder_start_token_id=2,
                forced_eos_token_id=2, init_std=0.5)
    vision = dict(depths=[1, 1], patch_size=[7, 3], patch_stride=[4, 2], patch_padding=[3, 1],
                  patch_prenorm=[False, True], embed_dim=[16, 32], num_heads=[1, 2], num_groups=[1, 2], window_size=2,
                  projection_dim=32, max_position_embeddings=8, drop_path_rate=0.0, initializer_range=0.5)
    torch.manual_seed(seed)
    model = hf.Florence2ForConditionalGeneration(hf.Florence2Config(text_config=text, vision_config=vision,
                                                                    image_token_id=tok.image_token_id))
    with torch.no_grad():
        model.model.language_model.shared.weight[2].mul_(2.0)  # tied with the LM head: </s> twice as likely
    model.generation_config = hf.GenerationConfig(bos_token_id=0, decoder_start_token_id=2, eos_token_id=2,
                                                  pad_token_id=1, forced_bos_token_id=0, forced_eos_token_id=2,
                                                  no_repeat_ngram_size=3, num_beams=3, early_stopping=True)
    ip = hf.CLIPImageProcessor(size={"height": size, "width": size}, do_center_crop=False,
                               image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225])
    ip.image_seq_length = (size // 8) ** 2 + 1
    parse = {k: {} for k in ("ocr", "phrase_grounding", "pure_text", "description_with_bboxes",
                             "description_with_polygons", "polygons", "bboxes", "description_with_bboxes_or_polygons")}
    return _save(model, hf.Florence2Processor(image_processor=ip, tokenizer=tok, post_processor_config=parse), folder)


def model_type(folder: Path) -> str:
    return json.loads((Path(folder) / "config.json").read_text())["model_type"]
