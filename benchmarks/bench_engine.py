"""End-to-end throughput of the labeling engine, side by side: one image at a time, streamed, and Ray.

    python benchmarks/bench_engine.py --workload tiny-photos --images 48 --repeats 3
    python benchmarks/bench_engine.py --workload detect-segment-lvis --images 3
    python benchmarks/bench_engine.py --workload default-chain --images 3
    python benchmarks/bench_engine.py --workload detect-segment-lvis --images 3 --mask-head sam_vit_b
    python benchmarks/bench_engine.py --workload rss --counts 100,2000
    python benchmarks/bench_engine.py --workload default-chain --device cuda --precision bf16   # GPU rows

Modes: ``sequential`` (``--workers 0``: read, run, write, then the next image), ``streamed`` (loader threads,
the pipeline's steps each on its own thread, writer thread: the default engine) and ``ray`` (``--engine ray`` on a local Ray instance).
Workloads use the real components at official sizes with random weights (the official shapes, so the
arithmetic of the released checkpoints; no download): ``detect-segment-lvis`` is Grounding DINO Swin-T +
TAP ViT-L with a 1203-class vocabulary (the first 1203 RAM++ tags, a stand-in for LVIS's 1203 classes),
``default-chain`` is RAM++ Swin-L -> WordNet boxable filter -> Grounding DINO Swin-T -> TAP ViT-L, and
``--mask-head sam_vit_b`` puts SAM ViT-B in place of TAP ViT-L; ``tiny-photos`` is ``tiny_random`` over the large shared photos (decode-bound). ``rss`` measures the peak
resident memory of the streamed engine over 100 and 2000 images (one process each). Each official workload
also reports FLOPs per image (``torch.utils.flop_counter.FlopCounterMode``) and the achieved FLOP/s.
Results are printed as Markdown rows for ``docs/benchmarks.md`` (with the command and the machine).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PHOTOS = ("demo2.jpg", "demo3.jpg", "demo4.jpg")


def _config(workload: str, args):
    """The mmengine Config and vocabulary of a workload (random weights, local tokenizer files)."""
    import torch
    from mmengine.config import Config

    from openvocab.cli import resolve_config

    shared = Path(args.shared)
    if workload in ("tiny-photos", "rss"):
        return Config.fromfile(str(resolve_config("tiny_random"))), None
    tmp = Path(tempfile.mkdtemp(prefix="bench_vocab_"))
    fx = torch.load(shared / "parity/grounding_dino/gdino_tiny_A.pt", weights_only=True)
    (tmp / "vocab.txt").write_text(fx["vocab_txt"])  # a WordPiece vocab (the real one is fetched from the hub)
    tags = (shared / "data/ram_plus/ram_tag_list.txt").read_text().splitlines()
    name = "detect_segment" if workload == "detect-segment-lvis" else "full_pipeline"
    cfg = Config.fromfile(str(resolve_config(name)))
    cfg.detector.checkpoint = None
    cfg.detector.vocab = str(tmp / "vocab.txt")
    if args.mask_head == "sam_vit_b":
        cfg.mask_head = dict(type="SAMMaskHead", variant="vit_b", checkpoint=None)
    else:
        cfg.mask_head = dict(type="TAPMaskHead", variant="vit_l", checkpoint=None, concepts=None,
                             tokenizer=str(shared / "parity/tap/text_tokenizer.model"))
    if workload == "detect-segment-lvis":
        return cfg, tags[:1203]
    # random weights score almost every one of the 4585 tags above any threshold (about 0.8 each); a real image
    # gets a few dozen tags. So the first --tags tags of the COCO-80 names pass (threshold 0) and no other does
    # (threshold 1): the tagger still scores all 4585, the detector and mask head see a photo's usual load.
    coco80 = Config.fromfile(str(ROOT / "configs" / "_base_" / "coco80.py")).vocabulary
    coco80 = [t.strip() for t in (coco80.split(",") if isinstance(coco80, str) else coco80)]
    keep = set([t for t in coco80 if t in tags][:args.tags])
    cfg.tagger = dict(type="RAMPlusTagger", variant="swin_l_384", checkpoint=None,
                      tag_list=str(shared / "data/ram_plus/ram_tag_list.txt"),
                      class_thresholds=[0.0 if t in keep else 1.0 for t in tags])
    return cfg, None


def _inputs(workload: str, n: int, args) -> Path:
    d = Path(tempfile.mkdtemp(prefix="bench_imgs_"))
    shared = Path(args.shared) / "images"
    if workload == "rss":
        from PIL import Image

        rng = np.random.default_rng(0)
        base = rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)
        for i in range(n):
            Image.fromarray(np.roll(base, i, axis=1)).save(d / f"{i:05d}.png")
        return d
    for i in range(n):
        src = shared / PHOTOS[i % len(PHOTOS)]
        shutil.copyfile(src, d / f"{i:04d}_{src.name}")
    return d


def _run(workload: str, mode: str, n: int, args) -> dict:
    from openvocab.engine import RayOptions, run_job
    from openvocab.build import build_pipeline

    cfg, vocab = _config(workload, args)
    pipe = build_pipeline(cfg, vocabulary=vocab, device=args.device, precision=args.precision)
    images = _inputs(workload, n, args)
    out = Path(tempfile.mkdtemp(prefix="bench_out_"))
    if mode != "ray":
        pipe.setup()  # model building is not labeling: excluded from the timed part (Ray actors build inside it)
    t0 = time.perf_counter()
    summary = run_job(pipe, [str(images)], out, workers=0 if mode == "sequential" else args.workers,
                      batch_size=args.batch_size, progress=False, engine="ray" if mode == "ray" else "local",
                      ray=RayOptions(num_workers=args.ray_workers, gpus_per_worker=1.0 if args.device == "cuda" else 0.0,
                                     cpus_per_worker=max(1.0, (os.cpu_count() or 2) / args.ray_workers)),
                      formats=("coco", "jsonl"))
    seconds = time.perf_counter() - t0
    if summary.labeled != n:
        raise RuntimeError(f"{workload}/{mode}: labeled {summary.labeled} of {n}: {summary.failed[:3]}")
    shutil.rmtree(images, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    if workload in ("detect-segment-lvis", "default-chain"):
        workload = f"{workload} ({args.mask_head})"
    return {"workload": workload, "mode": mode, "images": n, "seconds": seconds, "images_per_s": n / seconds,
            "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}


def _flops(workload: str, args) -> dict:
    """FLOPs of one image through the pipeline, and the time of that forward."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from openvocab.images import load_image
    from openvocab.build import build_pipeline

    cfg, vocab = _config(workload, args)
    pipe = build_pipeline(cfg, vocabulary=vocab, device=args.device, precision=args.precision).setup()
    image, info = load_image(str(Path(args.shared) / "images" / PHOTOS[0]))
    pipe([image], [info])  # warm-up (prompt building and text features are cached after it, as in a job)
    for module in _modules(pipe):  # FlopCounterMode's module tracker trips on parameters that require grad
        module.requires_grad_(False)
    counter = FlopCounterMode(display=False)
    with counter:
        pipe([image], [info])
    _sync(args.device)
    t0 = time.perf_counter()
    pipe([image], [info])
    _sync(args.device)
    seconds = time.perf_counter() - t0
    flops = counter.get_total_flops()
    return {"workload": f"{workload} ({args.mask_head})", "gflops_per_image": flops / 1e9, "seconds": seconds,
            "achieved_gflops_per_s": flops / 1e9 / seconds}


