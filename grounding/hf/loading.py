"""Loading ``transformers`` models and processors for the HF stages.

A model is named by a Hugging Face hub id or a local folder (``config.json`` + weights + processor files),
resolved with :func:`openvocab.hub.resolve_repo` (checkpoint dirs, the HF cache, ``HF_HUB_OFFLINE``; a
missing model is a :class:`openvocab.hub.MissingFileError` naming the repository). Nothing is read before
``setup()``.
"""
from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional

from openvocab.dtypes import DTYPES as ALL_DTYPES
from openvocab.hub import RemoteRepo

#: the weights' dtypes a transformers stage takes (the long names of :data:`openvocab.dtypes.DTYPES`)
DTYPES = {k: v for k, v in ALL_DTYPES.items() if k in ("float32", "bfloat16", "float16")}


def check_dtype(dtype: str) -> str:
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)} (got {dtype!r})")
    return dtype


def check_unit(name: str, value, optional: bool = False) -> None:
    """``ValueError`` unless ``value`` is a number in [0, 1] (or ``None`` when ``optional``)."""
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1]{' or None' if optional else ''} (got {value!r})")


def check_positive(name: str, value, optional: bool = False) -> None:
    """``ValueError`` unless ``value`` is an int >= 1 (or ``None`` when ``optional``)."""
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1{' or None' if optional else ''} (got {value!r})")


def check_template(template: str) -> None:
    if not isinstance(template, str) or template.count("{}") != 1:
        raise ValueError(f"text_template must hold one '{{}}' for the tag, got {template!r}")


def check_model(model: str) -> None:
    if not isinstance(model, str) or not model:
        raise ValueError(f"model must be a Hugging Face hub id or a folder, got {model!r}")


def check_backend(backend: Optional[str]) -> Optional[str]:
    if backend not in (None, "pil", "torchvision"):
        raise ValueError(f"processor_backend must be None, 'pil' or 'torchvision' (got {backend!r})")
    return backend


class HubModel:
    """What the HF stages share about their model: ``self.model`` (a hub id or a folder), ``self.revision``;
    :attr:`what` names it in messages."""

    model: str
    revision: Optional[str] = None
    what: str = "transformers model"

    def required_files(self) -> list[str]:
        return [f"{self.model} ({self.what})"]

    def remote_repos(self) -> list[RemoteRepo]:
        """``[RemoteRepo]`` of a model named by hub id, ``[]`` for a local folder (``Stage.remote_repos``)."""
        m = self.model
        if Path(m).expanduser().is_dir() or m.count("/") != 1 or m.startswith((".", "/", "~")):
            return []
        return [RemoteRepo(repo=m, revision=self.revision, description=self.what)]


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """No per-tensor loading progress bars from transformers (a job has its own)."""
    from transformers.utils import logging as hf_logging

    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()


@dataclass(frozen=True)
class Loaded:
    """A model on its device, in eval mode, with its processor and ``model_type`` (``config.json``)."""

    model: Any
    processor: Any
    model_type: str
    folder: Path


def model_type(folder: Path) -> str:
    try:
        return str(json.loads((folder / "config.json").read_text(encoding="utf-8"))["model_type"])
    except (OSError, ValueError, KeyError) as e:
        raise ValueError(f"{folder / 'config.json'}: no model_type ({type(e).__name__}: {e})") from None


def load(model: str, *, auto_class: str, types: dict[str, str], device: str, dtype: str = "float32",
         revision: Optional[str] = None, processor_backend: Optional[str] = None,
         description: str = "") -> Loaded:
    """Resolve ``model`` and load it with ``transformers.<auto_class>`` and its ``AutoProcessor``.

    ``types`` maps the model types this stage supports to a name for messages; another type is a
    ``ValueError`` naming the folder, its type and the supported ones.
    """
    import transformers

    from openvocab.hub import resolve_repo

    folder = resolve_repo(model, revision=revision, description=description)
    kind = model_type(folder)
    if kind not in types:
        raise ValueError(f"{folder}: model type {kind!r} is not supported here (supported: "
                         f"{', '.join(f'{k} ({v})' for k, v in types.items())})")
    kwargs = {} if processor_backend is None else {"backend": processor_backend}
    with _quiet():
        processor = transformers.AutoProcessor.from_pretrained(str(folder), **kwargs)
        net = getattr(transformers, auto_class).from_pretrained(str(folder), dtype=DTYPES[dtype])
    return Loaded(model=net.eval().to(device), processor=processor, model_type=kind, folder=folder)


def image_size(image) -> tuple[int, int]:
    """``(height, width)`` of an RGB ``uint8 [H, W, 3]`` array (``ValueError`` otherwise)."""
    shape = getattr(image, "shape", None)
    if shape is None or len(shape) != 3 or shape[2] != 3:
        raise ValueError(f"expected an RGB uint8 [H, W, 3] array, got {type(image).__name__} {shape}")
    return int(shape[0]), int(shape[1])
