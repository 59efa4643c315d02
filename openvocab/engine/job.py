"""A labeling job over many images: inputs, the output folder's lock and record, an engine, and the outputs.

Layout of ``OUT``: ``coco.json``, ``labels.jsonl``, ``failures.jsonl``, ``classes.txt`` (the class list every
format numbers by), ``yolo/``, ``yolo-seg/``, ``labelme/``, ``vis/`` and ``.openvocab/`` (``state.sqlite``: the durable record of finished images, keyed by resolved absolute
path; ``lock``: held while a job runs). The engine (local threads, or Ray) feeds finished images to the
writer thread, which writes per-image files and records each image; when the engine is done, the
aggregate outputs are rendered from the record in input order. So an interrupted job (``kill -9``
included) resumed with ``--resume`` — from another folder, with relative paths, or with fewer inputs —
writes the same files as one uninterrupted run over the same inputs, and never loses a finished image.
"""
from __future__ import annotations

import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Optional, Sequence

from .. import __version__, hub
from ..errors import UserError
from ..exemplars import prepare_examples
from ..image_root import common_root, outside_root
from ..images import ImageLoadError, load_image
from ..inputs import InputItem, collect_inputs
from ..outdir import (TEMP_SUFFIX, OutputError, describe_os_error, make_dirs, refuse_foreign, remove_outputs,
                      remove_stale_temp)
from ..pipeline import Pipeline
from ..registry import WRITERS
from ..video.job import VIDEO_FORMATS, VideoJob, VideoOptions  # [video] a job's videos (openvocab.video.job)
from ..writers.base import Writer, WriterContext
from .fingerprint import describe_changes, job_fingerprint
from .loader import default_workers
from .lock import OutputLock
from .outputs import FAILURES_FILE, JOB_FILES, fresh_file, job_failures, recorded_results, render_outputs
from .sink import ResultSink
from .state import STATE_DIR, JobState

log = logging.getLogger("openvocab")

#: ``--formats`` name -> the registered writer and its defaults for that format (options from the config's
#: ``writers = dict(<format>=dict(...))`` and the CLI go on top).
FORMATS: dict[str, dict] = {
    "coco": dict(type="CocoWriter"), "jsonl": dict(type="JsonlWriter"), "yolo": dict(type="YoloWriter"),
    "yolo-seg": dict(type="YoloWriter", subdir="yolo-seg", segments=True),
    "labelme": dict(type="LabelMeWriter"), "cvat": dict(type="CvatWriter"), "voc": dict(type="VocWriter"),
    "labelstudio": dict(type="LabelStudioWriter"),
    "fiftyone": dict(type="FiftyOneWriter"), "vis": dict(type="OverlayWriter"),
}
ENGINES = ("local", "ray")


class JobError(UserError):
    """The job cannot start or go on (used output folder, resume of another job...): one line, no traceback."""


@dataclass
class JobSummary:
    """What a job did. ``exit_code`` is 1 when some inputs failed, else 0.

    Attributes:
        total: inputs of this run (images found + inputs that gave none).
        labeled: images labeled by this run; skipped: already done by an earlier run.
        failed: ``{"file", "error"}`` of each input that is neither labeled nor done.
        kept: finished images in the record that are not inputs of this run (kept, not in the outputs).
        videos / frames: video inputs of this run, and frames this run labeled in them (videos count as inputs in
            ``total``/``labeled``/``skipped`` too).
        notes: lines for the job's log from its stages (label by example: the exemplar stage's calibration).
    """

    total: int = 0
    labeled: int = 0
    skipped: int = 0
    failed: list[dict] = field(default_factory=list)
    kept: int = 0
    seconds: float = 0.0
    videos: int = 0
    frames: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0


@dataclass(frozen=True)
class RayOptions:
    """``--engine ray`` settings (see :mod:`openvocab.engine.ray_engine`)."""

    address: Optional[str] = None
    num_workers: int = 1
    gpus_per_worker: float = 0.0
    cpus_per_worker: float = 1.0


def parse_formats(formats: str | Sequence[str]) -> list[str]:
    items = [f.strip().lower() for f in (formats.split(",") if isinstance(formats, str) else formats)]
    items = [f for f in items if f]
    known = list(FORMATS) + [f for f in VIDEO_FORMATS if f not in FORMATS]  # [video] mot
    bad = [f for f in items if f not in known]
    if bad:
        raise ValueError(f"Unknown output format(s) {bad}; choose from {', '.join(known)}")
    if not items:
        raise ValueError(f"No output format given; choose from {', '.join(known)}")
    return list(dict.fromkeys(items))


