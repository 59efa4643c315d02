"""Config files: where they are, resolving a name, loading one (``cli``, ``commands``, ``evaluation.cli``,
the Python API and the demo all come here).

The project keeps ``configs/`` and ``demo/`` at the top of the checkout (the users' layout); a wheel ships
them inside the package as ``openvocab/configs`` and ``openvocab/demo`` (setup.py maps them). So a folder
is looked up inside the package first (an installed wheel), then beside it in the checkout the package was
imported from (running from the checkout, or an editable install).

A config that changes a stage's ``type`` replaces its base's stage whole. mmengine merges a child config
into its ``_base_`` key by key, so a child that swaps the detector (``detector = dict(type='OWLv2Detector')``)
would keep the base detector's keyword arguments (``variant``, ``box_threshold``...), which the new class does
not take (mmdet's configs need ``_delete_=True`` for that). openvocab reads a swap as what it says: when a
child assigns a stage dict whose ``type`` differs from the base's, that stage is exactly the child's dict. A
child that keeps the type (or leaves it out) still overrides the base's keyword arguments one by one. The
child's own keys are read from its source (top-level ``name = dict(...)`` or ``{...}`` assignments, nested
ones too); their values are mmengine's, so ``{{_base_...}}`` substitutions, ``--cfg-options`` and predefined
variables behave as usual. A child's ``custom_imports`` adds to its bases' (mmengine would replace the list).

Overrides (``--cfg-options KEY=VALUE``, the Python API's ``options``, the demo's fields) set values and nothing
else (:func:`check_options`): they cannot import (``custom_imports``, ``_base_``, ``_scope_``), a ``type`` must
name a registered component, and a key must be one the config has, or one the component it lands in takes:
a misspelled key fails with one line naming the closest known ones.
"""
from __future__ import annotations

import argparse
import ast
import difflib
import importlib
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Union

from .errors import UserError

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_CONFIG = "full_pipeline"
#: the pipeline configs of ``configs/`` (runnable by ``openvocab label`` and the Python API), default first
PIPELINE_CONFIGS = ("full_pipeline", "full_pipeline_sam", "full_pipeline_sam2", "full_pipeline_clipseg",
                    "detect_segment", "detect_mmgdino", "detect_gdino_hf", "detect_omdet", "detect_owlv2", "tag_sam3",
                    "tagger_only", "tiny_random")

#: the config keys that are pipeline stages
STAGE_KEYS = ("tagger", "boxable_filter", "detector", "mask_head", "segmenter", "stuff_segmenter", "captioner",
              "tracker", "exemplar_detector")  # tracker: how videos are tracked (openvocab.video; swapped whole like a stage)
#: top-level keys a pipeline config may leave out and an override may still set
OPTIONAL_KEYS = STAGE_KEYS + ("vocabulary", "device", "precision", "batch_size", "clip_boxes", "cpu_turns", "writers",
                               "video")  # video: frame sampling and scene cuts (openvocab.video)
#: keys an override may never set: they import Python code or switch registries (a config file you name may)
IMPORTING_KEYS = ("custom_imports", "_base_", "_scope_")

#: ``--cfg-options`` strings, or a mapping of dotted keys to values
Options = Union[Sequence[str], Mapping[str, Any], None]


def _written_keys(node: ast.AST) -> Optional[dict]:
    """The keys a ``dict(...)`` call or ``{...}`` literal writes, each with the keys of its own nested dict
    (``None``: not a dict written out, or one whose keys cannot be read, e.g. ``dict(**other)``)."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict" and not node.args:
        if any(k.arg is None for k in node.keywords):
            return None
        return {k.arg: _written_keys(k.value) for k in node.keywords}
    if isinstance(node, ast.Dict):
        if not all(isinstance(k, ast.Constant) and isinstance(k.value, str) for k in node.keys):
            return None
        return {k.value: _written_keys(v) for k, v in zip(node.keys, node.values)}
    return None


def _stage_dicts(path: Path) -> tuple[dict[str, Optional[dict]], list[Path]]:
    """The stage dicts ``path`` writes at top level (last assignment wins) and its ``_base_`` files."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    stages: dict[str, Optional[dict]] = {}
    bases: list[str] = []
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            continue
        name = node.targets[0].id
        if name in STAGE_KEYS:
            stages[name] = _written_keys(node.value)
        elif name == "_base_":
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                continue
            bases = [value] if isinstance(value, str) else [v for v in value if isinstance(v, str)]
    return stages, [path.parent / b for b in bases if "::" not in b]


