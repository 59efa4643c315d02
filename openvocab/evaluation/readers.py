"""Tolerant readers for evaluation inputs: JSON/JSONL files, tag names, synonyms, ontologies, file names.

Every reader raises ``ValueError`` naming the file (and the line, for JSONL) on malformed input.

Tag names are compared after :func:`normalize_name` (lower case, surrounding white space removed, inner
runs of white space and ``_`` collapsed to one space) and then, when a synonym mapping is given,
replaced by their canonical name (:class:`NameMapper`).
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional, Sequence, Union

PathLike = Union[str, os.PathLike]

_SPACES = re.compile(r"[\s_]+")


def normalize_name(name: str) -> str:
    """``"  Fire_Hydrant "`` -> ``"fire hydrant"``."""
    if not isinstance(name, str):
        raise ValueError(f"a tag/class name must be a string, got {name!r}")
    return _SPACES.sub(" ", name.strip()).lower()


class NameMapper:
    """Normalises names and maps aliases to canonical names.

    Args:
        synonyms: ``{alias: canonical}``; both sides are normalised. A canonical name maps to itself.
    """

    def __init__(self, *, synonyms: Optional[Mapping[str, str]] = None) -> None:
        self.synonyms: dict[str, str] = {}
        for alias, canon in (synonyms or {}).items():
            if not isinstance(canon, str):
                raise ValueError(f"synonym {alias!r} must map to a string, got {canon!r}")
            self.synonyms[normalize_name(alias)] = normalize_name(canon)

    def __call__(self, name: str) -> str:
        n = normalize_name(name)
        return self.synonyms.get(n, n)


def read_json(path: PathLike) -> Any:
    """Parse a JSON file; ``ValueError`` naming the file (and position) when it is missing or malformed."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{p}: file not found")
    try:
        with open(p, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{p}: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    except UnicodeDecodeError as e:
        raise ValueError(f"{p}: not UTF-8 text ({e})") from None


def iter_jsonl(path: PathLike) -> Iterator[tuple[int, dict]]:
    """Yield ``(line_number, object)`` for each non-blank line; ``ValueError`` names the file and line."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{p}: file not found")
    with open(p, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{p}:{lineno}: invalid JSON ({e.msg} at column {e.colno})") from None
            if not isinstance(obj, dict):
                raise ValueError(f"{p}:{lineno}: expected a JSON object, got {type(obj).__name__}")
            yield lineno, obj


def read_synonyms(path: PathLike) -> dict[str, str]:
    """A JSON file ``{alias: canonical}`` -> dict."""
    data = read_json(path)
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise ValueError(f"{path}: a synonym file must be a JSON object {{alias: canonical}} of strings")
    return dict(data)


def read_ontology(path: PathLike) -> dict[str, list[str]]:
    """An ontology file (JSON, or YAML for ``.yaml``/``.yml``): ``{gt_class_name: [tag, tag, ...]}``.

    A value may also be a single string. Returns the mapping with lists of strings.
    """
    p = Path(path)
    if p.suffix.lower() in (".yaml", ".yml"):
        import yaml

        if not p.is_file():
            raise ValueError(f"{p}: file not found")
        try:
            data = yaml.safe_load(p.read_text(encoding="utf-8"))
        except yaml.YAMLError as e:
            raise ValueError(f"{p}: invalid YAML ({e})") from None
    else:
        data = read_json(p)
    if not isinstance(data, dict):
        raise ValueError(f"{p}: an ontology must map ground-truth class names to lists of tags")
    out: dict[str, list[str]] = {}
    for cls, tags in data.items():
        if isinstance(tags, str):
            tags = [tags]
        if not isinstance(cls, str) or not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise ValueError(f"{p}: entry {cls!r} must map a class name to a list of tag names, got {tags!r}")
        out[cls] = list(tags)
    return out


def tag_to_class_map(ontology: Mapping[str, Sequence[str]], mapper: NameMapper) -> dict[str, str]:
    """Invert an ontology to ``{normalised tag: normalised gt class}``; a tag under two classes is an error.

    Every class also maps from its own name, unless an ontology entry already claims that name.
    """
    out: dict[str, str] = {}
    for cls, tags in ontology.items():
        c = normalize_name(cls)
        for t in tags:
            key = mapper(t)
            if key in out and out[key] != c:
                raise ValueError(f"ontology maps tag {t!r} to two classes: {out[key]!r} and {c!r}")
            out[key] = c
    for cls in ontology:
        out.setdefault(mapper(cls), normalize_name(cls))
    return out


def normaliser_synonyms(normaliser: Any, known: Sequence[str], other: Sequence[str]) -> dict[str, str]:
    """``{other name: known name}`` for the names a synonym normaliser puts in one group.

    ``normaliser`` has ``normalise(names)`` returning an object with a ``mapping`` ``{name: group}``
    (or the mapping itself), e.g. the text tools' ``VocabularyNormaliser`` (plurals and WordNet
    synonyms). ``known`` are the names the evaluation knows (ground-truth classes / tags, ontology
    tags): each maps to itself, so two known names are never merged. An ``other`` name (a predicted
    tag) whose group holds a known name maps to the first such known name. Names are compared after
    :func:`normalize_name`.
    """
    known_n = list(dict.fromkeys(normalize_name(n) for n in known))
    known_set = set(known_n)
    other_n = [n for n in dict.fromkeys(normalize_name(n) for n in other) if n not in known_set]
    if not other_n:
        return {}
    result = normaliser.normalise(known_n + other_n)
    mapping = getattr(result, "mapping", result)
    if not isinstance(mapping, Mapping):
        raise ValueError(f"synonym normaliser {type(normaliser).__name__}.normalise() must return a mapping "
                         f"or an object with .mapping, got {type(result).__name__}")
    first_known: dict[str, str] = {}
    for n in known_n:
        first_known.setdefault(mapping.get(n, n), n)
    out = {}
    for n in other_n:
        target = first_known.get(mapping.get(n, n))
        if target is not None:
            out[n] = target
    return out


class FileMatcher:
    """Matches prediction file names to ground-truth file names.

    A prediction's file matches a ground-truth file with the same path; otherwise one whose path is a
    suffix of it on a ``/`` boundary (``/data/coco/val/0001.jpg`` matches ``val/0001.jpg``); otherwise
    the same base name, when that base name is unique in the ground truth.

    Args:
        gt_files: ``{ground-truth file name: key}``.
    """

    def __init__(self, *, gt_files: Mapping[str, Any]) -> None:
        self._exact = {self._clean(f): k for f, k in gt_files.items()}
        self._by_base: dict[str, list[Any]] = {}
        for f, k in self._exact.items():
            self._by_base.setdefault(f.rsplit("/", 1)[-1], []).append(k)

    @staticmethod
    def _clean(f: str) -> str:
        f = str(f).replace("\\", "/")
        while f.startswith("./"):
            f = f[2:]
        return f

    def __call__(self, pred_file: str) -> Optional[Any]:
        f = self._clean(pred_file)
        if f in self._exact:
            return self._exact[f]
        parts = f.split("/")
        for i in range(1, len(parts)):
            tail = "/".join(parts[i:])
            if tail in self._exact:
                return self._exact[tail]
        cands = self._by_base.get(parts[-1], [])
        return cands[0] if len(cands) == 1 else None


def no_match_error(pred_files: Sequence[str], gt_files: Sequence[str], *, pred_source: str,
                   gt_source: str) -> ValueError:
    """The one error of every evaluation (boxes, tags) in which no predicted image is a ground-truth
    image: nothing would be measured, and a score of 0 would look like a result."""
    if not gt_files:
        return ValueError(f"{gt_source}: the ground truth has no images")
    if not pred_files:
        return ValueError(f"{pred_source}: the predictions hold no image")
    return ValueError(f"{pred_source}: no predicted image matches a ground-truth image by file name "
                      f"(e.g. {str(pred_files[0])!r} vs {str(gt_files[0])!r})")
