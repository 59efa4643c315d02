"""Latency and memory of PSALM's tasks at the release size (random weights: the arithmetic of the real model).

    python benchmarks/bench_psalm.py --device cpu --precision fp32 --runs 3
    python benchmarks/bench_psalm.py --device cuda --precision bf16 --json psalm.json
    python benchmarks/bench_psalm.py --size tiny --runs 1          # a smoke run of the script itself

Times one image: the vision side (Swin-B twice in the official code, once here; projector; pixel decoder), then
each prompt on it (Phi-1.5 + mask decoder + post-processing at the image size): a category list of ``--classes``
names (instance masks), a referring sentence and ``--boxes`` box prompts. No checkpoint is needed. Results go to
``docs/benchmarks.md`` by hand, with the command and the machine.
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
NAMES = ["person", "dog", "cat", "car", "bicycle", "bus", "tree", "grass", "sky", "building", "road", "chair",
         "table", "cup", "bottle", "book", "laptop", "phone", "water", "boat"]


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn, runs: int, device: str) -> tuple[float, list[float]]:
    times = []
    for _ in range(runs):
        _sync(device)
        t = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t)
    return statistics.median(times), times


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", choices=sorted(DTYPES), default="fp32", help="weight dtype (fp16: CUDA only)")
    p.add_argument("--size", choices=["release", "tiny"], default="release")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--classes", type=int, default=20, help="category-list length")
    p.add_argument("--boxes", type=int, default=8, help="box prompts in one region prompt")
    p.add_argument("--image-size", type=int, nargs=2, default=(768, 1024), metavar=("H", "W"))
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--json", default=None, help="also write the results here")
    args = p.parse_args(argv)
    if args.precision == "fp16" and not args.device.startswith("cuda"):
        p.error("fp16 needs --device cuda")
    if args.threads:
        torch.set_num_threads(args.threads)
    from grounding.psalm.loading import random_model
    from grounding.psalm.predictor import PSALMPredictor

    t = time.perf_counter()
    model, tokenizer = random_model("psalm" if args.size == "release" else "tiny", device=args.device,
                                    dtype=DTYPES[args.precision])
    build_s = time.perf_counter() - t
    pred = PSALMPredictor(model=model, tokenizer=tokenizer)
    h, w = args.image_size
    image = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    names = (NAMES * (args.classes // len(NAMES) + 1))[:args.classes]
    names = [f"{n} {i}" if i >= len(NAMES) else n for i, n in enumerate(names)]
    boxes = np.array([[w * i / (2 * args.boxes), h * 0.1, w * (0.5 + i / (2 * args.boxes)), h * 0.9]
                      for i in range(args.boxes)], np.float32)
    steps = {
        "encode image": lambda: pred.set_image(image),
        f"category list ({args.classes} classes, instance)": lambda: pred.categories(names, mode="instance"),
        "referring sentence": lambda: pred.refer("the man on the left holding a cup"),
        f"region prompts ({args.boxes} boxes)": lambda: pred.predict(boxes=boxes),
    }
    pred.set_image(image)  # warm-up
    results = {}
    for name, fn in steps.items():
        median, times = timed(fn, args.runs, args.device)
        results[name] = {"median_s": round(median, 4), "runs_s": [round(x, 4) for x in times]}
        print(f"{name:45s} {median * 1000:9.1f} ms")
    params = sum(v.numel() for v in model.state_dict().values())
    info = {"device": args.device, "precision": args.precision, "size": args.size, "image_hw": [h, w],
            "parameters": params, "build_s": round(build_s, 2), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "machine": platform.processor() or platform.machine(),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "cuda_peak_mb": round(torch.cuda.max_memory_allocated() / 2**20) if args.device.startswith("cuda")
            else None, "steps": results}
    print(json.dumps({k: v for k, v in info.items() if k != "steps"}))
    if args.json:
        Path(args.json).write_text(json.dumps(info, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
