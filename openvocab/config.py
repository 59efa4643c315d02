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
variables behave as usual.
"""
from __future__ import annotations

import argparse
import ast
from pathlib import Path
from typing import Any, Optional, Sequence

from .errors import UserError

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_CONFIG = "full_pipeline"
#: the pipeline configs of ``configs/`` (runnable by ``openvocab label`` and the Python API), default first
PIPELINE_CONFIGS = ("full_pipeline", "full_pipeline_sam", "full_pipeline_sam2", "full_pipeline_clipseg",
                    "detect_segment", "detect_mmgdino", "detect_gdino_hf", "detect_omdet", "detect_owlv2", "tag_sam3",
                    "tagger_only", "tiny_random")

#: the config keys that are pipeline stages
STAGE_KEYS = ("tagger", "boxable_filter", "detector", "mask_head", "segmenter", "stuff_segmenter")


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


def load_config(name: str, options: Optional[Sequence[str]] = None):
    """The mmengine ``Config`` of ``name`` (:func:`resolve_config`) with ``key=value`` overrides; a stage whose
    ``type`` the file changes from its ``_base_``'s is the file's own dict (module docstring)."""
    from mmengine.config import Config, DictAction

    path = resolve_config(name)
    try:
        cfg = Config.fromfile(str(path))
        _replace_swapped_stages(cfg, path)
    except ImportError as e:
        raise UserError(f"{path}: cannot import a package named in custom_imports ({e})") from None
    except Exception as e:
        raise UserError(f"{path}: invalid config ({type(e).__name__}: {e})") from None
    if options:
        for opt in options:
            if "=" not in opt or not opt.split("=", 1)[0].strip():
                raise UserError(f"--cfg-options {opt!r}: expected KEY=VALUE, e.g. detector.box_threshold=0.3")
        parser = argparse.ArgumentParser()
        parser.add_argument("--o", nargs="+", action=DictAction)
        try:
            cfg.merge_from_dict(parser.parse_args(["--o", *options]).o)
        except Exception as e:  # DictAction's asserts on unbalanced brackets, a key through a non-dict entry
            raise UserError(f"--cfg-options {' '.join(options)}: {type(e).__name__}: {e}") from None
    return cfg
