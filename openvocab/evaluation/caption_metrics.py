"""Image captions against reference captions: BLEU-1..4 and CIDEr-D (``openvocab eval --captions-pred P --captions-gt G``).

The scorers are pycocoevalcap's own BLEU and CIDEr (the COCO caption evaluation's reference implementations,
pure Python; ``pip install 'openvocab[captions]'``). The COCO evaluation tokenizes with Stanford's Java PTB
tokenizer; no Java is needed here: captions are lower-cased and split on what is not a letter, a digit or an
apostrophe, which for plain English sentences gives the PTB tokenizer's words without its punctuation (scores
can differ slightly from the Java pipeline's on text with unusual punctuation).

Inputs, matched image by image by file name (as ``--tags-pred``/``--tags-gt``):

* predictions (``--captions-pred``): the pipeline's ``labels.jsonl`` (``{"file", "caption"}``), its ``captions.json``
  or ``coco.json`` (``images[].caption``), or any COCO captions file;
* references (``--captions-gt``): a COCO captions file (``images`` + ``annotations[{image_id, caption}]``, several
  per image) or JSONL ``{"file", "captions": [...]}`` / ``{"file", "caption"}``.
"""
from __future__ import annotations

import contextlib
import io
import re
from dataclasses import dataclass
from typing import Any

from .readers import FileMatcher, PathLike, iter_jsonl, no_match_error, read_json

_WORD = re.compile(r"[a-z0-9']+")


def tokenize(caption: str) -> str:
    """Lower case, words only (letters, digits, apostrophes), single spaces."""
    return " ".join(_WORD.findall(str(caption).lower()))


def _coco_captions(data: dict, path: PathLike) -> dict[str, list[str]]:
    images = data.get("images")
    if not isinstance(images, list):
        raise ValueError(f"{path}: a COCO file needs an 'images' list")
    files = {im["id"]: im["file_name"] for im in images if isinstance(im, dict) and "id" in im and "file_name" in im}
    out: dict[str, list[str]] = {f: [] for f in files.values()}
    for im in images:  # coco.json / captions.json of openvocab carry the caption on the image too
        if isinstance(im, dict) and isinstance(im.get("caption"), str) and im.get("file_name") in out:
            out[im["file_name"]].append(im["caption"])
    if not any(out.values()):
        for k, ann in enumerate(data.get("annotations") or []):
            if not isinstance(ann, dict) or ann.get("image_id") not in files or not isinstance(ann.get("caption"), str):
                raise ValueError(f"{path}: annotation {k} is not {{image_id, caption}} of a listed image")
            out[files[ann["image_id"]]].append(ann["caption"])
    return {f: c for f, c in out.items() if c}


def read_captions(path: PathLike) -> dict[str, list[str]]:
    """``{file: [captions]}`` from a COCO captions/coco.json file or JSONL (see the module docstring)."""
    text_path = str(path)
    if text_path.endswith(".jsonl"):
        out: dict[str, list[str]] = {}
        for line, obj in iter_jsonl(path):
            file = next((obj[k] for k in ("file", "file_name", "image") if isinstance(obj.get(k), str)), None)
            caps = obj.get("captions", [obj["caption"]] if "caption" in obj else None)
            if file is None:
                raise ValueError(f"{path}:{line}: no 'file'")
            if caps is None:
                continue  # an image without a caption (a job without a captioner)
            if not isinstance(caps, list) or not all(isinstance(c, str) for c in caps):
                raise ValueError(f"{path}:{line}: 'captions' must be a list of text")
            out.setdefault(file, []).extend(caps)
        return out
    data = read_json(path)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a COCO captions object or a .jsonl file")
    return _coco_captions(data, path)


@dataclass(frozen=True)
class CaptionMetrics:
    """BLEU-1..4 and CIDEr-D over the matched images."""

    bleu: tuple[float, float, float, float]
    cider: float
    images: int
    unmatched: int
    no_caption: int

    def to_dict(self) -> dict[str, Any]:
        return {"BLEU-1": self.bleu[0], "BLEU-2": self.bleu[1], "BLEU-3": self.bleu[2], "BLEU-4": self.bleu[3],
                "CIDEr": self.cider, "counts": {"images": self.images, "unmatched_predictions": self.unmatched,
                                                "references_without_prediction": self.no_caption}}


def evaluate_captions(gt: dict[str, list[str]], pred: dict[str, list[str]], *, gt_source: str = "references",
                      pred_source: str = "predictions") -> CaptionMetrics:
    """BLEU and CIDEr-D of one predicted caption per image (the first) against its references."""
    try:
        from pycocoevalcap.bleu.bleu import Bleu
        from pycocoevalcap.cider.cider import Cider
    except ImportError:
        raise ValueError("caption metrics need pycocoevalcap: pip install 'openvocab[captions]'") from None
    match = FileMatcher(gt_files={f: f for f in gt})
    res: dict[str, list[str]] = {}
    unmatched = 0
    for file, caps in pred.items():
        g = match(file)
        if g is None or not caps:
            unmatched += g is None
            continue
        if g in res:
            raise ValueError(f"two predicted images match reference image {g!r}")
        res[g] = [tokenize(caps[0])]
    if not res:
        raise no_match_error(list(pred), list(gt), pred_source=pred_source, gt_source=gt_source)
    refs = {f: [tokenize(c) for c in gt[f]] for f in res}
    with contextlib.redirect_stdout(io.StringIO()):  # the scorers print their internals
        bleu, _ = Bleu(4).compute_score(refs, res)
        cider, _ = Cider().compute_score(refs, res)
    return CaptionMetrics(bleu=tuple(float(b) for b in bleu), cider=float(cider), images=len(res),
                          unmatched=unmatched, no_caption=len(gt) - len(res))
