"""Results of one evaluation run: terminal table, ``metrics.json``, per-class AP bar plots; run comparison.

A run folder holds ``metrics.json`` (``{"run", "inputs", "tags"?, "detection"?}``, the ``to_dict()`` of
:class:`~.tagging_metrics.TagMetrics` and :class:`~.detection_metrics.DetectionReport`; ``NaN`` is
written as ``null``), ``summary.txt`` (the terminal table) and PNG bar plots: ``tag_ap.png``,
``bbox_ap.png``, ``segm_ap.png``.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Union

from ..fileio import atomic_open

METRICS_FILE = "metrics.json"
SUMMARY_FILE = "summary.txt"


@dataclass(frozen=True)
class Table:
    """A text table: ``header`` names the columns, each row has one cell per column."""

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]

    def render(self) -> str:
        widths = [max(len(r[i]) for r in (self.header, *self.rows)) for i in range(len(self.header))]
        fmt = lambda r: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
        return "\n".join([fmt(self.header), "  ".join("-" * w for w in widths), *map(fmt, self.rows)])

    def __str__(self) -> str:
        return self.render()


def _num(v: Any) -> Optional[float]:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def fmt(v: Any) -> str:
    """A metric cell: three decimals, ``-`` for missing/NaN."""
    v = _num(v)
    return "-" if v is None else f"{v:.3f}"


def _clean(obj: Any) -> Any:
    if isinstance(obj, float):
        return None if math.isnan(obj) or math.isinf(obj) else obj
    if isinstance(obj, Mapping):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def summary(metrics: Mapping[str, Any]) -> dict[str, Optional[float]]:
    """The headline numbers of one run's metrics dict, in a fixed order (``tags/mAP``, ``bbox/AP`` ...)."""
    out: dict[str, Optional[float]] = {}
    tags = metrics.get("tags")
    if tags:
        out["tags/mAP"] = _num(tags.get("mAP"))
        for avg in ("micro", "macro"):
            for k in ("precision", "recall", "f1"):
                out[f"tags/{avg}_{k}"] = _num(tags.get(avg, {}).get(k))
    det = metrics.get("detection")
    if det:
        for kind in ("bbox", "segm"):
            if det.get(kind):
                for k in ("AP", "AP50", "AP75", "APs", "APm", "APl"):
                    out[f"{kind}/{k}"] = _num(det[kind]["stats"].get(k))
    caps = metrics.get("captions")
    if caps:
        for k in ("BLEU-4", "CIDEr", "BLEU-1"):
            out[f"captions/{k}"] = _num(caps.get(k))
    return out


def run_table(metrics: Mapping[str, Any]) -> str:
    """The terminal report of one run: headline numbers, per-class AP, per-tag AP/P/R/F1, dropped counts."""
    parts = [Table(("metric", "value"), tuple((k, fmt(v)) for k, v in summary(metrics).items())).render()]
    det = metrics.get("detection")
    if det:
        bbox = (det.get("bbox") or {}).get("per_class") or {}
        segm = (det.get("segm") or {}).get("per_class") or {}
        rows = tuple((c, fmt(bbox.get(c)), fmt(segm.get(c))) for c in sorted({*bbox, *segm}))
        parts.append(Table(("class", "box AP", "mask AP"), rows).render())
        if det.get("fixed_ap"):
            parts.append(f"protocol: fixed AP (top {det.get('max_dets_per_class', '?')} detections per class, "
                         "no per-image limit)")
        counts = ", ".join(f"{k}={v}" for k, v in det.get("counts", {}).items())
        parts.append(f"detections: {counts}")
        if det.get("unmapped_tags"):
            top = sorted(det["unmapped_tags"].items(), key=lambda kv: (-kv[1], kv[0]))[:20]
            parts.append("unmapped tags (dropped): " + ", ".join(f"{t} ({n})" for t, n in top))
    matched = (metrics.get("inputs") or {}).get("normaliser_synonyms") or {}
    pairs = sorted({(a, b) for part in matched.values() for a, b in (part or {}).items()})
    if pairs:
        parts.append("matched by the normaliser: " + ", ".join(f"{a} -> {b}" for a, b in pairs[:30])
                     + (f" (+{len(pairs) - 30} more)" if len(pairs) > 30 else ""))
    tags = metrics.get("tags")
    if tags:
        rows = tuple((t, *(fmt(s.get(k)) for k in ("ap", "precision", "recall", "f1")),
                      *(str(s.get(k, "-")) for k in ("n_pos", "n_neg"))) for t, s in sorted(tags["per_tag"].items()))
        parts.append(Table(("tag", "AP", "P", "R", "F1", "pos", "neg"), rows).render())
        parts.append("tags: " + ", ".join(f"{k}={v}" for k, v in tags.get("counts", {}).items()))
    return "\n\n".join(parts)


