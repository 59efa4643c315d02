"""Latency and memory of each stage at its real (official) size, with random weights.

    python benchmarks/bench_stages.py --stage tagger --device cpu --runs 3
    python benchmarks/bench_stages.py --stage ram,tag2text,tag2text-caption --runs 3
    python benchmarks/bench_stages.py --stage all --device cuda --precision bf16 --json out.json

Random weights have the official shapes, so the arithmetic (and the time) is that of the real
model; no checkpoint is needed. Tag lists / vocabularies / tokenizers that the real stages fetch
are taken from ``../shared`` (or ``--shared``). Results go to ``docs/benchmarks.md`` by hand, with the
command and the machine.
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _shared(args) -> Path:
    return Path(args.shared)


#: every stage this script measures (``--stage all``: the first four, the default chain's)
STAGES = ("tagger", "detector", "tap", "sam", "ram", "tag2text", "tag2text-caption")


def bert_vocab(shared: Path) -> Path:
    """A WordPiece vocabulary of BERT's size (30522: the parity fixture's words, then fillers), so the text towers
    have their released shapes; the real one is fetched from the hub."""
    words = torch.load(shared / "parity/grounding_dino/gdino_tiny_A.pt", weights_only=True)["vocab_txt"].splitlines()
    have = set(words)
    words += [w for w in (f"##fill{i}" for i in range(40000)) if w not in have][:30522 - len(words)]
    path = Path(tempfile.mkdtemp(prefix="bench_vocab_")) / "vocab.txt"
    path.write_text("\n".join(words) + "\n")
    return path


def build_stage(name: str, args):
    import grounding  # noqa: F401  (registers)
    import tagging  # noqa: F401
    from openvocab.registry import CAPTIONERS, DETECTORS, MASK_HEADS, TAGGERS

    shared = _shared(args)
    tags = str(shared / "data/ram_plus/ram_tag_list.txt")
    if name == "tagger":
        return TAGGERS.build(dict(type="RAMPlusTagger", variant="swin_l_384", checkpoint=None, tag_list=tags))
    if name == "ram":
        return TAGGERS.build(dict(type="RAMTagger", variant="swin_l_384", checkpoint=None, tag_list=tags))
    if name in ("tag2text", "tag2text-caption"):  # 3429 tags (names do not matter for the time), BERT-sized text
        return (TAGGERS if name == "tag2text" else CAPTIONERS).build(dict(
            type="Tag2TextTagger" if name == "tag2text" else "Tag2TextCaptioner", variant="swin_b_384",
            checkpoint=None, vocab=str(bert_vocab(shared)), tag_list=[f"tag {i}" for i in range(3429)],
            delete_tag_index=[]))
    if name == "detector":
        fx = torch.load(shared / "parity/grounding_dino/gdino_tiny_A.pt", weights_only=True)
        vocab = Path(tempfile.mkdtemp()) / "vocab.txt"
        vocab.write_text(fx["vocab_txt"])
        return DETECTORS.build(dict(type="GroundingDINODetector", variant="swint_ogc", checkpoint=None,
                                    vocab=str(vocab)))
    if name == "tap":
        return MASK_HEADS.build(dict(type="TAPMaskHead", variant="vit_l", checkpoint=None, concepts=None,
                                     tokenizer=str(shared / "parity/tap/text_tokenizer.model")))
    if name == "sam":
        return MASK_HEADS.build(dict(type="SAMMaskHead", variant=args.sam_variant, checkpoint=None))
    raise ValueError(name)


def run_stage(name: str, stage, image: np.ndarray, n_boxes: int):
    from openvocab.structures import Detections

    h, w = image.shape[:2]
    if name in ("tagger", "ram", "tag2text"):
        return lambda: stage.tag([image])
    if name == "tag2text-caption":  # guided by 8 tags, 3 beams (the official settings)
        return lambda: stage.caption([image], [["person", "dog", "car", "tree", "beach", "bicycle", "cup", "chair"]])
    if name == "detector":
        names = ["person", "dog", "car", "tree", "fire hydrant", "bicycle", "cup", "chair"]
        return lambda: stage.detect([image], [names])
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 0.5, (n_boxes, 2)) * [w, h]
    boxes = np.concatenate([xy, xy + rng.uniform(0.1, 0.5, (n_boxes, 2)) * [w, h]], 1).astype(np.float32)
    dets = Detections(boxes=boxes, scores=np.ones(n_boxes), labels=("x",) * n_boxes)
    return lambda: stage.segment(image, dets)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stage", default="all", help=f"all, or a comma list of {', '.join(STAGES)}")
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--boxes", type=int, default=8, help="box prompts per image for the mask heads")
    p.add_argument("--sam-variant", default="vit_h", choices=["vit_b", "vit_l", "vit_h"],
                   help="SAM image encoder size for --stage sam")
    p.add_argument("--size", default="800x1200", help="HxW of the test image")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--shared", default=str(ROOT.parent / "shared"))
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    h, w = map(int, args.size.split("x"))
    image = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    stages = list(STAGES[:4]) if args.stage == "all" else args.stage.split(",")
    unknown = sorted(set(stages) - set(STAGES))
    if unknown:
        p.error(f"unknown stage(s) {unknown}; choose from {', '.join(STAGES)}")
    dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[args.precision]
    results = []
    for name in stages:
        stage = build_stage(name, args)
        stage.setup(args.device)
        fn = run_stage(name, stage, image, args.boxes)
        times = []
        for i in range(args.runs + 1):  # first run is warm-up
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            t = time.perf_counter()
            with torch.inference_mode(), torch.autocast(torch.device(args.device).type, dtype=dtype,
                                                        enabled=dtype is not None):
                fn()
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            if i:
                times.append(time.perf_counter() - t)
        row = {"stage": name, "device": args.device, "precision": args.precision, "image": args.size,
               "median_s": round(statistics.median(times), 3), "min_s": round(min(times), 3),
               "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)}
        if args.device.startswith("cuda"):
            row["peak_cuda_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        print(json.dumps(row), flush=True)
        results.append(row)
        del stage
    meta = {"machine": platform.platform(), "cpu_threads": torch.get_num_threads(), "torch": torch.__version__,
            "command": " ".join(["python", "benchmarks/bench_stages.py", *(argv or sys.argv[1:])])}
    if args.json:
        Path(args.json).write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
