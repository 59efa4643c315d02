"""What makes two runs of a job the same job: its stages' configs, vocabulary, precision and model files.

A resumed job must be the job that wrote the folder, or its results would mix two pipelines'
labels; :func:`describe_changes` says, one line per difference, what changed. Runtime settings
that do not change results (device, batch size, workers, engine, output formats) are not part of it.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional, Sequence


def file_fingerprint(path: os.PathLike | str, sha256: Optional[str] = None) -> dict:
    """``{"name", "size", "sha256" | "mtime_ns"}`` of a model file (its published sha256 when known: the
    hub checked it; else the modification time, so a checkpoint overwritten in place is noticed)."""
    st = Path(path).stat()
    out: dict[str, Any] = {"name": Path(path).name, "size": st.st_size}
    if sha256:
        out["sha256"] = sha256
    else:
        out["mtime_ns"] = st.st_mtime_ns
    return out


def job_fingerprint(*, stages: dict, vocabulary: Optional[Sequence[str]], precision: str, clip_boxes: bool,
                    files: Sequence[tuple[Any, Path]] = (), examples: Any = None) -> dict:
    """The fingerprint (JSON-safe) of a pipeline: ``stages`` are its stage configs, ``files`` the ``(spec, path)``
    pairs :func:`openvocab.hub.recording` collected while it was set up, ``examples`` its labelled examples (an
    :class:`openvocab.examples.ExampleSet`: by content, :meth:`~openvocab.examples.ExampleSet.fingerprint`)."""
    seen, model_files = set(), []
    for spec, path in files:
        fp = file_fingerprint(path, getattr(spec, "sha256", None))
        key = (fp["name"], fp["size"])
        if key not in seen:
            seen.add(key)
            model_files.append(fp)
    out = {"stages": _jsonable(stages), "vocabulary": list(vocabulary) if vocabulary else None,
           "precision": precision, "clip_boxes": bool(clip_boxes),
           "model_files": sorted(model_files, key=lambda f: f["name"])}
    if examples is not None:  # label by example (a job without examples keeps the fingerprint it always had)
        out["examples"] = examples.fingerprint()
    return out


def describe_changes(old: dict, new: dict) -> list[str]:
    """Human-readable differences between two fingerprints (empty when they are the same job)."""
    out: list[str] = []
    if old.get("vocabulary") != new.get("vocabulary"):
        out.append(_vocab_change(old.get("vocabulary"), new.get("vocabulary")))
    if (old.get("examples") or {}).get("digest") != (new.get("examples") or {}).get("digest"):
        out.append(f"examples: {_examples(old.get('examples'))} -> {_examples(new.get('examples'))}")
    a, b = _flatten(old.get("stages", {})), _flatten(new.get("stages", {}))
    for key in sorted(set(a) | set(b)):
        if a.get(key, _MISSING) != b.get(key, _MISSING):
            out.append(f"{key}: {_show(a.get(key, _MISSING))} -> {_show(b.get(key, _MISSING))}")
    for key in ("precision", "clip_boxes"):
        if old.get(key) != new.get(key):
            out.append(f"{key}: {old.get(key)!r} -> {new.get(key)!r}")
    fa = {f["name"]: f for f in old.get("model_files", [])}
    fb = {f["name"]: f for f in new.get("model_files", [])}
    for name in sorted(set(fa) | set(fb)):
        if name not in fb:
            out.append(f"model file {name}: no longer used")
        elif name not in fa:
            out.append(f"model file {name}: newly used")
        elif fa[name] != fb[name]:
            out.append(f"model file {name}: a different file (size, hash or modification time changed)")
    return out


class _Missing:
    def __repr__(self) -> str:
        return "(not set)"


_MISSING = _Missing()


def _show(v: Any) -> str:
    return repr(v) if len(repr(v)) <= 60 else repr(v)[:57] + "..."


def _examples(fp: Optional[dict]) -> str:
    if not fp:
        return "none"
    return (f"{fp.get('examples')} examples of {len(fp.get('classes', []))} classes from {fp.get('source') or '?'} "
            f"(content {str(fp.get('digest'))[:12]})")


def _vocab_change(old, new) -> str:
    if not old or not new:
        return f"vocabulary: {'none' if not old else f'{len(old)} classes'} -> " \
               f"{'none' if not new else f'{len(new)} classes'}"
    added = [v for v in new if v not in old]
    removed = [v for v in old if v not in new]
    parts = [f"vocabulary: {len(old)} -> {len(new)} classes"]
    if added:
        parts.append("added " + ", ".join(added[:5]) + (" ..." if len(added) > 5 else ""))
    if removed:
        parts.append("removed " + ", ".join(removed[:5]) + (" ..." if len(removed) > 5 else ""))
    if not added and not removed:
        parts.append("same classes in another order (class numbering would change)")
    return "; ".join(parts)


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix: d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict) and v:
            out.update(_flatten(v, key))
        else:
            out[key] = v
    return out


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    return f"<{type(x).__name__}>"
