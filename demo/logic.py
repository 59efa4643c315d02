"""What the demo page does, without the page: build (and keep) a labeler for the chosen settings, run it on
one image, and turn the result into the page's tables, overlay and download files. Everything goes through
the Python API (:class:`openvocab.Labeler`) and the job's writers (:meth:`openvocab.LabeledImage.save`).

What a client sends is data, never code or a path to load: a config is chosen by its name among those the page
offers (:class:`ConfigMenu`: the shipped configs and the one named on ``openvocab demo``'s command line; any
other value gets the same one-line refusal, so the page tells nothing about the server's files), device,
precision and stages among the page's choices, thresholds as numbers in ``[0, 1]``, and an image only as a file
Gradio received as an upload (or a bundled picture), read as pixels."""
from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Callable, Optional, Sequence

from openvocab.config import PIPELINE_CONFIGS, UserError, configs_dir, load_config, resolve_config, shipped_dir
from openvocab.labeled import LabeledImage
from openvocab.labeler import Labeler
from openvocab.masks import mask_area
from openvocab.pipeline import MODEL_STAGES, parse_vocabulary
from openvocab.structures import TagSource

log = logging.getLogger("openvocab.demo")

#: optional stages the page can switch off ("backends"), by the name shown -> pipeline stage
OPTIONAL_STAGES = {"tagger": "tagger", "mask head": "mask_head", "stuff masks": "stuff_segmenter"}
TAG_HEADERS = ["tag", "score", "source", "boxable", "Chinese name"]
REGION_HEADERS = ["#", "label", "score", "box x1,y1,x2,y2", "mask area", "mask score", "concepts", "region caption"]
GROUNDING_HEADERS = ["#", "phrase", "score", "box x1,y1,x2,y2", "mask area"]
#: errors shown to the user as one readable line (anything else is logged with its traceback too)
USER_ERRORS: tuple[type[BaseException], ...] = (UserError, ValueError, FileNotFoundError)


def _user_errors() -> tuple[type[BaseException], ...]:
    from openvocab.checkpoint import CheckpointError
    from openvocab.hub import MissingFileError
    from openvocab.images import ImageLoadError

    return USER_ERRORS + (MissingFileError, CheckpointError, ImageLoadError)


def demo_images() -> list[str]:
    """The bundled pictures (``demo/images``)."""
    return [str(p) for p in sorted((shipped_dir("demo") / "images").glob("*.jpg"))]


#: the most a client may send as a vocabulary (characters)
MAX_VOCABULARY_CHARS = 20_000
PRECISIONS = ("fp32", "bf16", "fp16")


class ConfigMenu:
    """The pipeline configs the page offers, by name: those of ``configs/`` (known ones first) and ``extra``, the
    one named on ``openvocab demo``'s command line by the person who started it. A name a client sends is looked
    up here and nowhere else: :meth:`path` refuses any other value with the same message, whatever it is."""

    def __init__(self, extra: Optional[str] = None) -> None:
        names = [n for n in PIPELINE_CONFIGS if (configs_dir() / f"{n}.py").is_file()]
        names += sorted(p.stem for p in configs_dir().glob("*.py") if p.stem not in names)
        self._paths = {n: str(configs_dir() / f"{n}.py") for n in names}
        if extra and extra not in self._paths:
            self._paths = {extra: str(resolve_config(extra)), **self._paths}

    @property
    def names(self) -> list[str]:
        return list(self._paths)

    def path(self, name: object) -> str:
        """The file of the offered config ``name``; :class:`UserError` for anything else."""
        if not isinstance(name, str) or name not in self._paths:
            raise UserError("unknown config: choose one of the page's configs")
        return self._paths[name]


def config_choices(extra: Optional[str] = None) -> list[str]:
    """The names of :class:`ConfigMenu`'s configs."""
    return ConfigMenu(extra).names


def upload_path(file: object, *, roots: Sequence[os.PathLike | str]) -> str:
    """``file`` (a path Gradio handed to the handler) if it is a regular file inside one of ``roots`` (Gradio's
    upload folder, the bundled pictures); :class:`UserError` otherwise, naming nothing of the server."""
    if isinstance(file, dict):  # FileData as sent over the API
        file = file.get("path")
    if not isinstance(file, (str, os.PathLike)) or not str(file):
        raise UserError("upload an image or pick one of the examples first.")
    real = os.path.realpath(file)
    for root in roots:
        base = os.path.realpath(root)
        if os.path.commonpath([real, base]) == base and os.path.isfile(real):
            return real
    raise UserError("that file is not an upload of this page: upload an image or pick one of the examples.")


