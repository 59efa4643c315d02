"""Parity check of the RAM++ model against an official-code fixture.

``python -m tagging.verify FIXTURE.pt --save OUT.pt [--tol 1e-4]``

Builds :class:`tagging.ram_plus.model.RAMPlus` from the official hyper-parameters in the fixture's
meta, loads its ``state_dict`` through :func:`tagging.ram_plus.convert_state_dict` (what users run
on the real checkpoint) and ``load_strict``, runs the stored preprocessed inputs and the raw images
(through this package's preprocessing), and the open-set path on ``openset.label_embed``. Saves
``logits``, ``probs``, ``targets`` (after ``delete_tag_index``), ``raw_logits``, ``openset_logits``
(and a few more). Prints the max abs difference to every stored output/intermediate present and
exits 1 if one exceeds the tolerance, or if the fixture stores no model output or intermediate to compare
with (a check that compared nothing has not passed; ``--save`` still writes the outputs).
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Optional

import torch

from openvocab.checkpoint import load_strict

from .ram_plus.convert import convert_state_dict
from .ram_plus.model import RAMPlus, model_kwargs_from_official
from .recognize_anything.preprocess import IMAGENET_MEAN, IMAGENET_STD, preprocess


#: the one comparison that is not of the model's outputs (our preprocessing against the official tensor)
PREPROCESS_CHECK = "preprocessed vs inputs.image"


def _capture(model: RAMPlus) -> tuple[dict, list]:
    """Forward hooks recording intermediates under the fixture's names."""
    got: dict[str, torch.Tensor] = {}
    named = {"swin_patch_embed": model.visual_encoder.patch_embed, "visual_encoder_out": model.visual_encoder,
             "image_embeds": model.image_proj, "wordvec_proj_out": model.wordvec_proj,
             "tagging_embed": model.tagging_head}
    for i, layer in enumerate(model.visual_encoder.layers):
        named[f"swin_layer{i}_out"] = layer
    for i, layer in enumerate(model.tagging_head.encoder.layer):
        named[f"tagging_head_layer{i}_crossattn_out"] = layer.crossattention
        named[f"tagging_head_layer{i}_out"] = layer

    def hook(name):
        def fn(_module, _inputs, output):
            got.setdefault(name, output.detach())
        return fn
    return got, [m.register_forward_hook(hook(n)) for n, m in named.items()]


def _thresholded(probs: torch.Tensor, thresholds: torch.Tensor, delete: list[int]) -> tuple[torch.Tensor, ...]:
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
    load_strict(model, convert_state_dict(fixture["state_dict"]), source="fixture state_dict")
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
        got, hooks = _capture(model)
        try:
            emb = model.encode_image(image)
            logits = model.tag_logits(emb)
        finally:
            for h in hooks:
                h.remove()
        got["label_embed_reweight"] = model.reweight(emb, model.label_embed, model.descriptions_per_tag)
        got["label_queries"] = torch.relu(got["wordvec_proj_out"])
        res["logits"], res["probs"] = logits, torch.sigmoid(logits)
        res["targets_before_delete"], res["targets"] = _thresholded(res["probs"], thresholds, delete)
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
            res["openset_targets"] = _thresholded(res["openset_probs"], th, [])[0]
    return res, got


def compare(fixture: dict, res: dict, got: dict) -> list[tuple[str, float]]:
    """``(name, max abs diff)`` for every stored reference present in the fixture."""
    outputs, openset = fixture.get("outputs") or {}, fixture.get("openset") or {}
    inter = fixture.get("intermediates") or {}
    pairs = [(f"outputs.{k}", res.get(k), outputs.get(k)) for k in ("logits", "probs", "targets_before_delete",
                                                                    "targets")]
    pairs += [("raw_logits vs outputs.logits", res.get("raw_logits"), outputs.get("logits")),
              ("raw_probs vs outputs.probs", res.get("raw_probs"), outputs.get("probs")),
              (PREPROCESS_CHECK, res.get("preprocessed"), (fixture.get("inputs") or {}).get("image"))]
    pairs += [(f"openset.{k}", res.get(f"openset_{k}"), openset.get(k)) for k in ("logits", "probs", "targets")]
    for name, ref in inter.items():
        key = name[:-len("_img0")] if name.endswith("_img0") else name
        if key in got:
            mine = got[key][:ref.shape[0]] if name.endswith("_img0") else got[key]
            pairs.append((f"intermediates.{name}", mine, ref))
    out = []
    for name, mine, ref in pairs:
        if mine is None or ref is None:
            continue
        if mine.shape != ref.shape:
            out.append((name, float("inf")))
        else:
            out.append((name, (mine.float() - ref.float()).abs().max().item()))
    return out


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tagging.verify", description=__doc__.split("\n\n")[0])
    ap.add_argument("fixture", help="RAM++ parity fixture (.pt)")
    ap.add_argument("--save", help="write the computed outputs here (.pt)")
    ap.add_argument("--tol", type=float, default=1e-4, help="max allowed abs difference (default 1e-4)")
    args = ap.parse_args(argv)
    fixture = torch.load(args.fixture, map_location="cpu", weights_only=True)
    res, got = run(fixture)
    if args.save:
        torch.save({k: v.contiguous() for k, v in res.items()}, args.save)
        print(f"saved {sorted(res)} to {args.save}")
    diffs = compare(fixture, res, got)
    worst = 0.0
    for name, d in diffs:
        flag = "" if d <= args.tol else "   <-- FAIL"
        print(f"max abs diff {name:<50s} {d:.3e}{flag}")
        worst = max(worst, d)
    if not any(name != PREPROCESS_CHECK for name, _ in diffs):
        print(f"FAIL: nothing compared: {args.fixture} stores no model outputs or intermediates")
        return 1
    ok = worst <= args.tol
    print(f"{'OK' if ok else 'FAIL'}: worst {worst:.3e} (tolerance {args.tol:g})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
