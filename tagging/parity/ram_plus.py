"""RAM++ fixture rerun: :class:`tagging.ram_plus.model.RAMPlus` from the fixture's ``meta_json``.

Loads the ``state_dict`` through :func:`tagging.ram_plus.convert_state_dict` (what users run on the real
checkpoint) and the strict loader, runs the stored preprocessed inputs and the raw images (through this
package's preprocessing), and the open-set path on ``openset.label_embed``. Results (flat, the fixture's
``outputs`` names): ``logits``, ``probs``, ``targets_before_delete``, ``targets`` (after ``delete_tag_index``),
``raw_logits``/``raw_probs`` (from the raw images), ``preprocessed``, ``openset_logits``/``_probs``/``_targets``.
"""
from __future__ import annotations

import json

import torch

from ..ram_plus.convert import convert_state_dict
from ..ram_plus.model import RAMPlus, model_kwargs_from_official
from ..recognize_anything.loading import load_official
from ..recognize_anything.preprocess import IMAGENET_MEAN, IMAGENET_STD, preprocess
from .common import capture, difference, intermediate_pairs

#: the one comparison that is not of the model's outputs (our preprocessing against the official tensor)
PREPROCESS_CHECK = "preprocessed vs inputs.image"


def _named(model: RAMPlus) -> dict:
    named = {"swin_patch_embed": model.visual_encoder.patch_embed, "visual_encoder_out": model.visual_encoder,
             "image_embeds": model.image_proj, "wordvec_proj_out": model.wordvec_proj,
             "tagging_embed": model.tagging_head}
    for i, layer in enumerate(model.visual_encoder.layers):
        named[f"swin_layer{i}_out"] = layer
    for i, layer in enumerate(model.tagging_head.encoder.layer):
        named[f"tagging_head_layer{i}_crossattn_out"] = layer.crossattention
        named[f"tagging_head_layer{i}_out"] = layer
    return named


def thresholded(probs: torch.Tensor, thresholds: torch.Tensor, delete: list[int]) -> tuple[torch.Tensor, ...]:
    """``(targets before delete_tag_index, after)``, float 0/1: the official strict float32 decision."""
    before = (probs > thresholds.to(probs.dtype)).float()
    after = before.clone()
    after[:, delete] = 0
    return before, after


def run(fixture: dict) -> tuple[dict, dict]:
    """Run the model on a fixture dict; returns ``(results, captured_intermediates)``.

    ``inputs.image`` (the official preprocessing's output) is the model input when present; a
    fixture with raw images only (``inputs.raw_uint8``) runs them through this package's
    preprocessing instead. Intermediates are captured on the first of the two.
    """
    meta = json.loads(fixture["meta_json"])
    model = RAMPlus(**model_kwargs_from_official(meta)).eval()
    load_official(model, convert_state_dict(fixture["state_dict"]), source="fixture state_dict")
    thresholds = torch.tensor(meta["class_threshold"], dtype=torch.float32)
    delete = [int(i) for i in meta.get("delete_tag_index", meta.get("ctor", {}).get("delete_tag_index", []))]
    prep = meta.get("preprocess", {})
    mean, std = prep.get("mean", IMAGENET_MEAN), prep.get("std", IMAGENET_STD)
    inputs = fixture.get("inputs") or {}
    raw = [torch.as_tensor(im).numpy() for im in inputs.get("raw_uint8", [])]
    if "image" not in inputs and not raw:
        raise ValueError("fixture has no inputs (neither inputs.image nor inputs.raw_uint8)")
    res: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        if raw:
            res["preprocessed"] = preprocess(raw, image_size=model.image_size, mean=mean, std=std)
        image = inputs["image"].float() if "image" in inputs else res["preprocessed"]
        got, hooks = capture(_named(model))
        try:
            emb = model.encode_image(image)
            logits = model.tag_logits(emb)
        finally:
            for h in hooks:
                h.remove()
        got["label_embed_reweight"] = model.reweight(emb, model.label_embed, model.descriptions_per_tag)
        got["label_queries"] = torch.relu(got["wordvec_proj_out"])
        res["logits"], res["probs"] = logits, torch.sigmoid(logits)
        res["targets_before_delete"], res["targets"] = thresholded(res["probs"], thresholds, delete)
        if raw:
            res["raw_logits"] = model(res["preprocessed"]).logits
            res["raw_probs"] = torch.sigmoid(res["raw_logits"])
        openset = fixture.get("openset") or {}
        if "label_embed" in openset:
            embed = openset["label_embed"].float()
            k = len(meta.get("openset", {}).get("categories", [])) or embed.shape[0] // model.descriptions_per_tag
            res["openset_logits"] = model.tag_logits(emb, embed, embed.shape[0] // k)
            res["openset_probs"] = torch.sigmoid(res["openset_logits"])
            th = torch.full((k,), float(meta.get("openset", {}).get("class_threshold", 0.5)))
            res["openset_targets"] = thresholded(res["openset_probs"], th, [])[0]
    return res, got


def compare(fixture: dict, res: dict, got: dict) -> list[tuple[str, float]]:
    """``(name, max abs diff)`` for every stored reference present in the fixture."""
    outputs, openset = fixture.get("outputs") or {}, fixture.get("openset") or {}
    pairs = [(f"outputs.{k}", res.get(k), outputs.get(k)) for k in ("logits", "probs", "targets_before_delete",
                                                                    "targets")]
    pairs += [("raw_logits vs outputs.logits", res.get("raw_logits"), outputs.get("logits")),
              ("raw_probs vs outputs.probs", res.get("raw_probs"), outputs.get("probs")),
              (PREPROCESS_CHECK, res.get("preprocessed"), (fixture.get("inputs") or {}).get("image"))]
    pairs += [(f"openset.{k}", res.get(f"openset_{k}"), openset.get(k)) for k in ("logits", "probs", "targets")]
    pairs += intermediate_pairs(fixture.get("intermediates") or {}, got)
    return [(name, difference(mine, ref)) for name, mine, ref in pairs if mine is not None and ref is not None]


def saved(res: dict, got: dict) -> dict:
    """What ``--save`` writes: the flat results."""
    return res