@dataclasses.dataclass(frozen=True)
class ConfigInfo:
    """What the page shows about a config before running it."""

    stages: tuple[str, ...]  #: model stages the config has (tagger, detector, mask_head, segmenter, stuff_segmenter)
    random_stages: tuple[str, ...]  #: stages built with random weights (``checkpoint=None``)
    box_threshold: Optional[float]  #: the detector's, when its config has one
    text_threshold: Optional[float]
    vocabulary: tuple[str, ...] = ()  #: the config's own vocabulary (configs without a tagger)

    @property
    def banner(self) -> str:
        if not self.random_stages:
            return ""
        return (f"⚠️ **Random weights** ({', '.join(s.replace('_', ' ') for s in self.random_stages)}): this config "
                "exercises the toolchain only, its tags, boxes, masks and captions are **meaningless**. Choose "
                "`full_pipeline` (official checkpoints) for real labels.")


def config_info(path: str) -> ConfigInfo:
    """What the page shows of the config in ``path`` (a :meth:`ConfigMenu.path`)."""
    cfg = load_config(path)
    vocab = cfg.get("vocabulary")
    stages = tuple(s for s in MODEL_STAGES if cfg.get(s))
    rand = tuple(s for s in stages if "checkpoint" in cfg[s] and cfg[s]["checkpoint"] is None)
    det = cfg.get("detector") or {}
    return ConfigInfo(stages=stages, random_stages=rand, box_threshold=det.get("box_threshold"),
                      text_threshold=det.get("text_threshold"), vocabulary=tuple(parse_vocabulary(vocab) if vocab else ()))


@dataclasses.dataclass(frozen=True)
class Settings:
    """The page's choice of pipeline: config (a :meth:`ConfigMenu.path`), backends (device, precision, optional
    stages) and thresholds (``None``: the config's). Every field is checked: ``UserError`` for a value the page
    does not offer."""

    config: str
    device: str = "cpu"
    precision: str = "fp32"
    stages: tuple[str, ...] = tuple(OPTIONAL_STAGES)
    box_threshold: Optional[float] = None
    text_threshold: Optional[float] = None

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise UserError(f"precision must be one of {', '.join(PRECISIONS)}")
        if not all(isinstance(s, str) and s in OPTIONAL_STAGES for s in self.stages):
            raise UserError(f"stages must be among {', '.join(OPTIONAL_STAGES)}")
        for name in ("box_threshold", "text_threshold"):
            value = getattr(self, name)
            if value is None:
                continue
            try:
                ok = 0.0 <= float(value) <= 1.0
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise UserError(f"{name.replace('_', ' ')} must be a number in [0, 1]")

    def options(self) -> dict:
        info = config_info(self.config)
        opts = {}
        for key, value, default in (("box_threshold", self.box_threshold, info.box_threshold),
                                    ("text_threshold", self.text_threshold, info.text_threshold)):
            if value is not None and default is not None and float(value) != float(default):
                opts[f"detector.{key}"] = float(value)
        return opts

    def without(self) -> tuple[str, ...]:
        return tuple(stage for shown, stage in OPTIONAL_STAGES.items() if shown not in self.stages)