def run_job(pipeline: Pipeline, inputs: Sequence[str], out_dir: str | Path, *,
            formats: Sequence[str] = ("coco", "jsonl"), vis: bool = False, batch_size: int = 1,
            workers: Optional[int] = None, resume: bool = False, overwrite: bool = False,
            max_pixels: Optional[int] = None, progress: bool = True, engine: str = "local",
            ray: Optional[RayOptions] = None, writer_options: Optional[Mapping[str, dict]] = None,
            image_root: Optional[str | Path] = None, video: Optional[VideoOptions] = None) -> JobSummary:
    """Label every image and video of ``inputs`` (files, folders, globs, .txt lists) into ``out_dir``.

    Args:
        formats / vis: outputs (``--formats``, ``--vis``); writer_options: keyword arguments per format name.
        batch_size: images per pipeline call; workers: loader threads (``None``: one per CPU, ``0``: none,
            one image at a time with no overlap).
        resume: continue the job recorded in ``out_dir``; overwrite: start over in a used folder.
        engine: ``"local"`` or ``"ray"`` (``ray``: :class:`RayOptions`).
        image_root: the folder image names in the outputs are relative to (``None``: the one the job record
            holds on resume, else the deepest folder holding every input; :mod:`openvocab.image_root`).
        video: how videos are labeled (tracker, sampling, scene cuts: :class:`openvocab.video.job.VideoOptions`).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    if resume and overwrite:
        raise ValueError("--resume and --overwrite exclude each other")
    workers = default_workers() if workers is None else workers
    if workers < 0:
        raise ValueError(f"workers must be >= 0, got {workers}")
    names = parse_formats(list(formats) + (["vis"] if vis else []))
    options = dict(writer_options or {})
    if getattr(pipeline, "captioner", None) is not None and "coco" in names:  # captions.json beside coco.json
        options["coco"] = {"captions_file": "captions.json", **dict(options.get("coco") or {})}
    writers = _build_writers(names, options)
    videos = VideoJob(formats=names, writer_options=options, options=video)  # [video]
    planned = _planned_outputs(writers)
    start = time.monotonic()
    out = _output_folder(out_dir, planned)
    with OutputLock(out):
        state = JobState(out)
        try:
            return _run(pipeline, inputs, out, state, writers=writers, planned=planned, batch_size=batch_size,
                        workers=workers, resume=resume, overwrite=overwrite, max_pixels=max_pixels, progress=progress,
                        engine=engine, ray=ray or RayOptions(), image_root=image_root, start=start, videos=videos)
        finally:
            videos.close()
            state.close()


def _output_folder(out_dir: str | Path, planned: Sequence[str]) -> Path:
    """The output folder, made if missing, with its record folder. A folder that holds no job record yet may hold
    anything but the entries this job will write (:mod:`openvocab.outdir`): those are refused before anything
    is made."""
    out = Path(out_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise JobError(f"--out {out} is a file, not a folder")
    if out.is_dir() and not os.path.lexists(out / STATE_DIR):
        refuse_foreign(out, planned, owned=(), error=JobError)
    try:
        out.mkdir(parents=True, exist_ok=True)
        make_dirs(out, STATE_DIR)
        with tempfile.TemporaryFile(dir=out / STATE_DIR, prefix=".probe.", suffix=TEMP_SUFFIX):
            pass
    except OutputError as e:
        raise JobError(f"cannot write in the output folder: {e}") from None
    except OSError as e:
        raise JobError(f"cannot write in the output folder: {describe_os_error(e, out)}") from None
    return out.resolve()


def _planned_outputs(writers: Sequence[Writer]) -> list[str]:
    """Every entry the job will make directly in the output folder; two writers may not share one."""
    seen: dict[str, str] = {}
    for w in writers:
        for name in w.outputs():
            if name in seen or name in JOB_FILES or name == STATE_DIR:
                other = seen.get(name, "the job itself")
                raise JobError(f"two outputs would be written to the same place, {name!r}: {type(w).__name__} and "
                               f"{other}; give one of them another subdir/filename")
            seen[name] = type(w).__name__
    return list(seen) + list(JOB_FILES)


def _run(pipeline: Pipeline, inputs: Sequence[str], out: Path, state: JobState, *, writers: list[Writer],
         planned: list[str], batch_size: int, workers: int, resume: bool, overwrite: bool, max_pixels: Optional[int],
         progress: bool, engine: str, ray: RayOptions, image_root: Optional[str | Path], start: float,
         videos: VideoJob) -> JobSummary:
    from tqdm import tqdm

    items, problems = collect_inputs(list(inputs), exclude=[out], videos=True)
    image_items = videos.split(items)  # [video] the others are videos (by content)
    if videos.videos:
        planned = _planned_outputs(writers + videos.writers)
        writers = writers if image_items else []  # a job of videos only writes no empty image datasets
        if engine == "ray":
            raise JobError(f"--engine ray does not label videos yet ({len(videos.videos)} video input(s), e.g. "
                           f"{videos.videos[0].file}): label videos with --engine local")
    owned = _owned_outputs(state.meta(), out)
    if not overwrite:  # before the models load: a user's file in the way stops the job at once
        refuse_foreign(out, planned, owned, error=JobError)
    with hub.recording() as files:
        setup_pipeline(pipeline)  # a missing checkpoint stops the job here, before any output is touched
    videos.setup(pipeline)  # [video] the tracker (its files are kept apart from the image fingerprint)
    notes = _prepare_examples(pipeline)  # label by example: what the examples need, once, before any image
    fingerprint = job_fingerprint(stages=pipeline.stage_configs, vocabulary=pipeline.vocabulary,
                                  precision=pipeline.precision, clip_boxes=pipeline.clip_boxes, files=files,
                                  examples=pipeline.examples)
    meta, owned = _check_reuse(state, out, fingerprint, resume=resume, overwrite=overwrite, owned=owned)
    if resume:
        videos.check_resume(meta.get("video"))  # [video]
    refuse_foreign(out, planned, owned, error=JobError)
    remove_stale_temp(out, owned)  # what a killed run left half-written
    classes = meta.get("classes") if resume and "classes" in meta else pipeline.class_names()
    root = _image_root(image_root, meta.get("image_root") if resume else None, items)
    state.set_meta({"fingerprint": fingerprint, "classes": classes, "image_root": root,
                    "openvocab_version": __version__, "created": meta.get("created", time.time()),
                    "updated": time.time(), OUTPUTS_KEY: sorted(set(owned) | set(planned)),
                    **({"video": videos.settings()} if videos.videos else {})})
    done = state.done_keys(i.key for i in items)
    todo = [i for i in items if i.key not in done]
    summary = JobSummary(total=len(items) + len(problems), skipped=len(items) - len(todo),
                         kept=max(0, state.count() - len(done)), videos=len(videos.videos), notes=notes)
    video_keys = {i.key for i in videos.videos}
    if summary.kept:
        log.warning("%d finished images in %s are not inputs of this run: kept in the record, left out of the "
                    "outputs (run with them to include them)", summary.kept, out)
    context = WriterContext(classes=None if classes is None else tuple(classes), names={i.file: i.name for i in items},
                            load_image=_reload, image_root=root, replay=True)
    _open_writers(writers, out, context)
    videos.open(out, context)
    failures_path = out / FAILURES_FILE
    bar = tqdm(total=len(todo) + len(problems), unit="img", desc="labeling", disable=not progress,
               dynamic_ncols=True, smoothing=0.1)
    sink = ResultSink(state, [w for w in writers if w.per_image], fresh_file(failures_path),
                      threaded=workers > 0 or engine == "ray", progress=bar, reload=_reload)
    finished = False
    try:
        for p in problems:
            sink.failure(p, p.reason)
        _engine(engine)(pipeline, [i for i in todo if i.key not in video_keys], sink, batch_size=batch_size,
                        workers=workers, max_pixels=max_pixels, ray=ray)
        videos.run(pipeline, [i for i in todo if i.key in video_keys], sink, batch_size=batch_size,  # [video]
                   workers=workers, max_pixels=max_pixels, progress=progress)
        finished = True
    finally:
        try:
            sink.close()
        except BaseException:
            finished = False  # the writer side failed: outputs are not rendered from a half-written state
            raise
        finally:
            bar.close()
            if finished or _interrupted():
                job_classes = videos.classes(state, classes, lambda: (  # [video] + labels only videos have
                    label for r in recorded_results(state, image_items)() for label in r.detections.labels))
                videos.render(state, job_classes, max_pixels=max_pixels, replay=finished)
                render_outputs(writers, state, image_items, problems, failures_path, job_classes, all_items=items)
    summary.labeled = sink.counts.labeled
    summary.frames = videos.frames_labeled
    summary.failed = job_failures(state, items, problems)
    summary.seconds = time.monotonic() - start
    return summary


def _prepare_examples(pipeline: Pipeline) -> list[str]:
    """The exemplar stage's work on the job's examples (:func:`openvocab.exemplars.prepare_examples`), logged."""
    try:
        notes = prepare_examples(pipeline)
    except ValueError as e:
        raise JobError(f"cannot use the examples: {e}") from None
    for line in notes:
        log.info("%s", line)
    return notes


def setup_pipeline(pipeline: Pipeline) -> Pipeline:
    """``pipeline.setup()``; a stage refusing its configuration (``ValueError``) is a :class:`JobError`."""
    try:
        return pipeline.setup()
    except ValueError as e:
        raise JobError(f"cannot set up the pipeline: {e}") from None


#: the job record's list of the entries the job made directly in its output folder
OUTPUTS_KEY = "outputs"


def _owned_outputs(meta: dict, out: Path) -> list[str]:
    """The entries of ``out`` the recorded job made. A record of openvocab <= 0.1 does not list them: there, the
    standard output names that exist are its own."""
    if OUTPUTS_KEY in meta:
        return list(meta[OUTPUTS_KEY])
    if "fingerprint" not in meta:
        return []
    standard = {n for cfg in FORMATS.values() for n in WRITERS.build(dict(cfg)).outputs()} | set(JOB_FILES)
    return sorted(n for n in standard if os.path.lexists(out / n))


def _check_reuse(state: JobState, out: Path, fingerprint: dict, *, resume: bool, overwrite: bool,
                 owned: list[str]) -> tuple[dict, list[str]]:
    """``(meta, owned)`` of the recorded job this run continues; ``--overwrite`` removes its outputs first."""
    meta = state.meta()
    used = state.count() > 0
    if overwrite and (used or owned):
        remove_outputs(out, owned)
        if used:
            backup = state.reset()
            log.warning("--overwrite: starting over in %s (the previous job's outputs are removed; its record is "
                        "kept as %s)", out, backup)
        return {}, []
    if used and not resume:
        raise JobError(f"{out} already holds {state.count()} labeled images of an earlier job: add --resume to "
                       "continue it, --overwrite to start over, or choose another --out")
    if resume and "fingerprint" in meta:
        changes = describe_changes(meta["fingerprint"], fingerprint)
        if changes:
            raise JobError(f"cannot resume {out}: this job differs from the one that wrote it:\n  - "
                           + "\n  - ".join(changes)
                           + "\n  Resume with the original settings, or use --overwrite to start over.")
    return meta, owned


def _image_root(given: Optional[str | Path], recorded: Optional[str], items: Sequence[InputItem]) -> str:
    """The job's image root: ``given`` (``--image-root``), else the recorded one (resume), else the deepest
    folder holding every input; every input must lie under it."""
    if given is not None:
        root = os.path.abspath(os.path.expanduser(os.fspath(given)))
        if not os.path.isdir(root):
            raise JobError(f"--image-root {given}: not a folder")
        if recorded is not None and os.path.realpath(root) != os.path.realpath(recorded):
            raise JobError(f"--image-root {given} differs from this job's image root {recorded}: resume with "
                           "the same --image-root (or none), or use --overwrite to start over")
        what = f"--image-root {given}"
    elif recorded is not None:
        root, what = recorded, f"this job's image root {recorded}"
    else:
        return common_root([i.file for i in items])
    outside = outside_root([i.file for i in items], root)
    if outside:
        more = f" and {len(outside) - 3} more" if len(outside) > 3 else ""
        raise JobError(f"{len(outside)} input(s) are not under {what}: {', '.join(outside[:3])}{more}; "
                       "give an --image-root that holds every input")
    return root


def _build_writers(names: list[str], options: dict) -> list[Writer]:
    """The writers of ``names`` with their options (a bad option is a :class:`JobError`, before anything is made)."""
    writers = []
    for n in (n for n in names if n in FORMATS):  # [video] formats only videos have are VideoJob's
        opts = {**FORMATS[n], **dict(options.get(n) or {})}
        try:
            writers.append(WRITERS.build(opts))
        except (TypeError, ValueError, KeyError, ImportError) as e:
            given = {k: v for k, v in opts.items() if k != "type"}
            raise JobError(f"writer {n!r} ({opts['type']}, options {given}): {e}") from None
    return writers


def _open_writers(writers: list[Writer], out: Path, context: WriterContext) -> None:
    for w in writers:
        try:
            w.open(out, context=context)
        except (TypeError, ValueError, KeyError, ImportError) as e:
            raise JobError(f"writer {type(w).__name__}: {e}") from None


def _engine(name: str) -> Callable:
    if name == "ray":
        from .ray_engine import run_ray

        return run_ray

    def local(pipeline, todo, sink, *, batch_size, workers, max_pixels, ray):
        from .local import run_local

        run_local(pipeline, todo, sink, batch_size=batch_size, workers=workers, max_pixels=max_pixels)

    return local


def _reload(file: str):
    try:
        return load_image(file)[0]
    except ImageLoadError:
        return None


def _interrupted() -> bool:
    import sys

    exc = sys.exc_info()[1]
    return isinstance(exc, KeyboardInterrupt)


