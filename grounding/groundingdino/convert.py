"""Pure state-dict converters: official .pth -> ours, HF transformers layout <-> ours."""
from __future__ import annotations

import re

import torch

_DROP = ("label_enc.weight", "bert.embeddings.position_ids")


def convert_state_dict(sd: dict) -> dict:
    """Official checkpoint (``{'model': sd}`` or sd, optional ``module.`` prefix) -> our keys.

    Our layout differs only in ``backbone.0.`` -> ``backbone.``; unused ``label_enc``, the BERT pooler
    (its output is never used) and old ``position_ids`` buffers are dropped."""
    if "model" in sd and isinstance(sd["model"], dict):
        sd = sd["model"]
    out = {}
    for k, v in sd.items():
        if k.startswith("module."):
            k = k[len("module."):]
        if k in _DROP or k.startswith("bert.pooler."):
            continue
        if k.startswith("backbone.0."):
            k = "backbone." + k[len("backbone.0."):]
        out[k] = v
    return out


_S = "model.backbone.conv_encoder.model."
_E = "model.encoder.layers.{i}."
_D = "model.decoder.layers.{i}."
# (HF template, our template); {i}/{j} are integers, {x} is the rest of the key, {q} query|key|value
_RULES: list[tuple[str, str]] = [
    ("model.level_embed", "transformer.level_embed"),
    (_S + "embeddings.patch_embeddings.projection.{x}", "backbone.patch_embed.proj.{x}"),
    (_S + "embeddings.norm.{x}", "backbone.patch_embed.norm.{x}"),
    (_S + "encoder.layers.{i}.blocks.{j}.layernorm_before.{x}", "backbone.layers.{i}.blocks.{j}.norm1.{x}"),
    (_S + "encoder.layers.{i}.blocks.{j}.layernorm_after.{x}", "backbone.layers.{i}.blocks.{j}.norm2.{x}"),
    (_S + "encoder.layers.{i}.blocks.{j}.attention.self.relative_position_bias_table",
     "backbone.layers.{i}.blocks.{j}.attn.relative_position_bias_table"),
    (_S + "encoder.layers.{i}.blocks.{j}.attention.self.relative_position_index",
     "backbone.layers.{i}.blocks.{j}.attn.relative_position_index"),
    (_S + "encoder.layers.{i}.blocks.{j}.attention.self.{q}.{x}", "backbone.layers.{i}.blocks.{j}.attn.qkv.{q}.{x}"),
    (_S + "encoder.layers.{i}.blocks.{j}.attention.output.dense.{x}", "backbone.layers.{i}.blocks.{j}.attn.proj.{x}"),
    (_S + "encoder.layers.{i}.blocks.{j}.intermediate.dense.{x}", "backbone.layers.{i}.blocks.{j}.mlp.fc1.{x}"),
    (_S + "encoder.layers.{i}.blocks.{j}.output.dense.{x}", "backbone.layers.{i}.blocks.{j}.mlp.fc2.{x}"),
    (_S + "encoder.layers.{i}.downsample.{x}", "backbone.layers.{i}.downsample.{x}"),
    (_S + "hidden_states_norms.stage2.{x}", "backbone.norm1.{x}"),
    (_S + "hidden_states_norms.stage3.{x}", "backbone.norm2.{x}"),
    (_S + "hidden_states_norms.stage4.{x}", "backbone.norm3.{x}"),
    ("model.input_proj_vision.{x}", "input_proj.{x}"),
    ("model.text_backbone.{x}", "bert.{x}"),
    ("model.text_projection.{x}", "feat_map.{x}"),
    ("model.query_position_embeddings.{x}", "transformer.tgt_embed.{x}"),
    (_E + "text_enhancer_layer.self_attn.{q}.{x}", "transformer.encoder.text_layers.{i}.self_attn.in_proj.{q}.{x}"),
    (_E + "text_enhancer_layer.self_attn.out_proj.{x}", "transformer.encoder.text_layers.{i}.self_attn.out_proj.{x}"),
    (_E + "text_enhancer_layer.fc1.{x}", "transformer.encoder.text_layers.{i}.linear1.{x}"),
    (_E + "text_enhancer_layer.fc2.{x}", "transformer.encoder.text_layers.{i}.linear2.{x}"),
    (_E + "text_enhancer_layer.layer_norm_before.{x}", "transformer.encoder.text_layers.{i}.norm1.{x}"),
    (_E + "text_enhancer_layer.layer_norm_after.{x}", "transformer.encoder.text_layers.{i}.norm2.{x}"),
    (_E + "fusion_layer.vision_param", "transformer.encoder.fusion_layers.{i}.gamma_v"),
    (_E + "fusion_layer.text_param", "transformer.encoder.fusion_layers.{i}.gamma_l"),
    (_E + "fusion_layer.layer_norm_vision.{x}", "transformer.encoder.fusion_layers.{i}.layer_norm_v.{x}"),
    (_E + "fusion_layer.layer_norm_text.{x}", "transformer.encoder.fusion_layers.{i}.layer_norm_l.{x}"),
    (_E + "fusion_layer.attn.vision_proj.{x}", "transformer.encoder.fusion_layers.{i}.attn.v_proj.{x}"),
    (_E + "fusion_layer.attn.text_proj.{x}", "transformer.encoder.fusion_layers.{i}.attn.l_proj.{x}"),
    (_E + "fusion_layer.attn.values_vision_proj.{x}", "transformer.encoder.fusion_layers.{i}.attn.values_v_proj.{x}"),
    (_E + "fusion_layer.attn.values_text_proj.{x}", "transformer.encoder.fusion_layers.{i}.attn.values_l_proj.{x}"),
    (_E + "fusion_layer.attn.out_vision_proj.{x}", "transformer.encoder.fusion_layers.{i}.attn.out_v_proj.{x}"),
    (_E + "fusion_layer.attn.out_text_proj.{x}", "transformer.encoder.fusion_layers.{i}.attn.out_l_proj.{x}"),
    (_E + "deformable_layer.self_attn.{x}", "transformer.encoder.layers.{i}.self_attn.{x}"),
    (_E + "deformable_layer.self_attn_layer_norm.{x}", "transformer.encoder.layers.{i}.norm1.{x}"),
    (_E + "deformable_layer.fc1.{x}", "transformer.encoder.layers.{i}.linear1.{x}"),
    (_E + "deformable_layer.fc2.{x}", "transformer.encoder.layers.{i}.linear2.{x}"),
    (_E + "deformable_layer.final_layer_norm.{x}", "transformer.encoder.layers.{i}.norm2.{x}"),
    ("model.decoder.layer_norm.{x}", "transformer.decoder.norm.{x}"),
    ("model.decoder.reference_points_head.{x}", "transformer.decoder.ref_point_head.{x}"),
    ("model.decoder.bbox_embed.{x}", "transformer.decoder.bbox_embed.{x}"),
    (_D + "self_attn.{q}.{x}", "transformer.decoder.layers.{i}.self_attn.in_proj.{q}.{x}"),
    (_D + "self_attn.out_proj.{x}", "transformer.decoder.layers.{i}.self_attn.out_proj.{x}"),
    (_D + "self_attn_layer_norm.{x}", "transformer.decoder.layers.{i}.norm2.{x}"),
    (_D + "encoder_attn_text.{q}.{x}", "transformer.decoder.layers.{i}.ca_text.in_proj.{q}.{x}"),
    (_D + "encoder_attn_text.out_proj.{x}", "transformer.decoder.layers.{i}.ca_text.out_proj.{x}"),
    (_D + "encoder_attn_text_layer_norm.{x}", "transformer.decoder.layers.{i}.catext_norm.{x}"),
    (_D + "encoder_attn_layer_norm.{x}", "transformer.decoder.layers.{i}.norm1.{x}"),
    (_D + "encoder_attn.{x}", "transformer.decoder.layers.{i}.cross_attn.{x}"),
    (_D + "fc1.{x}", "transformer.decoder.layers.{i}.linear1.{x}"),
    (_D + "fc2.{x}", "transformer.decoder.layers.{i}.linear2.{x}"),
    (_D + "final_layer_norm.{x}", "transformer.decoder.layers.{i}.norm3.{x}"),
    ("model.enc_output_norm.{x}", "transformer.enc_output_norm.{x}"),
    ("model.enc_output.{x}", "transformer.enc_output.{x}"),
    ("model.encoder_output_bbox_embed.{x}", "transformer.enc_out_bbox_embed.{x}"),
    ("bbox_embed.{x}", "bbox_embed.{x}"),
]
_FIELDS = {"i": r"(?P<i>\d+)", "j": r"(?P<j>\d+)", "x": r"(?P<x>.+)", "q": r"(?P<q>query|key|value)"}


