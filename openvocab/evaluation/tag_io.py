"""Read image-tag ground truth and tag predictions into :class:`TagGroundTruth` / :class:`TagPredictions`.

Ground truth (``--tags-gt``), one of:

* **JSONL**, one object per image: ``{"file": str, "tags": [...], "negative_tags"?: [...], "verified"?: [...]}``.
  ``tags`` entries are names or ``{"name", "confidence"?}`` objects (``confidence`` 0 marks a verified-absent
  tag, as OpenImages' human-verified labels do). ``file_name`` or ``image`` may replace ``file``.
* **COCO JSON**: an image's positive tags are the category names of its annotations; LVIS'
  ``neg_category_ids`` per image lists verified-absent classes.

Which tags of an image count (OpenImages-style): when an image has ``negative_tags``, ``verified``,
``neg_category_ids`` or any ``confidence: 0`` entry, only its annotated tags count (positives plus the
verified absent ones; ``verified`` lists tags checked either way) and every other tag is *ignored* for
that image. Otherwise the ground truth is taken as exhaustive: every other tag of the evaluated
vocabulary is a negative for the image. The vocabulary is the COCO file's category names, or every
tag named anywhere in a JSONL ground truth.

Predictions (``--tags-pred``): the pipeline's ``labels.jsonl`` (``{"file", "tags": [{"name", "score"}]}``,
the tags that passed the tagger's thresholds) or its ``coco.json`` (``images[].tags``). An optional
``"scores"`` per image (``{name: score}`` or a list of ``{"name", "score"}``) gives all-tag scores used for
ranking; tags listed in ``tags`` are the ones that *fired*.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from .readers import NameMapper, PathLike, iter_jsonl, read_json


@dataclass(frozen=True)
class TagGroundTruth:
    """Image-level tag ground truth, names normalised.

    Attributes:
        positives: ``{file: tags present}``.
        negatives: ``{file: verified-absent tags}``, or ``None`` for an image whose ground truth is
            exhaustive (every other vocabulary tag is negative).
        vocabulary: the evaluated tags, sorted.
    """

    positives: dict[str, frozenset]
    negatives: dict[str, Optional[frozenset]]
    vocabulary: tuple[str, ...]


@dataclass(frozen=True)
class TagPredictions:
    """Tag predictions, names normalised.

    Attributes:
        scores: ``{file: {tag: ranking score}}`` (tags without a score were not retrieved).
        fired: ``{file: tags that passed the tagger's thresholds}``.
    """

    scores: dict[str, dict[str, float]]
    fired: dict[str, frozenset]


def _file_of(obj: dict, where: str) -> str:
    for key in ("file", "file_name", "image"):
        if isinstance(obj.get(key), str):
            return obj[key]
    raise ValueError(f"{where}: missing the image's file name ('file')")


def _names(value: Any, where: str, key: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError(f"{where}: {key!r} must be a list, got {type(value).__name__}")
    return value


def _gt_entry(obj: dict, where: str, mapper: NameMapper) -> tuple[str, frozenset, Optional[frozenset]]:
    pos, neg, verified = set(), set(), set()
    partial = "negative_tags" in obj or "verified" in obj
    for t in _names(obj.get("tags", obj.get("labels")), where, "tags"):
        if isinstance(t, str):
            pos.add(mapper(t))
        elif isinstance(t, dict) and isinstance(t.get("name"), str):
            conf = t.get("confidence", 1)
            if not isinstance(conf, (int, float)):
                raise ValueError(f"{where}: tag {t['name']!r} has a non-numeric confidence {conf!r}")
            if conf > 0:
                pos.add(mapper(t["name"]))
            else:
                neg.add(mapper(t["name"]))
                partial = True
        else:
            raise ValueError(f"{where}: a tag must be a name or an object with a 'name', got {t!r}")
    for key, dest in (("negative_tags", neg), ("verified", verified)):
        for t in _names(obj.get(key), where, key):
            name = t.get("name") if isinstance(t, dict) else t
            if not isinstance(name, str):
                raise ValueError(f"{where}: {key!r} entries must be tag names, got {t!r}")
            dest.add(mapper(name))
    if pos & neg:
        raise ValueError(f"{where}: tags both present and absent: {sorted(pos & neg)}")
    negatives = frozenset((neg | verified) - pos) if partial else None
    return _file_of(obj, where), frozenset(pos), negatives


def _read_gt_coco(data: dict, path: PathLike, mapper: NameMapper) -> TagGroundTruth:
    try:
        cats = {c["id"]: mapper(c["name"]) for c in data.get("categories", [])}
        files = {im["id"]: im["file_name"] for im in data["images"]}
        pos: dict[str, set] = {f: set() for f in files.values()}
        neg: dict[str, Optional[frozenset]] = {}
        for im in data["images"]:
            if "neg_category_ids" in im:
                neg[im["file_name"]] = frozenset(cats[c] for c in im["neg_category_ids"])
            else:
                neg[im["file_name"]] = None
        for a in data.get("annotations", []):
            pos[files[a["image_id"]]].add(cats[a["category_id"]])
    except (KeyError, TypeError) as e:
        raise ValueError(f"{path}: malformed COCO ground truth ({type(e).__name__}: {e})") from None
    return TagGroundTruth(positives={f: frozenset(p) for f, p in pos.items()}, negatives=neg,
                          vocabulary=tuple(sorted(set(cats.values()))))


def read_tag_ground_truth(path: PathLike, *, mapper: Optional[NameMapper] = None) -> TagGroundTruth:
    """Read a JSONL or COCO tag ground truth (see the module docstring)."""
    mapper = mapper or NameMapper()
    p = Path(path)
    if p.suffix.lower() == ".jsonl":
        entries = [_gt_entry(obj, f"{p}:{n}", mapper) for n, obj in iter_jsonl(p)]
    else:
        data = read_json(p)
        if isinstance(data, dict) and "images" in data:
            return _read_gt_coco(data, p, mapper)
        if not isinstance(data, list):
            raise ValueError(f"{p}: expected COCO JSON (with 'images') or a list of per-image objects")
        entries = []
        for i, obj in enumerate(data):
            if not isinstance(obj, dict):
                raise ValueError(f"{p}[{i}]: expected an object, got {type(obj).__name__}")
            entries.append(_gt_entry(obj, f"{p}[{i}]", mapper))
    positives, negatives, vocab = {}, {}, set()
    for file, pos, neg in entries:
        if file in positives:
            raise ValueError(f"{p}: image {file!r} appears twice")
        positives[file], negatives[file] = pos, neg
        vocab |= pos | (neg or frozenset())
    return TagGroundTruth(positives=positives, negatives=negatives, vocabulary=tuple(sorted(vocab)))


def _score_list(value: Any, where: str, key: str) -> list[tuple[str, float]]:
    if isinstance(value, dict):
        items = list(value.items())
    else:
        items = []
        for t in _names(value, where, key):
            if not isinstance(t, dict) or "name" not in t:
                raise ValueError(f"{where}: {key!r} entries must be objects with 'name' and 'score', got {t!r}")
            items.append((t["name"], t.get("score", 1.0)))
    out = []
    for name, score in items:
        if not isinstance(name, str) or isinstance(score, bool) or not isinstance(score, (int, float)):
            raise ValueError(f"{where}: bad tag entry {name!r}: {score!r} (need a name and a numeric score)")
        out.append((name, float(score)))
    return out


def _pred_entry(obj: dict, where: str, mapper: NameMapper) -> tuple[str, dict[str, float], frozenset]:
    scores: dict[str, float] = {}
    fired = set()
    for key in ("scores", "tags"):
        for name, score in _score_list(obj.get(key), where, key):
            n = mapper(name)
            scores[n] = max(score, scores.get(n, float("-inf")))
            if key == "tags":
                fired.add(n)
    return _file_of(obj, where), scores, frozenset(fired)


def read_tag_predictions(path: PathLike, *, mapper: Optional[NameMapper] = None) -> TagPredictions:
    """Read ``labels.jsonl`` or ``coco.json`` tag predictions (see the module docstring)."""
    mapper = mapper or NameMapper()
    p = Path(path)
    if p.suffix.lower() == ".jsonl":
        entries = [_pred_entry(obj, f"{p}:{n}", mapper) for n, obj in iter_jsonl(p)]
    else:
        data = read_json(p)
        if isinstance(data, dict) and isinstance(data.get("images"), list):
            data = data["images"]
        if not isinstance(data, list):
            raise ValueError(f"{p}: expected JSONL, COCO JSON with 'images', or a list of per-image objects")
        entries = []
        for i, obj in enumerate(data):
            if not isinstance(obj, dict):
                raise ValueError(f"{p}[{i}]: expected an object, got {type(obj).__name__}")
            entries.append(_pred_entry(obj, f"{p}[{i}]", mapper))
    scores, fired = {}, {}
    for file, s, f in entries:
        if file in scores:
            raise ValueError(f"{p}: image {file!r} appears twice")
        scores[file], fired[file] = s, f
    return TagPredictions(scores=scores, fired=fired)