def plot_per_class(per_class: Mapping[str, Optional[float]], path: Union[str, os.PathLike], *, title: str,
                   max_classes: int = 80) -> Path:
    """Bar plot of per-class AP (highest first) to ``path``; classes without AP are left out.

    With more than ``max_classes`` classes, the ``max_classes // 2`` highest and lowest are shown.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    items = sorted(((k, float(v)) for k, v in per_class.items() if _num(v) is not None), key=lambda kv: (-kv[1], kv[0]))
    shown = items
    if len(items) > max_classes:
        half = max(1, max_classes // 2)
        shown = items[:half] + items[-half:]
        title = f"{title} (top and bottom {half} of {len(items)})"
    fig = Figure(figsize=(max(6.0, 0.22 * len(shown) + 1.5), 4.5))
    FigureCanvasAgg(fig)  # the Agg backend, whatever pyplot's backend is
    ax = fig.add_subplot(1, 1, 1)
    ax.bar(range(len(shown)), [v for _, v in shown], color="tab:blue")
    if len(shown) <= 40:  # the value above each bar (an AP of 0 is otherwise invisible)
        for i, (_, v) in enumerate(shown):
            ax.text(i, min(v, 0.93) + 0.01, f"{v:.2f}", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(shown)))
    ax.set_xticklabels([k for k, _ in shown], rotation=90, fontsize=7)
    ax.set_ylim(0, 1)
    ax.set_ylabel("AP")
    ax.set_title(title if shown else f"{title} (no class with AP)")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    return path


def write_run(run_dir: Union[str, os.PathLike], metrics: Mapping[str, Any]) -> dict[str, Path]:
    """Write ``metrics.json``, ``summary.txt`` and the per-class AP plots into ``run_dir``; returns the paths."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    clean = _clean(metrics)
    paths = {"metrics": run_dir / METRICS_FILE, "summary": run_dir / SUMMARY_FILE}
    with atomic_open(paths["metrics"]) as f:
        f.write((json.dumps(clean, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8"))
    with atomic_open(paths["summary"]) as f:
        f.write((run_table(clean) + "\n").encode("utf-8"))
    if clean.get("tags"):
        paths["tag_ap"] = plot_per_class({t: s["ap"] for t, s in clean["tags"]["per_tag"].items()},
                                         run_dir / "tag_ap.png", title="tag AP")
    det = clean.get("detection") or {}
    for kind in ("bbox", "segm"):
        if det.get(kind):
            paths[f"{kind}_ap"] = plot_per_class(det[kind]["per_class"], run_dir / f"{kind}_ap.png",
                                                 title=f"{'box' if kind == 'bbox' else 'mask'} AP per class")
    return paths


def load_run(run_dir: Union[str, os.PathLike]) -> dict:
    """The metrics dict of a run folder (or of a ``metrics.json`` path)."""
    p = Path(run_dir)
    if p.is_dir():
        p = p / METRICS_FILE
    if not p.is_file():
        raise ValueError(f"{run_dir}: no {METRICS_FILE} (is it an 'openvocab eval --out' folder?)")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{p}: invalid JSON at line {e.lineno}: {e.msg}") from None
    except UnicodeDecodeError as e:
        raise ValueError(f"{p}: not UTF-8 text (byte {e.start})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{p}: expected a JSON object")
    try:  # the numbers a table or a comparison reads: a malformed file fails here, naming itself
        summary(data), _per_class(data), run_table(data)
    except (AttributeError, TypeError, KeyError, ValueError) as e:
        raise ValueError(f"{p}: not the metrics.json of an 'openvocab eval' run ({type(e).__name__}: {e})") from None
    return data


def _per_class(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """``{"bbox/<class>": AP, "segm/<class>": AP, "tag/<tag>": AP}`` of one run."""
    out: dict[str, Any] = {}
    det = metrics.get("detection") or {}
    for kind in ("bbox", "segm"):
        for c, v in ((det.get(kind) or {}).get("per_class") or {}).items():
            out[f"{kind}/{c}"] = _num(v)
    for t, s in ((metrics.get("tags") or {}).get("per_tag") or {}).items():
        out[f"tag/{t}"] = _num(s.get("ap")) if isinstance(s, Mapping) else None
    return out


def compare(run_dirs: Sequence[Union[str, os.PathLike]], *, per_class: bool = False) -> Table:
    """Side-by-side table of the runs' headline numbers (one column per run; ``-`` where a run lacks one).

    With ``per_class=True`` the per-class box AP (``bbox/<class>``), mask AP and per-tag AP
    (``tag/<tag>``) rows follow. Column names are the runs' folder names (made unique with an index).
    """
    if len(run_dirs) < 1:
        raise ValueError("compare needs at least one run folder")
    runs = [load_run(d) for d in run_dirs]
    names = []
    for i, d in enumerate(run_dirs):
        n = Path(d).name or str(d)
        names.append(n if n not in names else f"{n}#{i + 1}")
    sums = [summary(r) for r in runs]
    keys = list(dict.fromkeys(k for s in sums for k in s))
    rows = [(k, *(fmt(s.get(k)) for s in sums)) for k in keys]
    if per_class:
        extra = [_per_class(r) for r in runs]
        for k in sorted(set().union(*extra)):
            rows.append((k, *(fmt(e.get(k)) for e in extra)))
    return Table(("metric", *names), tuple(rows))
