"""Reading and writing tag-description JSON (``[{tag: [descriptions]}]``, the official layout)."""
from __future__ import annotations

import json
import os
from pathlib import Path

#: ``format`` metadata of the open-set embedding file the tagger loads.
OPENSET_FORMAT = "openvocab-openset-v1"


def read_descriptions(path: str | os.PathLike) -> dict[str, list[str]]:
    """``{tag: [descriptions]}`` from a JSON list of one-key dicts (or a single dict)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: cannot read tag descriptions ({type(e).__name__}: {e})") from None
    items = [data] if isinstance(data, dict) else data
    out: dict[str, list[str]] = {}
    if not isinstance(items, list):
        raise ValueError(f"{path}: expected a list of {{tag: [descriptions]}}")
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise ValueError(f"{path}: entry {i} is not a {{tag: [descriptions]}} object")
        for tag, descs in item.items():
            if not isinstance(descs, list) or not descs or not all(isinstance(d, str) for d in descs):
                raise ValueError(f"{path}: tag {tag!r} needs a non-empty list of strings")
            out[tag] = list(descs)
    return out


def write_descriptions(descriptions: dict[str, list[str]], path: str | os.PathLike) -> None:
    from openvocab.writers.base import atomic_write_text

    atomic_write_text(path, json.dumps([{t: d} for t, d in descriptions.items()], indent=1, ensure_ascii=False))
