"""RAM fixture rerun: :class:`tagging.ram.model.RAM` from the fixture's ``config``.

The weights go through :func:`tagging.ram.convert_state_dict` and the strict loader (what users run on the real
``{'model': state_dict}`` file; the fixture's ``checkpoint`` when present). Results mirror the fixture's names:
``outputs`` (``logits``, ``probs``, ``class_threshold``, ``targets_before_delete``, ``targets``, ``tags_en``,
``tags_zh``, ``single`` and ``single_logits``: each image alone), ``openset`` (``logits``, ``probs``, ``tags``,
``single_tags`` from ``openset.label_embed``), ``intermediates`` and ``preprocessed`` (the raw images through
this package's preprocessing).
"""
from __future__ import annotations

from typing import Sequence

import torch

from ..ram.convert import convert_state_dict
from ..ram.model import RAM, model_kwargs_from_official
from ..recognize_anything.loading import load_official
from .common import capture, config_of, difference, intermediate_pairs, model_input, tag_strings, weights_of
from .ram_plus import PREPROCESS_CHECK, thresholded


def _named(model: RAM) -> dict:
    named = {"swin_patch_embed": model.visual_encoder.patch_embed, "visual_encoder_out": model.visual_encoder,
             "image_embeds": model.image_proj, "wordvec_proj_out": model.wordvec_proj,
             "tagging_embed": model.tagging_head}
    for i, layer in enumerate(model.visual_encoder.layers):
        named[f"swin_layer{i}_out"] = layer
    for i, layer in enumerate(model.tagging_head.encoder.layer):
        named[f"tagging_head_layer{i}_crossattn_out"] = layer.crossattention
        named[f"tagging_head_layer{i}_out"] = layer
    return named


def run(fixture: dict) -> tuple[dict, dict]:
    """``(results, captured intermediates)`` of a RAM fixture."""
    cfg = config_of(fixture)
    model = RAM(**model_kwargs_from_official(cfg)).eval()
    load_official(model, convert_state_dict(weights_of(fixture)), source="fixture checkpoint")
    thresholds = torch.tensor(cfg["class_threshold"], dtype=torch.float32)
    delete = [int(i) for i in cfg.get("delete_tag_index", [])]
    names, names_zh = cfg["tag_list"], cfg["tag_list_chinese"]
    prep = cfg.get("preprocess", {})
    image, res = model_input(fixture, model.image_size, prep["mean"], prep["std"])

    def tags(logits: torch.Tensor, labels: Sequence[str], th: torch.Tensor, drop: list[int]) -> list[str]:
        return tag_strings(thresholded(torch.sigmoid(logits), th, drop)[1], labels)

    with torch.no_grad():
        got, hooks = capture(_named(model))
        try:
            emb = model.encode_image(image)
            logits = model.tag_logits(emb)
        finally:
            for h in hooks:
                h.remove()
        got["label_queries"] = torch.relu(got["wordvec_proj_out"])
        probs = torch.sigmoid(logits)
        before, after = thresholded(probs, thresholds, delete)
        single_logits = torch.cat([model.tag_logits(model.encode_image(image[i:i + 1])) for i in range(len(image))])
        res["outputs"] = dict(
            logits=logits, probs=probs, class_threshold=thresholds, targets_before_delete=before, targets=after,
            tags_en=tag_strings(after, names), tags_zh=tag_strings(after, names_zh), single_logits=single_logits,
            single=[dict(tags_en=tags(row[None], names, thresholds, delete)[0],
                         tags_zh=tags(row[None], names_zh, thresholds, delete)[0]) for row in single_logits])
        openset = fixture.get("openset") or {}
        if "label_embed" in openset:
            embed = openset["label_embed"].float()
            categories = list(openset.get("categories") or [f"open{i}" for i in range(embed.shape[0])])
            th = torch.full((embed.shape[0],), float(openset.get("class_threshold", 0.5)))
            open_logits = model.tag_logits(emb, embed)
            single = [model.tag_logits(model.encode_image(image[i:i + 1]), embed) for i in range(len(image))]
            res["openset"] = dict(logits=open_logits, probs=torch.sigmoid(open_logits),
                                  tags=tags(open_logits, categories, th, []),
                                  single_tags=[tags(s, categories, th, [])[0] for s in single])
    res["intermediates"] = got
    return res, got


def compare(fixture: dict, res: dict, got: dict) -> list[tuple[str, float]]:
    """``(name, max abs diff)`` for every stored reference present in the fixture."""
    pairs = [(f"outputs.{k}", res["outputs"].get(k), v) for k, v in (fixture.get("outputs") or {}).items()]
    openset = fixture.get("openset") or {}
    pairs += [(f"openset.{k}", res.get("openset", {}).get(k), openset.get(k))
              for k in ("logits", "probs", "tags", "single_tags") if k in openset]
    if "preprocessed" in res:
        pairs.append((PREPROCESS_CHECK, res["preprocessed"], (fixture.get("inputs") or {}).get("image")))
    pairs += intermediate_pairs(fixture.get("intermediates") or {}, got)
    return [(name, difference(mine, ref)) for name, mine, ref in pairs if ref is not None]


def saved(res: dict, got: dict) -> dict:
    """What ``--save`` writes: the results under the fixture's names."""
    return res
