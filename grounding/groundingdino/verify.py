"""``python -m grounding.verify FIXTURE.pt --save OUT.pt``: rebuild the model from a Grounding DINO
fixture, load its weights the way users load real files, recompute outputs and compare (exit 1 when a
difference exceeds 1e-4, or when the fixture stores no outputs: a check that compared nothing fails)."""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch

from .convert import convert_hf_state_dict, convert_state_dict, is_hf_state_dict
from .model import build_from_official_config
from .postprocess import box_threshold, cxcywh_to_xyxy_pixels
from .preprocess import preprocess_images
from .tokenize import load_tokenizer, preprocess_caption, tokenize

TOL = 1e-4


def _diff(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.float(), b.float().view(a.shape)
    fa, fb = torch.isfinite(a), torch.isfinite(b)
    if not torch.equal(fa, fb):
        return float("inf")
    return float((a[fa] - b[fa]).abs().max()) if fa.any() else 0.0


def _load_model(fix: dict, source: str = "fixture state_dict"):
    """Model from the fixture's config, weights loaded as users load released files: official layout
    (``{'model': sd}``, optional ``module.`` prefix) or HF layout, converted, then strict."""
    from openvocab.checkpoint import load_strict

    meta = json.loads(fix["meta_json"])
    model = build_from_official_config(meta["config"], meta["bert_config"]).eval()
    sd = fix["state_dict"]
    sd = convert_hf_state_dict(sd) if is_hf_state_dict(sd) else convert_state_dict({"model": sd})
    load_strict(model, sd, source=source)
    return model


def run_fixture(fix: dict, model=None) -> tuple[dict, list[tuple[str, float]]]:
    if model is None:
        model = _load_model(fix)
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "vocab.txt").write_text(fix["vocab_txt"])
        tok = load_tokenizer(str(Path(d) / "vocab.txt"))
    out: dict = {"predict": [], "singles": []}
    diffs: list[tuple[str, float]] = []
    with torch.no_grad():
        for i, case in enumerate(fix.get("predict", [])):
            raw = case.get("raw_image")
            if raw is None:
                raw = fix["raw_images"][case["image_name"]]
            img = preprocess_images([raw.numpy()])
            tb = tokenize(tok, [preprocess_caption(case["caption_raw"])])
            o = model(img.pixel_values, img.pixel_mask, tb.input_ids, tb.attention_mask,
                      tb.text_self_attention_masks, tb.position_ids)
            th = box_threshold(o.pred_logits[0], o.pred_boxes[0], case["box_threshold"])
            h, w = img.original_sizes[0]
            res = {"pred_logits": o.pred_logits, "pred_boxes": o.pred_boxes, "scores": th.scores,
                   "boxes_xyxy": cxcywh_to_xyxy_pixels(th.boxes, h, w)}
            out["predict"].append(res)
            for k, ref in (("pred_logits", "pred_logits"), ("pred_boxes", "pred_boxes"), ("scores", "scores"),
                           ("boxes_xyxy", "xyxy_pixels")):
                if ref in case:
                    if res[k].numel() != case[ref].numel():
                        diffs.append((f"predict[{i}].{k} (count)", float("inf")))
                        continue
                    d = _diff(res[k], case[ref])
                    if k == "boxes_xyxy":  # pixels, compared relative to the image size (unclipped, as official)
                        diffs.append((f"predict[{i}].boxes_xyxy (px / max(H, W))", d / max(h, w)))
                    else:
                        diffs.append((f"predict[{i}].{k}", d))
        b = fix.get("batch")
        if b is not None:
            for i in range(b["pixel_values"].shape[0]):
                s = slice(i, i + 1)
                o = model(b["pixel_values"][s], b["pixel_mask"][s], b["input_ids"][s], b["attention_mask"][s],
                          b["text_self_attention_masks"][s], b["position_ids"][s])
                out["singles"].append({"pred_logits": o.pred_logits, "pred_boxes": o.pred_boxes})
                ref = b.get("singles", [None] * (i + 1))[i] if "singles" in b else None
                if ref:
                    diffs.append((f"singles[{i}].pred_logits", _diff(o.pred_logits, ref["pred_logits"])))
                    diffs.append((f"singles[{i}].pred_boxes", _diff(o.pred_boxes, ref["pred_boxes"])))
    return out, diffs


def _read(path: str, keys: tuple[str, ...]) -> dict:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError) as e:
        raise SystemExit(f"{path}: cannot read ({e})") from None
    missing = [k for k in keys if not isinstance(obj, dict) or k not in obj]
    if missing:
        raise SystemExit(f"{path}: not a Grounding DINO fixture (missing {', '.join(missing)})")
    return obj


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m grounding.verify")
    p.add_argument("fixture")
    p.add_argument("--save", default=None)
    p.add_argument("--weights", default=None, help="fixture-like file whose state_dict replaces the fixture's "
                                                 "(e.g. the HF-layout file)")
    a = p.parse_args(argv)
    fix = _read(a.fixture, ("meta_json", "vocab_txt", "state_dict"))
    if a.weights:
        fix = dict(fix, state_dict=_read(a.weights, ("state_dict",))["state_dict"])
    try:
        model = _load_model(fix, source=a.weights or a.fixture)
    except ValueError as e:
        print(f"FAIL: {e}")
        return 1
    out, diffs = run_fixture(fix, model)
    if a.save:
        torch.save(out, a.save)
    worst = 0.0
    for name, d in diffs:
        print(f"{name}: max|diff| = {d:.3g}")
        worst = max(worst, d)
    if not diffs:
        print(f"FAIL: nothing compared: {a.fixture} stores no outputs (predict cases or batch singles)")
        return 1
    print("OK" if worst <= TOL else f"FAIL: max difference {worst:.3g} > {TOL}")
    return 0 if worst <= TOL else 1


if __name__ == "__main__":
    sys.exit(main())