def _keep(value: Any, keys: dict) -> dict:
    """``value`` reduced to ``keys`` (recursively, where the child wrote a nested dict)."""
    out = {}
    for k, sub in keys.items():
        v = value[k]
        out[k] = _keep(v, sub) if isinstance(sub, dict) and isinstance(v, dict) else v
    return out


def _replace_swapped_stages(cfg, path: str | Path) -> list[str]:
    """In ``cfg`` (``path`` loaded by mmengine), replace every stage whose ``type`` the file itself changes
    from its base's by the file's own dict for it; returns the names of those stages."""
    from mmengine.config import Config

    stages, bases = _stage_dicts(Path(path))
    stages = {k: v for k, v in stages.items() if v is not None and "type" in v}
    if not stages or not bases:
        return []
    base_types: dict[str, Any] = {}
    for base in bases:
        base_cfg = Config.fromfile(str(base), import_custom_modules=False)
        for key in stages:
            stage = base_cfg.get(key)
            if isinstance(stage, dict) and "type" in stage:
                base_types[key] = stage["type"]
    swapped = []
    for key, keys in stages.items():
        value = cfg.get(key)
        if key in base_types and isinstance(value, dict) and value.get("type") != base_types[key]:
            value = value.to_dict() if hasattr(value, "to_dict") else dict(value)
            cfg[key] = _keep(value, keys)
            swapped.append(key)
    return swapped


def shipped_dir(name: str) -> Path:
    """``configs`` or ``demo``: the folder inside the installed package, else the checkout's (the one holding
    this package and its ``setup.cfg``)."""
    for cand, ok in ((PACKAGE_DIR / name, True), (PACKAGE_DIR.parent / name, (PACKAGE_DIR.parent / "setup.cfg").is_file())):
        if ok and cand.is_dir():
            return cand
    raise UserError(f"openvocab's {name}/ folder is missing: neither {PACKAGE_DIR / name} (installed package) "
                    f"nor {PACKAGE_DIR.parent / name} (checkout) exists; reinstall openvocab")


def configs_dir() -> Path:
    return shipped_dir("configs")


def resolve_config(name: str) -> Path:
    """A config path, or a name under ``configs/`` (with or without ``.py``, e.g. ``tiny_random``,
    ``train/tagger_tiny``)."""
    root = configs_dir()
    for cand in (Path(name), root / name, root / f"{name}.py"):
        if cand.is_file():
            return cand
    raise UserError(f"Config {name!r} not found (looked at {name} and {root}/{name}[.py])")


def load_config(name: str, options: Options = None):
    """The mmengine ``Config`` of ``name`` (:func:`resolve_config`) with overrides (``KEY=VALUE`` strings or a
    mapping, checked by :func:`check_options`); a stage whose ``type`` the file changes from its ``_base_``'s is
    the file's own dict, and ``custom_imports`` add up along the ``_base_`` chain (module docstring)."""
    from mmengine.config import Config

    path = resolve_config(name)
    try:
        cfg = Config.fromfile(str(path))
        _add_base_imports(cfg, path)
        _replace_swapped_stages(cfg, path)
    except ImportError as e:
        raise UserError(f"{path}: cannot import a package named in custom_imports ({e})") from None
    except Exception as e:
        raise UserError(f"{path}: invalid config ({type(e).__name__}: {e})") from None
    if options:
        given = parse_options(options) if not isinstance(options, Mapping) else dict(options)
        known = set(cfg.keys())
        try:
            cfg.merge_from_dict(given)
        except Exception as e:  # a key through a non-dict entry
            raise UserError(f"--cfg-options {_shown(given)}: {type(e).__name__}: {e}") from None
        check_options(cfg, given, known=known, where=str(path))
    return cfg


def _shown(given: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in given.items())