def _regex(template: str) -> re.Pattern:
    parts = re.split(r"\{(\w)\}", template)
    return re.compile("".join(re.escape(p) if n % 2 == 0 else _FIELDS[p] for n, p in enumerate(parts)))


_COMPILED = [(_regex(h), h, _regex(o), o) for h, o in _RULES]
_FUSED = re.compile(r"(?P<p>.*)\.(?P<kind>qkv|in_proj)\.(?P<q>query|key|value)\.(?P<wb>weight|bias)")


def _rename(key: str, forward: bool) -> str:
    for hf_re, hf_t, our_re, our_t in _COMPILED:
        m = (hf_re if forward else our_re).fullmatch(key)
        if m:
            return (our_t if forward else hf_t).format(**m.groupdict())
    raise ValueError(f"unexpected key {key!r} in {'HF' if forward else 'our'} Grounding DINO state dict")


def is_hf_state_dict(sd: dict) -> bool:
    """True for the transformers ``GroundingDinoForObjectDetection`` layout."""
    return any(k.startswith("model.") for k in sd)


def convert_hf_state_dict(sd: dict) -> dict:
    """transformers ``GroundingDinoForObjectDetection`` state dict -> our keys (q/k/v fused; an old file's
    BERT ``position_ids`` buffer / pooler are dropped as in :func:`convert_state_dict`)."""
    out, parts = {}, {}
    for k, v in sd.items():
        new = _rename(k, True)
        if new in _DROP or new.startswith("bert.pooler."):
            continue
        m = _FUSED.fullmatch(new)
        if m:
            parts.setdefault((m["p"], m["kind"], m["wb"]), {})[m["q"]] = v
        else:
            out[new] = v
    for (prefix, kind, wb), d in parts.items():
        if set(d) != {"query", "key", "value"}:
            raise ValueError(f"incomplete query/key/value for {prefix}")
        fused = torch.cat([d["query"], d["key"], d["value"]], 0)
        out[f"{prefix}.qkv.{wb}" if kind == "qkv" else f"{prefix}.in_proj_{wb}"] = fused
    return _fill_tied_box_heads(out)