class LabelerCache:
    """Keeps the labeler of the last settings (models stay loaded while the settings do not change)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: Optional[tuple] = None
        self._labeler: Optional[Labeler] = None

    def get(self, settings: Settings) -> Labeler:
        options = settings.options()
        key = (settings.config, settings.device, settings.precision, settings.without(), tuple(sorted(options.items())))
        with self._lock:
            if key != self._key:
                self._labeler = self._key = None  # free the old models first
                # tagger switched off: each run gives its vocabulary (a placeholder lets the pipeline be built)
                has_vocab = bool(config_info(settings.config).vocabulary)
                placeholder = "object" if "tagger" in settings.without() and not has_vocab else None
                self._labeler = Labeler.from_config(settings.config, device=settings.device,
                                                    precision=settings.precision, options=options,
                                                    without=settings.without(), vocabulary=placeholder)
                self._key = key
            return self._labeler


def _named(labeled: LabeledImage, name: str) -> LabeledImage:
    """The result as if the input were called ``name`` (the upload's own name, not gradio's temp path)."""
    info = dataclasses.replace(labeled.result.image, file=name)
    return dataclasses.replace(labeled, result=dataclasses.replace(labeled.result, image=info))


def tag_rows(labeled: LabeledImage) -> list[list]:
    """One row per image-level tag; open-set (and user) tags are marked in ``source``."""
    rows = []
    for t in labeled.tags:
        source = t.source.value if t.source == TagSource.CLOSED_SET else f"★ {t.source.value}"
        rows.append([t.name, round(float(t.score), 3), source, "" if t.boxable is None else ("yes" if t.boxable else "no"),
                     t.name_zh or ""])
    return rows


def _box(b) -> str:
    return ", ".join(f"{float(v):.1f}" for v in b)


def region_rows(labeled: LabeledImage) -> list[list]:
    """One row per box: label, score, box, and its mask's area, score, concepts and caption (when present)."""
    dets, regions = labeled.detections, labeled.regions
    rows = []
    for i in range(len(dets)):
        row = [i + 1, dets.labels[i], round(float(dets.scores[i]), 3), _box(dets.boxes[i]), "", "", "", ""]
        if regions is not None:
            row[4] = int(mask_area(regions.masks[i]))
            row[5] = round(float(regions.mask_scores[i]), 3)
            if regions.concepts is not None:
                row[6] = ", ".join(f"{c.name} {float(c.score):.2f}" for c in regions.concepts[i])
            if regions.captions is not None:
                row[7] = regions.captions[i]
        rows.append(row)
    return rows


def downloads(labeled: LabeledImage, folder: Path) -> tuple[Path, Path, Path]:
    """``(coco.json, labelme json, yolo zip)`` of the image, written by the job's writers into ``folder``."""
    files = labeled.save(folder, formats=("coco", "labelme", "yolo"))
    stem = Path(labeled.info.file).stem
    yolo_zip = Path(shutil.make_archive(str(folder / f"{stem}_yolo"), "zip", root_dir=folder / "yolo"))
    coco = folder / f"{stem}_coco.json"
    files["coco"][0].rename(coco)
    return coco, files["labelme"][0], yolo_zip


@dataclasses.dataclass
class LabelOutput:
    overlay: object = None  #: PIL image
    tags: list = dataclasses.field(default_factory=list)
    regions: list = dataclasses.field(default_factory=list)
    files: tuple = (None, None, None)  #: coco, labelme, yolo zip
    status: str = ""


Progress = Callable[[float, str], None]


def _fail(e: BaseException) -> str:
    from openvocab.images import ImageLoadError

    if isinstance(e, ImageLoadError):  # name the upload as the user knows it, not by gradio's temp path
        return f"**Error:** {Path(e.file).name}: {e.message}"
    if not isinstance(e, _user_errors()):
        log.exception("demo run failed")
        return f"**Error** ({type(e).__name__}): {e}"
    return f"**Error:** {e}"


def run_label(cache: LabelerCache, file: Optional[str], settings: Settings, vocabulary: str,
              progress: Optional[Progress] = None, *, out_root: Optional[Path] = None) -> LabelOutput:
    """Label one uploaded or picked image (a path :func:`upload_path` accepted); problems come back as ``status``
    (never raised)."""
    if not file:
        return LabelOutput(status="**Error:** upload an image or pick one of the examples first.")
    if not isinstance(vocabulary, str) or len(vocabulary) > MAX_VOCABULARY_CHARS:
        return LabelOutput(status=f"**Error:** the vocabulary must be text of at most {MAX_VOCABULARY_CHARS} characters.")
    vocab = vocabulary.strip() or None
    try:
        info = config_info(settings.config)
        if vocab is None and not info.vocabulary and ("tagger" not in info.stages or "tagger" not in settings.stages):
            return LabelOutput(status="**Error:** without a tagger, type a vocabulary (e.g. `cat, dog`).")
        labeler = cache.get(settings)
        labeled = _named(labeler.label(file, vocabulary=vocab, progress=progress), Path(file).name)
        folder = Path(tempfile.mkdtemp(prefix="openvocab-demo-", dir=out_root))
        files = downloads(labeled, folder)
    except Exception as e:  # noqa: BLE001 - every failure becomes a message on the page
        return LabelOutput(status=_fail(e))
    n = len(labeled)
    masks = "" if labeled.regions is None else f", {len(labeled.regions)} masks"
    caption = f" Caption: *{labeled.caption}*" if labeled.caption else ""
    return LabelOutput(overlay=labeled.render(), tags=tag_rows(labeled), regions=region_rows(labeled), files=files,
                       status=f"{Path(file).name}: {len(labeled.tags)} tags, {n} boxes{masks}.{caption}")


