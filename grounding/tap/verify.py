"""``python -m grounding.verify TAP_FIXTURE.pt [--save OUT.pt]``: TAP parity check.

Builds the model from the fixture's ``config``, loads its ``state_dict`` strictly, runs the stored
images and every stored prompt call, saves per call ``iou_pred``, ``mask_pred``, ``sem_embeds``,
``concept_logits_all_tokens``, ``caption_token_ids``, ``caption_step_logits`` (and more) plus
``image_embeddings``, prints the max differences to the stored outputs that are present and exits
1 when one exceeds ``--atol`` (1e-4; masks are compared as logits), or when the fixture stores no
model output to compare with (a check that compared nothing has not passed). Without stored inputs
it synthesises images / prompts, so ``--save`` also works on fixtures whose outputs were removed.
"""
from __future__ import annotations

import argparse
import sys
from typing import Any, Optional

import numpy as np
import torch

from openvocab.checkpoint import load_strict

from .concepts import ConceptMatrix
from .model import TapModel, build_tap
from .predictor import select_mask_index
from .prompt_encoder import normalize_points
from .text_decoder import generate_greedy
from .tokenizer import IdTokenizer, SentencePieceTokenizer
from .transforms import compute_resize, postprocess_masks, resize_and_pad

#: fixture config key -> build_tap keyword
CONFIG_KEYS = {
    "vit_depth": "encoder_depth", "vit_embed_dim": "encoder_embed_dim",
    "vit_num_heads": "encoder_num_heads", "vit_mlp_ratio": "encoder_mlp_ratio",
    "patch_size": "patch_size", "window_size": "window_size", "image_size": "image_size",
    "image_embed_dim": "embed_dim", "decoder_depth": "decoder_depth",
    "decoder_num_heads": "decoder_num_heads", "decoder_mlp_dim": "decoder_mlp_dim",
    "num_mask_tokens": "num_mask_tokens", "sem_embed_dim": "sem_embed_dim",
    "text_embed_dim": "text_embed_dim", "text_num_heads": "text_num_heads",
    "text_depth": "text_depth", "text_mlp_ratio": "text_mlp_ratio",
    "text_seq_len": "text_seq_len", "vocab_size": "vocab_size",
}

#: outputs compared numerically (per call) and exactly
FLOAT_KEYS = ("prompt_coords", "sparse_embeds", "decoder_query_out", "iou_pred", "mask_pred",
              "sem_tokens", "sem_embeds", "concept_logits_all_tokens", "text_prompts",
              "caption_step_logits")
EXACT_KEYS = ("mask_index", "caption_token_ids")
#: the last line of :func:`compare` when the stored outputs hold nothing of the model to compare with
NOTHING_COMPARED = "FAIL: nothing compared (no stored model outputs)"


def build_from_config(config: dict[str, Any]) -> TapModel:
    kwargs = {CONFIG_KEYS[k]: v for k, v in config.items() if k in CONFIG_KEYS}
    return build_tap(**kwargs)


def synthetic_images() -> list[np.ndarray]:
    """Two formula BGR images (300x200 and 240x400)."""
    out = []
    for h, w, k in ((300, 200, 1), (240, 400, 2)):
        y, x = np.mgrid[0:h, 0:w]
        img = np.stack([(x * 3 * k) % 256, (y * 2 + x) % 256, (128 + 7 * (x + y) * k) % 256], -1)
        out.append(img.astype(np.uint8))
    return out


def synthetic_calls(sizes: list[tuple[int, int]], scales: list[float]) -> dict[str, np.ndarray]:
    """Box (3 per image), point (2 per image: [fg, pad], [fg, bg]) and mixed (1 per image)."""
    box, point, mixed = [], [], []
    for (h, w), s in zip(sizes, scales):
        for f in (0.1, 0.3, 0.0):
            box.append([[w * f, h * f, 2], [w * (0.5 + f), h * (0.6 + f), 3]])
        point += [[[w * 0.5, h * 0.5, 1], [0, 0, 4]], [[w * 0.2, h * 0.3, 1], [w * 0.7, h * 0.8, 0]]]
        mixed.append([[w * 0.1, h * 0.1, 2], [w * 0.8, h * 0.9, 3], [w * 0.4, h * 0.5, 1]])
    per_image = {"box": 3, "point": 2, "mixed": 1}
    calls = {}
    for name, rows in (("box", box), ("point", point), ("mixed", mixed)):
        arr = np.asarray(rows, np.float32)
        img_scale = np.repeat(np.asarray(scales, np.float32), per_image[name])
        arr[..., :2] *= img_scale[:, None, None]
        calls[name] = arr
    return calls


