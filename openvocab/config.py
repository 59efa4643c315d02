"""Config files: where they are, resolving a name, loading one (``cli``, ``commands``, ``evaluation.cli``,
the Python API and the demo all come here).

The project keeps ``configs/`` and ``demo/`` at the top of the checkout (the users' layout); a wheel ships
them inside the package as ``openvocab/configs`` and ``openvocab/demo`` (setup.py maps them). So a folder
is looked up inside the package first (an installed wheel), then beside it in the checkout the package was
imported from (running from the checkout, or an editable install).
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional, Sequence

from .errors import UserError

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_CONFIG = "full_pipeline"
#: the pipeline configs of ``configs/`` (runnable by ``openvocab label`` and the Python API), default first
PIPELINE_CONFIGS = ("full_pipeline", "full_pipeline_sam", "detect_segment", "tagger_only", "tiny_random")



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
    """The mmengine ``Config`` of ``name`` (:func:`resolve_config`) with ``key=value`` overrides."""
    from mmengine.config import Config, DictAction

    path = resolve_config(name)
    try:
        cfg = Config.fromfile(str(path))
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