def run_grounding(cache: LabelerCache, file: Optional[str], text: str, settings: Settings,
                  progress: Optional[Progress] = None) -> tuple[object, list, str]:
    """Free-text grounding of ``text`` in one image: ``(overlay, rows, status)``."""
    if not file:
        return None, [], "**Error:** upload an image or pick one of the examples first."
    if not isinstance(text, str) or len(text) > MAX_VOCABULARY_CHARS:
        return None, [], f"**Error:** the text must be at most {MAX_VOCABULARY_CHARS} characters."
    if not text.strip():
        return None, [], "**Error:** type the text to find, e.g. `a red circle`."
    try:
        labeler = cache.get(settings)
        if progress:
            progress(0.1, "grounding")
        labeled = _named(labeler.detect_text(file, text), Path(file).name)
    except Exception as e:  # noqa: BLE001
        return None, [], _fail(e)
    rows = [r[:4] + [r[4]] for r in region_rows(labeled)]
    return labeled.render(), rows, f"{Path(file).name}: {len(labeled)} boxes for {text!r}."


#: the most prompts one click-to-segment run takes
MAX_PROMPTS = 64


def add_click(prompts: Sequence[tuple], mode: str, x: object, y: object) -> list[tuple]:
    """The prompts after a click at ``(x, y)`` (image pixels): ``("point", x, y)`` in point mode; in box mode the
    first click opens a box and the second closes it (``("box", x1, y1, x2, y2)``). Bad values raise ``UserError``."""
    try:
        fx, fy = float(x), float(y)
    except (TypeError, ValueError):
        raise UserError("a click must be two numbers") from None
    if not (0 <= fx < 1e5 and 0 <= fy < 1e5):
        raise UserError("a click must lie on the image")
    out = [tuple(p) for p in prompts]
    if len(out) >= MAX_PROMPTS:
        raise UserError(f"at most {MAX_PROMPTS} prompts; clear them first")
    if mode == "point":
        return out + [("point", fx, fy)]
    if mode != "box":
        raise UserError("mode must be 'point' or 'box'")
    if out and out[-1][0] == "corner":
        (_, x0, y0) = out.pop()
        return out + [("box", min(x0, fx), min(y0, fy), max(x0, fx), max(y0, fy))]
    return out + [("corner", fx, fy)]


def run_prompts(cache: LabelerCache, file: Optional[str], settings: Settings,
                prompts: Sequence[tuple]) -> tuple[object, list, str]:
    """Masks of clicked points and drawn boxes with the config's mask head (SAM, TAP, PSALM...): ``(overlay, rows,
    status)``; each point is its own prompt, each box its own prompt."""
    import numpy as np

    if not file:
        return None, [], "**Error:** upload an image first, then click on it."
    ready = [p for p in prompts if p[0] in ("point", "box")]
    if not ready:
        return None, [], "**Error:** click on the image to add a point (or two clicks for a box) first."
    try:
        labeler = cache.get(settings)
        boxes = [p[1:] for p in ready if p[0] == "box"]
        points = [[p[1:]] for p in ready if p[0] == "point"]
        parts = []
        if boxes:
            parts.append(labeler.segment_prompts(file, boxes=np.asarray(boxes, np.float32)))
        if points:
            parts.append(labeler.segment_prompts(file, points=np.asarray(points, np.float32),
                                                 point_labels=np.ones((len(points), 1), np.int64)))
    except Exception as e:  # noqa: BLE001
        return None, [], _fail(e)
    labeled = _named(parts[0], Path(file).name) if len(parts) == 1 else _merged(parts, Path(file).name)
    return (labeled.render(), region_rows(labeled),
            f"{Path(file).name}: {len(labeled)} masks ({len(boxes)} boxes, {len(points)} points).")


def _merged(parts: Sequence[LabeledImage], name: str) -> LabeledImage:
    from openvocab.structures import Instances

    both = Instances.concatenate([Instances(p.detections, p.regions) for p in parts])
    k = iter(range(1, len(both) + 1))
    dets = dataclasses.replace(both.detections, labels=tuple(f"prompt {next(k)}" for _ in range(len(both))),
                               phrases=None)
    result = dataclasses.replace(parts[0].result, detections=dets, regions=both.regions)
    return _named(dataclasses.replace(parts[0], result=result), name)


def stage_choices(info: ConfigInfo) -> Sequence[str]:
    return [shown for shown, stage in OPTIONAL_STAGES.items() if stage in info.stages]