def make_tokenizer(meta: Optional[dict], vocab_size: int, path: Optional[str]):
    """``--tokenizer`` if given; the official SentencePiece model (hub cache) for fixtures whose
    ``tokenizer.kind`` is ``"sentencepiece"``; else the ids-as-text stand-in of the tiny fixtures."""
    meta = meta or {}
    if not path and meta.get("kind") == "sentencepiece":
        from openvocab import hub

        from .weights import TOKENIZER

        path = str(hub.resolve(TOKENIZER))
    if path:
        return SentencePieceTokenizer(model_file=path)
    return IdTokenizer(n_words=int(meta.get("n_words", vocab_size)), bos_id=int(meta.get("bos_id", 1)),
                       eos_id=int(meta.get("eos_id", 2)), pad_id=meta.get("pad_id"))


def run_fixture(fx: dict, *, device: str = "cpu", tokenizer_path: Optional[str] = None) -> dict:
    """Run the model of fixture ``fx`` on its inputs; returns the outputs dict that is saved."""
    config = dict(fx.get("config") or {})
    model = build_from_config(config)
    if "state_dict" in fx:
        load_strict(model, fx["state_dict"], source="fixture state_dict")
    model = model.eval().to(device)
    stored = fx.get("outputs") or {}
    size = model.image_size
    raw = stored.get("images_raw")
    images = [np.asarray(im) for im in raw] if raw is not None else synthetic_images()
    infos = [compute_resize(im.shape[0], im.shape[1], size) for im in images]
    batch = np.stack([resize_and_pad(im, info, model.pixel_mean_value) for im, info in zip(images, infos)])
    res: dict[str, Any] = {"img_batch_uint8": torch.from_numpy(batch)}
    if stored.get("img_batch_uint8") is not None:  # model parity on the reference's own pixels
        batch = np.asarray(stored["img_batch_uint8"])
    calls_in = {k: np.asarray(v["points"], np.float32) for k, v in (stored.get("calls") or {}).items()
                if "points" in v}
    if not calls_in:
        calls_in = synthetic_calls([im.shape[:2] for im in images], [i.scale for i in infos])
    cw = stored.get("concept_weights")
    if cw is None:
        g = torch.Generator().manual_seed(int(config.get("seed", 0)))
        sem_dim = model.image_decoder.sem_pred.layers[-1].out_features
        w = torch.nn.functional.normalize(torch.randn(sem_dim, int(config.get("num_concepts", 16)),
                                                      generator=g), dim=0)
        cw = w * float(config.get("concept_scale", 30.0))
    names = stored.get("concept_names") or [f"concept_{i:03d}" for i in range(cw.shape[1])]
    concepts = ConceptMatrix(weights=cw, names=tuple(names))
    tok = make_tokenizer(fx.get("tokenizer"), model.text_decoder.transformer.text_proj.out_features,
                         tokenizer_path)
    with torch.inference_mode():
        img = model.normalize(torch.from_numpy(batch))
        emb = model(img)
        res["img_preprocessed"], res["image_embeddings"] = img.cpu(), emb.cpu()
        res["img_pos"] = model.prompt_encoder.image_pe(*emb.shape[-2:]).cpu()
        res["calls"] = {}
        b = emb.shape[0]
        for name, pts in calls_in.items():
            coords = torch.from_numpy(normalize_points(pts[..., :2], size))
            labels = torch.from_numpy(pts[..., 2].astype(np.int64))
            sparse, out = model.decode(emb, coords, labels)
            n = len(pts)
            idx = select_mask_index(out.iou_pred, labels.to(out.iou_pred.device))
            rows = torch.arange(n, device=idx.device)
            per_img = n // b
            masks = [(postprocess_masks(out.mask_pred[i:i + 1, idx[i]], infos[i // per_img])[0] > 0).cpu()
                     for i in range(n)]
            sel_tokens = out.sem_tokens[rows, idx]
            gen = generate_greedy(model.text_decoder, sel_tokens, bos_id=tok.bos_id,
                                  eos_id=tok.eos_id, pad_id=tok.pad_id)
            res["calls"][name] = {
                "points": torch.from_numpy(pts), "prompt_coords": coords, "prompt_labels": labels,
                "sparse_embeds": sparse.cpu(), "decoder_query_out": out.query_out.cpu(),
                "iou_pred": out.iou_pred.cpu(), "mask_pred": out.mask_pred.cpu(),
                "sem_tokens": out.sem_tokens.cpu(), "sem_embeds": out.sem_embeds.cpu(),
                "mask_index": idx.cpu(), "masks_final_original_size": masks,
                "concept_logits_all_tokens": concepts.logits(out.sem_embeds).cpu(),
                "text_prompts": model.text_decoder.encoder(sel_tokens).cpu(),
                "caption_token_ids": torch.from_numpy(gen.tokens),
                "caption_step_logits": gen.step_logits.cpu(),
                "caption_strings": tok.detokenize(gen.tokens),
            }
    return res


def compare(res: dict, stored: dict, atol: float) -> tuple[list[str], bool]:
    """Lines of max differences and whether everything is within ``atol`` (``False`` when no model output
    was compared: only the resize/normalisation, or nothing)."""
    lines, ok, model_checks = [], True, 0

    def num(label: str, got: torch.Tensor, ref) -> None:
        nonlocal ok, model_checks
        model_checks += label != "img_preprocessed"
        ref = torch.as_tensor(ref)
        if tuple(got.shape) != tuple(ref.shape):
            lines.append(f"{label}: SHAPE {tuple(got.shape)} vs stored {tuple(ref.shape)}")
            ok = False
            return
        d = (got.float() - ref.float()).abs().max().item() if got.numel() else 0.0
        bad = not d <= atol
        ok &= not bad
        lines.append(f"{label}: max abs diff {d:.3e}{'  FAIL' if bad else ''}")

    if stored.get("img_batch_uint8") is not None:
        d = (res["img_batch_uint8"].int() - torch.as_tensor(stored["img_batch_uint8"]).int()).abs().max().item()
        lines.append(f"img_batch_uint8 (own resize/pad): max abs diff {d}{'  FAIL' if d > 1 else ''}")
        ok &= d <= 1
    for key in ("img_preprocessed", "image_embeddings", "img_pos"):
        if stored.get(key) is not None:
            num(key, res[key], stored[key])
    for name, call in res["calls"].items():
        ref = (stored.get("calls") or {}).get(name) or {}
        for key in FLOAT_KEYS:
            if ref.get(key) is not None:
                num(f"{name}.{key}", call[key], ref[key])
        for key in EXACT_KEYS:
            if ref.get(key) is not None:
                model_checks += 1
                r = torch.as_tensor(ref[key])
                same = tuple(r.shape) == tuple(call[key].shape) and bool((r == call[key]).all())
                ok &= same
                lines.append(f"{name}.{key}: {'equal' if same else 'DIFFERENT  FAIL'}")
        if ref.get("caption_strings") is not None:
            model_checks += 1
            same = list(ref["caption_strings"]) == list(call["caption_strings"])
            ok &= same
            lines.append(f"{name}.caption_strings: {'equal' if same else 'DIFFERENT  FAIL'}")
        if ref.get("masks_final_original_size") is not None:
            flips = sum(int((a != torch.as_tensor(b)).sum()) for a, b in
                        zip(call["masks_final_original_size"], ref["masks_final_original_size"]))
            lines.append(f"{name}.masks_final_original_size: {flips} pixels differ (informative; "
                         "near-zero logits)")
    if not model_checks:
        lines.append(NOTHING_COMPARED)
        ok = False
    return lines, ok


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m grounding.verify", description=__doc__.split("\n")[0])
    p.add_argument("fixture")
    p.add_argument("--save", default=None, help="write the computed outputs here (torch.save)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--atol", type=float, default=1e-4)
    p.add_argument("--tokenizer", default=None, help="SentencePiece model for fixtures that need one")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    torch.manual_seed(0)
    fx = torch.load(args.fixture, map_location="cpu", weights_only=True)
    if not isinstance(fx, dict) or not str(fx.get("format", "")).startswith("tap"):
        print(f"{args.fixture}: not a TAP fixture", file=sys.stderr)
        return 2
    from openvocab.hub import MissingFileError

    try:
        res = run_fixture(fx, device=args.device, tokenizer_path=args.tokenizer)
    except MissingFileError as e:
        print(f"{args.fixture}: {e}\n(or pass --tokenizer PATH)", file=sys.stderr)
        return 2
    if args.save:
        torch.save(res, args.save)
        print(f"saved outputs to {args.save}")
    lines, ok = compare(res, fx.get("outputs") or {}, args.atol)
    if lines[-1] == NOTHING_COMPARED:
        lines[-1] = f"FAIL: nothing compared: {args.fixture} stores no model outputs"
    else:
        lines.append("PASS" if ok else f"FAIL (tolerance {args.atol:g})")
    print("\n".join(lines))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
