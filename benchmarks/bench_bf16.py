"""bf16 against fp32, stage by stage: speed at the official sizes, and the parity fixtures' decisions.

    python benchmarks/bench_bf16.py                      # CPU: both parts, 5 interleaved runs per stage
    python benchmarks/bench_bf16.py --part decisions     # only the fixtures (a minute)
    python benchmarks/bench_bf16.py --device cuda        # the same rows on a GPU

**Speed**: each stage at its official size with random weights (the arithmetic of the released checkpoints; no
download), on one 640x480 photo, under the pipeline's own ``--precision`` autocast (``Pipeline.model_call``):
RAM++ Swin-L 384 (4585 tags), Grounding DINO Swin-T (8 tags), TAP ViT-L (8 boxes), SAM ViT-B (8 boxes),
Tag2Text Swin-B 384 (a caption, 3 beams); the stages are ``benchmarks/bench_stages.py``'s. fp32 and bf16 runs alternate, the median of ``--repeats`` is reported.

**Decisions**: every parity fixture run under bf16 autocast, its decisions against the fixture's stored fp32
ones: RAM++ and RAM tags (the share of (image, tag) decisions that agree), Tag2Text's generated captions (equal or
not), Grounding DINO's kept boxes (count, and the largest box difference relative to the image), TAP's masks (IoU)
and captions. bf16 keeps 8 bits of mantissa: decisions near a threshold may flip, which is what these rows count.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def _autocast(device: str, precision: str):
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)


# ---------------------------------------------------------------- decisions (parity fixtures under bf16)
def decisions(shared: Path, device: str) -> list[dict]:
    rows = []
    with torch.no_grad():
        import tagging.parity.ram as ram
        import tagging.parity.ram_plus as ram_plus
        import tagging.parity.tag2text as t2t

        for name, mod, path in (("RAM++", ram_plus, "ram_plus/ram_plus_tiny_A.pt"), ("RAM", ram, "ram/ram_tiny_A.pt")):
            fx = torch.load(shared / "parity" / path, weights_only=False)
            with _autocast(device, "bf16"):
                res, _ = mod.run(fx)
            res = res.get("outputs", res)  # RAM's results nest its outputs as the fixture does
            ref = fx["outputs"]["targets"]
            agree = float((res["targets"].float() == ref.float()).float().mean())
            diff = float((res["probs"].float() - fx["outputs"]["probs"].float()).abs().max())
            rows.append({"stage": f"{name} tags (fixture)", "agreement": agree, "detail": f"max prob diff {diff:.2e}"})
        fx = torch.load(shared / "parity/tag2text/tag2text_tiny_A.pt", weights_only=False)
        with _autocast(device, "bf16"):
            res, got = t2t.run(fx)
        calls = {k: v for k, v in (fx.get("generation") or {}).items() if isinstance(v, dict) and "captions" in v}
        same = [res["generation"].get(c, {}).get("captions") == calls[c]["captions"] for c in calls]
        rows.append({"stage": "Tag2Text captions (fixture)", "agreement": float(np.mean(same)) if same else float("nan"),
                     "detail": f"{sum(same)} of {len(same)} generation calls give the same captions"})
        from grounding.groundingdino.verify import run_fixture as gdino_run

        fx = torch.load(shared / "parity/grounding_dino/gdino_tiny_A.pt", weights_only=True)
        with _autocast(device, "bf16"):
            out, _ = gdino_run(fx)
        counts, worst = [], 0.0
        for case, got in zip(fx.get("predict", []), out["predict"]):
            counts.append(got["scores"].numel() == case["scores"].numel())
            if counts[-1] and got["scores"].numel():
                h, w = case.get("original_size", (1, 1)) if "original_size" in case else (1, 1)
                worst = max(worst, float((got["boxes_xyxy"].float() - case["xyxy_pixels"].float()).abs().max()))
        rows.append({"stage": "Grounding DINO boxes (fixture)", "agreement": float(np.mean(counts)),
                     "detail": f"cases keeping the same number of boxes; largest box difference {worst:.2f} px"})
        from grounding.tap.verify import run_fixture as tap_run

        fx = torch.load(shared / "parity/tap/tap_tiny_A.pt", weights_only=False)
        with _autocast(device, "bf16"):
            res = tap_run(fx, tokenizer_path=str(shared / "parity/tap/text_tokenizer.model"))
        ious, caps = [], []
        for name, call in res["calls"].items():
            ref = (fx["outputs"].get("calls") or {}).get(name) or {}
            for m, r in zip(call["masks_final_original_size"], ref.get("masks_final_original_size") or []):
                a, b = np.asarray(m, bool), np.asarray(r, bool)
                ious.append((a & b).sum() / max(1, (a | b).sum()))
            if ref.get("caption_strings") is not None:
                caps += [x == y for x, y in zip(call["caption_strings"], ref["caption_strings"])]
        rows.append({"stage": "TAP masks (fixture)", "agreement": float(np.mean(ious)) if ious else float("nan"),
                     "detail": f"mean mask IoU; {sum(caps)} of {len(caps)} region captions equal"})
    return rows


# ---------------------------------------------------------------- speed (official sizes, random weights)
#: the stages timed (``benchmarks/bench_stages.py``'s builders), with what they are asked to do
SPEED_STAGES = {"tagger": "RAM++ Swin-L 384 (4585 tags)", "detector": "Grounding DINO Swin-T (8 tags)",
                "tap": "TAP ViT-L (8 boxes, masks + captions)", "sam": "SAM ViT-B (8 boxes)",
                "tag2text-caption": "Tag2Text Swin-B 384 (a caption, 3 beams)"}


def speed(shared: Path, device: str, repeats: int, only: list[str]) -> list[dict]:
    from bench_stages import build_stage, run_stage

    from openvocab.cpu import compute_turn, configure_torch_threads
    from openvocab.images import load_image

    configure_torch_threads()
    image, _ = load_image(str(shared / "images" / "demo4.jpg"))
    image = np.ascontiguousarray(np.asarray(image)[:480, :, :])  # a 428x480 crop of a real photo
    rows = []
    for key, name in SPEED_STAGES.items():
        if only and not any(o.lower() in key for o in only):
            continue
        stage = build_stage(key, argparse.Namespace(shared=str(shared), sam_variant="vit_b"))
        stage.setup(device)
        call = run_stage(key, stage, image, 8)
        times: dict[str, list[float]] = {"fp32": [], "bf16": []}
        for r in range(repeats + 1):
            for precision in ("fp32", "bf16"):
                with torch.inference_mode(), _autocast(device, precision), compute_turn(device):
                    t0 = time.perf_counter()
                    call()
                    if device.startswith("cuda"):
                        torch.cuda.synchronize()
                    if r:  # the first round warms up
                        times[precision].append(time.perf_counter() - t0)
        fp32, bf16 = statistics.median(times["fp32"]), statistics.median(times["bf16"])
        rows.append({"stage": name, "fp32_s": fp32, "bf16_s": bf16, "speedup": fp32 / bf16,
                     "runs": {k: [round(x, 2) for x in v] for k, v in times.items()}})
        del stage
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--part", choices=["all", "speed", "decisions"], default="all")
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--only", nargs="*", default=[], help="speed: stages whose name contains one of these")
    p.add_argument("--shared", default=str(ROOT.parent / "shared"))
    p.add_argument("--json", help="also write the rows here")
    args = p.parse_args()
    shared = Path(args.shared)
    flags = open("/proc/cpuinfo").read() if os.path.exists("/proc/cpuinfo") else ""
    machine = (f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs "
               f"(avx512_bf16: {'yes' if 'avx512_bf16' in flags else 'no'}, amx_bf16: "
               f"{'yes' if 'amx_bf16' in flags else 'no'}), torch {torch.__version__}, {args.device}"
               + (f", {torch.cuda.get_device_name()}" if args.device.startswith("cuda") else ""))
    print(f"# {machine}\n# {' '.join(sys.argv)}")
    out: dict = {"machine": machine, "command": sys.argv}
    if args.part in ("all", "speed"):
        out["speed"] = speed(shared, args.device, args.repeats, args.only)
        print("| stage (official size, random weights) | fp32 s | bf16 s | bf16 speed-up | runs (fp32; bf16) |")
        print("|---|---|---|---|---|")
        for r in out["speed"]:
            print(f"| {r['stage']} | {r['fp32_s']:.2f} | {r['bf16_s']:.2f} | {r['speedup']:.2f}x | "
                  f"{r['runs']['fp32']}; {r['runs']['bf16']} |")
    if args.part in ("all", "decisions"):
        out["decisions"] = decisions(shared, args.device)
        print("\n| parity fixture under bf16 | agreement with fp32 | detail |")
        print("|---|---|---|")
        for r in out["decisions"]:
            print(f"| {r['stage']} | {r['agreement']:.4f} | {r['detail']} |")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1, default=float))


if __name__ == "__main__":
    main()
