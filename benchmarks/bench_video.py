"""Peak memory and speed of ``openvocab label`` on long videos: memory must not grow with the video's length.

    python benchmarks/bench_video.py --minutes 1,20                      # tiny_random + ByteTrack, 2 frames/s
    python benchmarks/bench_video.py --minutes 1,20 --tracker sam2 --config track_sam2 --device cuda --precision bf16
    python benchmarks/bench_video.py --minutes 1 --fps 5 --formats mot,coco,cvat,yolo --vis

Each length gets a synthetic video (``--size`` pixels, 25 frames/s, coloured rectangles moving on a textured
background, a scene cut every 20 s), encoded frame by frame with PyAV (never held in memory). Then one
``openvocab label`` process per length labels it (sampled at ``--fps``) into a fresh folder, and the script reports
that process's wall time, frames/s and peak resident memory (``ru_maxrss`` of the child, from ``os.wait4``).
Rows are printed as Markdown for ``docs/benchmarks.md``, with the command and the machine.

``--tracker`` sets the config's tracker (``--cfg-options tracker.type=...``); ``--config``, ``--vocab``,
``--device``, ``--precision`` and ``--formats`` are ``openvocab label``'s. The default config, ``tiny_random``, has
random weights: its labels are meaningless, its memory and overheads are the job's own.
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TRACKERS = {"bytetrack": "ByteTrackTracker", "sam2": "Sam2VideoTracker", "sam3": "Sam3VideoTracker"}


def make_video(path: Path, *, minutes: float, size: tuple[int, int], fps: int = 25, seed: int = 0) -> int:
    """Write the synthetic video; returns its frame count."""
    import av

    w, h = size
    rng = np.random.default_rng(seed)
    n = int(round(minutes * 60 * fps))
    texture = rng.integers(0, 40, (h, w, 3), dtype=np.uint8)
    boxes = rng.uniform(0, 1, (6, 4))
    colours = rng.integers(60, 255, (6, 3))
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=Fraction(fps))
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.options = {"preset": "ultrafast", "crf": "23"}
        for i in range(n):
            shot = i // (20 * fps)
            frame = texture + np.asarray([(37 * shot) % 200, (91 * shot) % 200, (53 * shot) % 200], np.uint8)
            t = i / fps
            for (x, y, vx, vy), col in zip(boxes, colours):
                cx = int((x + 0.1 * t * (vx - 0.5)) % 1.0 * (w - 40))
                cy = int((y + 0.1 * t * (vy - 0.5)) % 1.0 * (h - 40))
                frame[cy:cy + 40, cx:cx + 40] = col
            vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
            vf.pts = i
            for p in s.encode(vf):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return n


def run_label(video: Path, out: Path, args) -> tuple[float, float, str]:
    """``(seconds, peak RSS GB, stderr tail)`` of one ``openvocab label`` process."""
    cmd = [sys.executable, "-m", "openvocab.cli", "label", str(video), "--out", str(out), "--config", args.config,
           "--fps", str(args.fps), "--formats", args.formats, "--no-progress", "--device", args.device,
           "--precision", args.precision]
    if args.vocab:
        cmd += ["--vocab", args.vocab]
    if args.vis:
        cmd += ["--vis"]
    if args.tracker:
        cmd += ["--cfg-options", f"tracker.type={TRACKERS[args.tracker]}"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    t0 = time.monotonic()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.monotonic() - t0
        err.seek(0)
        tail = err.read().decode(errors="replace")[-2000:]
    if proc.returncode not in (0, 1):
        raise SystemExit(f"openvocab label failed ({proc.returncode}): {tail}")
    return seconds, usage.ru_maxrss / 1024 ** 2, tail  # Linux: KiB


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", default="1,20", help="comma list of video lengths in minutes (default 1,20)")
    p.add_argument("--config", default="tiny_random")
    p.add_argument("--tracker", choices=sorted(TRACKERS), default="bytetrack",
                   help="the config's tracker (default bytetrack; '' keeps the config's)")
    p.add_argument("--vocab", default="person, car, dog", help="--vocab of the job ('' : the tagger tags)")
    p.add_argument("--fps", type=float, default=2.0, help="frames labeled per second of video (default 2)")
    p.add_argument("--size", default="320x240", help="frame size WxH (default 320x240)")
    p.add_argument("--formats", default="mot,coco")
    p.add_argument("--vis", action="store_true", help="also write the overlay MP4")
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    p.add_argument("--keep", help="keep the videos and outputs in this folder")
    args = p.parse_args(argv)
    w, h = (int(v) for v in args.size.lower().split("x"))
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_video_"))
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    try:
        for minutes in [float(m) for m in args.minutes.split(",") if m.strip()]:
            video = work / f"synthetic_{minutes:g}min.mp4"
            if not video.exists():
                frames = make_video(video, minutes=minutes, size=(w, h))
            else:
                frames = int(round(minutes * 60 * 25))
            seconds, rss, _ = run_label(video, work / f"out_{minutes:g}min", args)
            labeled = int(minutes * 60 * args.fps)
            rows.append(f"| {minutes:g} min ({frames} frames, {w}x{h}) | {labeled} | {seconds:.1f} | "
                        f"{labeled / seconds:.2f} | {rss:.2f} |")
            print(rows[-1], flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    cmd = "python benchmarks/bench_video.py " + " ".join(argv if argv is not None else sys.argv[1:])
    print(f"\n`{cmd}` ({args.config}, tracker {args.tracker or 'of the config'}, {args.fps:g} frames/s, "
          f"{args.device} {args.precision}; {platform.machine()}, {os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d')})\n")
    print("| video | frames labeled | seconds | frames/s | peak RSS GB |\n|---|---|---|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