def parse_options(options: Sequence[str]) -> dict[str, Any]:
    """``["a.b=1", "c=[x,y]"]`` -> ``{"a.b": 1, "c": ["x", "y"]}`` (mmengine's ``DictAction`` value syntax)."""
    from mmengine.config import DictAction

    for opt in options:
        if "=" not in opt or not opt.split("=", 1)[0].strip():
            raise UserError(f"--cfg-options {opt!r}: expected KEY=VALUE, e.g. detector.box_threshold=0.3")
    parser = argparse.ArgumentParser()
    parser.add_argument("--o", nargs="+", action=DictAction)
    try:
        return dict(parser.parse_args(["--o", *options]).o)
    except Exception as e:  # DictAction's asserts on unbalanced brackets
        raise UserError(f"--cfg-options {' '.join(options)}: {type(e).__name__}: {e}") from None


def _closest(word: str, choices) -> str:
    close = difflib.get_close_matches(word, sorted(set(choices)), n=3, cutoff=0.6)
    return f"; closest: {', '.join(close)}" if close else ""


def check_options(cfg, given: Mapping[str, Any], *, known: set[str], where: str) -> None:
    """Overrides ``given`` (dotted key -> value, already merged into ``cfg``) set values only: no key that
    imports (:data:`IMPORTING_KEYS`), every ``type`` registered, every key one the config has (``known``: its
    top-level keys before the overrides, plus :data:`OPTIONAL_KEYS`) or one the component it lands in takes.
    :class:`UserError` naming the key and the closest known ones otherwise."""
    from .registry import accepted_keywords, find_type, registered_names

    for key, value in given.items():
        parts = key.split(".")
        bad = [p for p in parts if p in IMPORTING_KEYS]
        if bad:
            raise UserError(f"--cfg-options {key}: {bad[0]} cannot be set by an override (it imports code or "
                            "switches registries); put it in a config file of yours and pass that file as --config")
        if parts[0] not in known and parts[0] not in OPTIONAL_KEYS:
            raise UserError(f"--cfg-options {key}: {where} has no entry {parts[0]!r}"
                            f"{_closest(parts[0], known | set(OPTIONAL_KEYS))}")
        if parts[-1] == "type" and (not isinstance(value, str) or find_type(value) is None):
            raise UserError(f"--cfg-options {key}={value}: not a registered component (a plugin's package must be "
                            f"in the config's custom_imports){_closest(str(value), registered_names())}")
        node: Any = cfg
        for i, part in enumerate(parts[:-1]):
            node = node.get(part) if hasattr(node, "get") else None
            if not hasattr(node, "get"):
                break
            nxt = parts[i + 1]
            component = find_type(node["type"]) if isinstance(node.get("type"), str) else None
            if component is None or nxt in ("type", "_delete_"):
                continue
            takes = accepted_keywords(component)
            if takes is not None and nxt not in takes:
                raise UserError(f"--cfg-options {key}: {node['type']} takes no argument {nxt!r}"
                                f"{_closest(nxt, takes)}")


def _add_base_imports(cfg, path: Path) -> None:
    """Make ``cfg.custom_imports`` the union of the imports of ``path`` and its ``_base_`` chain (base first) and
    import the ones mmengine left out (it keeps only the child's list)."""
    from mmengine.config import Config

    imports: list[str] = []
    seen: set[Path] = set()

    def collect(p: Path) -> None:
        if p in seen or not p.is_file():
            return
        seen.add(p)
        for base in _stage_dicts(p)[1]:
            collect(base.resolve())
        own = Config.fromfile(str(p), import_custom_modules=False).get("custom_imports") or {}
        listed = own.get("imports", []) if hasattr(own, "get") else []
        for module in [listed] if isinstance(listed, str) else listed:
            if module not in imports:
                imports.append(module)

    collect(path.resolve())
    current = cfg.get("custom_imports") or {}
    have = current.get("imports", []) if hasattr(current, "get") else []
    have = [have] if isinstance(have, str) else list(have)
    if not imports or imports == have:
        return
    merged = have + [m for m in imports if m not in have]
    for module in merged:
        if module not in have:
            importlib.import_module(module)
    cfg.custom_imports = {**(current.to_dict() if hasattr(current, "to_dict") else dict(current)), "imports": merged}