def _fill_tied_box_heads(sd: dict) -> dict:
    """Files saved with de-duplicated shared tensors keep one copy of the tied box heads
    (``bbox_embed.N`` == ``transformer.decoder.bbox_embed.N`` for all N): restore the other names."""
    pat = re.compile(r"(?:transformer\.decoder\.)?bbox_embed\.(\d+)\.(layers\..*)")
    tied: dict[str, torch.Tensor] = {}
    layers: list[int] = []
    for k, v in sd.items():
        m = pat.fullmatch(k)
        if m:
            tied.setdefault(m.group(2), v)
            layers.append(int(m.group(1)))
    if not tied:
        return sd
    out = dict(sd)
    dec = [int(m.group(1)) for k in sd if (m := re.match(r"transformer\.decoder\.layers\.(\d+)\.", k))]
    for n in range(max(layers + dec) + 1 if dec else max(layers) + 1):
        for suffix, v in tied.items():
            for prefix in ("bbox_embed.", "transformer.decoder.bbox_embed."):
                out.setdefault(f"{prefix}{n}.{suffix}", v)
    return out


def to_hf_state_dict(sd: dict) -> dict:
    """Our state dict -> transformers layout (inverse of :func:`convert_hf_state_dict`)."""
    out = {}
    for k, v in sd.items():
        m = re.fullmatch(r"(.*)\.(qkv)\.(weight|bias)", k) or re.fullmatch(r"(.*)\.(in_proj)_(weight|bias)", k)
        if m:
            for name, t in zip(("query", "key", "value"), v.chunk(3, 0)):
                out[_rename(f"{m.group(1)}.{m.group(2)}.{name}.{m.group(3)}", False)] = t
        else:
            out[_rename(k, False)] = v
    return out