def _modules(obj, depth: int = 3) -> list:
    """The torch modules held by the pipeline's stages (and their predictors), a few attributes deep."""
    import torch

    if isinstance(obj, torch.nn.Module):
        return [obj]
    if depth == 0:
        return []
    children = obj.stages if hasattr(obj, "stages") else [v for v in getattr(obj, "__dict__", {}).values()
                                                           if not isinstance(v, (str, bytes, int, float))]
    return [m for c in children for m in _modules(c, depth - 1)]


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _child(args, workload: str, mode: str, n: int) -> dict:
    """One measurement in a fresh process (clean peak RSS)."""
    cmd = [sys.executable, __file__, "--child", json.dumps({"workload": workload, "mode": mode, "n": n}),
           "--device", args.device, "--precision", args.precision, "--workers", str(args.workers),
           "--batch-size", str(args.batch_size), "--ray-workers", str(args.ray_workers), "--shared", args.shared,
           "--tags", str(args.tags), "--mask-head", args.mask_head]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"{workload}/{mode} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workload", choices=["tiny-photos", "detect-segment-lvis", "default-chain", "rss"],
                   default="tiny-photos")
    p.add_argument("--images", type=int, default=24)
    p.add_argument("--repeats", type=int, default=1, help="runs of each mode (interleaved); the median is reported")
    p.add_argument("--counts", default="100,2000", help="rss: image counts")
    p.add_argument("--modes", default="sequential,streamed,ray")
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    p.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="streamed mode's loader threads")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--ray-workers", type=int, default=1)
    p.add_argument("--tags", type=int, default=20, help="default-chain: tags per image the random-weight tagger passes")
    p.add_argument("--mask-head", default="tap_vit_l", choices=["tap_vit_l", "sam_vit_b"],
                   help="official workloads' mask head (random weights at the official size)")
    p.add_argument("--no-flops", action="store_true")
    p.add_argument("--shared", default=str(ROOT.parent / "shared"))
    p.add_argument("--json", help="also write the rows here")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        job = json.loads(args.child)
        if job["mode"] == "flops":
            print(json.dumps(_flops(job["workload"], args)))
        else:
            print(json.dumps(_run(job["workload"], job["mode"], job["n"], args)))
        return
    import torch

    machine = (f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
               f"{args.device}/{args.precision}" + (f", {torch.cuda.get_device_name()}" if args.device == "cuda" else ""))
    print(f"# {machine}\n# {' '.join(sys.argv)}")
    rows = []
    if args.workload == "rss":
        for n in (int(c) for c in args.counts.split(",")):
            rows.append(_child(args, "rss", "streamed", n))
    else:
        runs: dict[str, list[dict]] = {}
        for _ in range(args.repeats):  # modes interleaved, so that a slow spell of the machine hits each alike
            for mode in args.modes.split(","):
                runs.setdefault(mode, []).append(_child(args, args.workload, mode, args.images))
        for mode, measured in runs.items():
            median = sorted(measured, key=lambda r: r["seconds"])[len(measured) // 2]
            rows.append(dict(median, repeats=len(measured), all_seconds=[round(r["seconds"], 2) for r in measured],
                             peak_rss_gb=max(r["peak_rss_gb"] for r in measured)))
        if not args.no_flops and args.workload != "tiny-photos":
            try:
                rows.append(_child(args, args.workload, "flops", 1))
            except RuntimeError as e:  # the throughput rows are still worth printing
                print(f"# FLOP count failed: {str(e).splitlines()[-1]}", file=sys.stderr)
    base = next((r["images_per_s"] for r in rows if r.get("mode") == "sequential"), None)
    print("| workload | mode | images | seconds (median of runs) | images/s | vs sequential | peak RSS GB |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        if "mode" in r:
            ratio = f"{r['images_per_s'] / base:.2f}x" if base else "-"
            runs_s = ", ".join(f"{x:.1f}" for x in r.get("all_seconds", [r["seconds"]]))
            print(f"| {r['workload']} | {r['mode']} | {r['images']} | {r['seconds']:.1f} ({runs_s}) | "
                  f"{r['images_per_s']:.3f} | {ratio} | {r['peak_rss_gb']:.2f} |")
    for r in rows:
        if "gflops_per_image" in r:
            print(f"\nFLOPs {r['workload']}: {r['gflops_per_image']:.0f} GFLOP / image, "
                  f"{r['seconds']:.1f} s -> {r['achieved_gflops_per_s']:.1f} GFLOP/s achieved")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": machine, "command": sys.argv, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
