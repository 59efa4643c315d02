"""The demo's Video tab, without the page: label one uploaded clip as ``openvocab label`` does (the job, its writers,
its tracker) and hand back the overlay MP4 and the MOT / COCO video downloads.

What a client sends is data: the clip only as an upload the page received (:func:`demo.logic.upload_path`), the
config among the page's own (:class:`demo.logic.ConfigMenu`), the tracking mode among :data:`MODES` (the config's
own tracker, or one of the three registered ones with its default model), a frame rate as a number in
``[0, MAX_FPS]`` (0: every frame). A clip is labeled on at most :data:`MAX_FRAMES` sampled frames.
"""
from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Optional

from openvocab.config import UserError

from .logic import LabelerCache, Settings, _user_errors, config_info

#: the page's tracking modes -> the tracker config (``None``: the config's own, else the job's default)
MODES: dict[str, Optional[dict]] = {
    "config": None,
    "bytetrack": dict(type="ByteTrackTracker"),
    "sam2": dict(type="Sam2VideoTracker"),
    "sam3": dict(type="Sam3VideoTracker"),
}
MAX_FPS = 30.0
#: the most frames of a clip the page labels
MAX_FRAMES = 300


@dataclasses.dataclass
class VideoOutput:
    overlay: Optional[str] = None  #: the overlay MP4
    files: tuple = (None, None)  #: MOT zip, COCO video JSON
    status: str = ""


def check_mode(mode: object) -> Optional[dict]:
    if not isinstance(mode, str) or mode not in MODES:
        raise UserError(f"mode must be one of {', '.join(MODES)}")
    return MODES[mode]


def check_fps(fps: object) -> Optional[float]:
    try:
        value = float(fps or 0)
    except (TypeError, ValueError):
        value = -1.0
    if not 0.0 <= value <= MAX_FPS:
        raise UserError(f"frames per second must be a number in [0, {MAX_FPS:g}] (0: every frame)")
    return value or None


def run_video(cache: LabelerCache, file: Optional[str], settings: Settings, mode: str, fps: object,
              vocabulary: str = "", progress: Optional[Callable[[float, str], None]] = None, *,
              out_root: Optional[Path] = None) -> VideoOutput:
    """Label one clip (a path :func:`demo.logic.upload_path` accepted) with ``mode``'s tracker; problems come back
    as ``status`` (never raised)."""
    from openvocab.video.job import VideoOptions
    from openvocab.video.source import Sampling

    if not file:
        return VideoOutput(status="**Error:** upload a video clip first.")
    try:
        tracker = check_mode(mode)
        rate = check_fps(fps)
        info = config_info(settings.config)
        typed = isinstance(vocabulary, str) and vocabulary.strip()
        if not typed and not info.vocabulary and ("tagger" not in info.stages or "tagger" not in settings.stages):
            return VideoOutput(status="**Error:** without a tagger, type a vocabulary (e.g. `cat, dog`).")
        labeler = cache.get(settings)
        base = labeler.video or VideoOptions()
        options = dataclasses.replace(base, tracker=tracker or base.tracker,
                                      sampling=Sampling(fps=rate, max_frames=MAX_FRAMES))
        if progress:
            progress(0.05, "labeling the clip")
        folder = Path(tempfile.mkdtemp(prefix="openvocab-video-", dir=out_root))
        out = folder / "out"
        pipe = labeler.pipeline
        kept = pipe.tagger, pipe.vocabulary
        if isinstance(vocabulary, str) and vocabulary.strip():  # this run's classes instead of the tagger (as Label)
            from openvocab.pipeline import parse_vocabulary

            pipe.tagger, pipe.vocabulary = None, parse_vocabulary(vocabulary)
        try:
            summary = labeler.label_folder([file], out, formats=("mot", "coco"), vis=True, progress=False,
                                           video=options, workers=0)
        finally:  # the cached labeler serves the next run as it was (runs take turns: one at a time)
            pipe.tagger, pipe.vocabulary = kept
    except Exception as e:  # noqa: BLE001 - every failure becomes a message on the page
        return VideoOutput(status=f"**Error:** {e}" if isinstance(e, _user_errors()) else
                           f"**Error** ({type(e).__name__}): {e}")
    if summary.failed:
        return VideoOutput(status=f"**Error:** {Path(file).name}: {summary.failed[0]['error']}")
    name = Path(file).stem
    overlay = next((out / "vis_video").glob("*.mp4"), None)
    mot = Path(shutil.make_archive(str(folder / f"{name}_mot"), "zip", root_dir=out / "mot"))
    coco = folder / f"{name}_coco_video.json"
    shutil.copyfile(out / "coco_video.json", coco)
    data = json.loads(coco.read_text())
    return VideoOutput(overlay=str(overlay) if overlay else None, files=(mot, coco),
                       status=f"{Path(file).name}: {len(data['images'])} frames, {len(data['tracks'])} tracks, "
                              f"{len(data['annotations'])} boxes.")
