"""What PSALM's three stages (segmenter, detector, mask head) share: the weight options, ``setup``, and one loaded
model per (checkpoint, device, dtype) in the process, so a config using PSALM in two places loads it once."""
from __future__ import annotations

import threading
import weakref
from pathlib import Path
from typing import Any, Optional

import numpy as np
from openvocab.hub import RemoteRepo, resolve_repo
from openvocab.masks import encode_mask, mask_box
from openvocab.structures import Detections, Instances, Regions

from .loading import DTYPES, load_checkpoint, random_model
from .model import BUILDERS
from .predictor import MaskResult, PSALMPredictor
from .weights import CHECKPOINTS, HF_REPO


class Loaded:
    """A model and its tokenizer, shared by the stages that name the same weights."""

    def __init__(self, *, model, tokenizer) -> None:
        self.model, self.tokenizer = model, tokenizer


_loaded: "weakref.WeakValueDictionary[tuple, Loaded]" = weakref.WeakValueDictionary()
_lock = threading.Lock()


def load_shared(key: tuple, make) -> Loaded:
    with _lock:
        found = _loaded.get(key)
        if found is None:
            model, tokenizer = make()
            found = Loaded(model=model, tokenizer=tokenizer)
            _loaded[key] = found
        return found


def check_number(name: str, value, low: float = 0.0, high: float = 1.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ValueError(f"{name} must be a number in [{low}, {high}] (got {value!r})")
    return float(value)


def check_count(name: str, value, optional: bool = False) -> Optional[int]:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1{' or None' if optional else ''} (got {value!r})")
    return value


class PSALMStage:
    """Weight options of every PSALM stage.

    Args:
        checkpoint: the Hugging Face id of the release (``"EnmingZhang/PSALM"``, downloaded and cached on first
            use), a local folder holding it (``config.json``, tokenizer, safetensors shards), or ``None`` for
            random weights of ``variant`` (tests, smoke runs: outputs are meaningless).
        variant: with ``checkpoint=None``: ``"tiny"`` (offline, seconds) or ``"psalm"`` (release sizes).
        revision: a hub revision to pin.
        dtype: ``"float32"`` (as the parity tests), ``"bfloat16"``; ``"float16"`` needs CUDA.
        seed: random weights' seed (``checkpoint=None``) and the seed of region point sampling.
        image_batch_size: images whose vision side is encoded together.
        model_kwargs: sizes of the random model (``build_psalm_tiny`` keywords).
    """

    what = "PSALM"

    def _init_weights(self, *, checkpoint: Optional[str], variant: str, revision: Optional[str], dtype: str,
                      seed: int, image_batch_size: int, model_kwargs: Optional[dict[str, Any]]) -> None:
        if checkpoint is not None and (not isinstance(checkpoint, str) or not checkpoint):
            raise ValueError(f"checkpoint must be a hub id, a folder or None (got {checkpoint!r})")
        if variant not in BUILDERS:
            raise ValueError(f"variant must be one of {sorted(BUILDERS)} (got {variant!r})")
        if checkpoint is not None and variant != "psalm":
            raise ValueError(f"variant {variant!r} has random weights only: use checkpoint=None")
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {sorted(DTYPES)} (got {dtype!r})")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"seed must be an int (got {seed!r})")
        if model_kwargs is not None and (not isinstance(model_kwargs, dict) or checkpoint is not None):
            raise ValueError("model_kwargs must be a dict, and only with checkpoint=None")
        self.checkpoint, self.variant, self.revision, self.dtype, self.seed = checkpoint, variant, revision, dtype, seed
        self.image_batch_size = check_count("image_batch_size", image_batch_size)
        self.model_kwargs = dict(model_kwargs or {})
        self.predictor: Optional[PSALMPredictor] = None
        self.device: Optional[str] = None
        self.encoded_images = 0  #: images whose vision side was encoded (counted, for tests)

    def _local(self) -> bool:
        return self.checkpoint is not None and Path(self.checkpoint).expanduser().is_dir()

    def required_files(self) -> list[str]:
        if self.checkpoint is None:
            return []
        if self._local():
            return [str(self.checkpoint)]
        return [f"{self.checkpoint} (PSALM: config.json, tokenizer, sharded safetensors; https://huggingface.co/"
                f"{self.checkpoint})"]

    def remote_repos(self) -> list[RemoteRepo]:
        if self.checkpoint is None or self._local() or self.checkpoint.count("/") != 1:
            return []
        spec = CHECKPOINTS.get(self.checkpoint)
        return [RemoteRepo(repo=self.checkpoint, revision=self.revision,
                           description=spec.description if spec else "PSALM checkpoint")]

    def setup(self, device: str = "cpu") -> None:
        if self.predictor is not None and self.device == device:
            return
        if self.dtype == "float16" and not str(device).startswith("cuda"):
            raise ValueError("float16 needs a CUDA device; use bfloat16 or float32 on CPU")
        if self.checkpoint is None:
            key = (None, self.variant, self.seed, tuple(sorted(self.model_kwargs.items())), str(device), self.dtype)
            loaded = load_shared(key, lambda: random_model(self.variant, seed=self.seed, device=device,
                                                           dtype=self.dtype, **self.model_kwargs))
        else:
            folder = resolve_repo(self.checkpoint, revision=self.revision,
                                  description=f"PSALM checkpoint ({HF_REPO} or a local copy)")
            key = (str(folder.resolve()), str(device), self.dtype)
            loaded = load_shared(key, lambda: load_checkpoint(folder, device=device, dtype=self.dtype))
        self._loaded = loaded  # keeps the shared model alive while this stage lives
        self.predictor = PSALMPredictor(model=loaded.model, tokenizer=loaded.tokenizer, region_seed=self.seed)
        self.device = device

    def _require(self) -> PSALMPredictor:
        if self.predictor is None:
            raise ValueError(f"{type(self).__name__}.setup(device) must be called first")
        return self.predictor

    def prepare(self, image: np.ndarray):
        return self._require().prepare(image)

    def encode(self, images, prepared=None, indices=None) -> dict[int, Any]:
        """``{i: EncodedImage}`` for ``indices`` (default all), ``image_batch_size`` images at a time."""
        pred = self._require()
        todo = list(range(len(images))) if indices is None else list(indices)
        out = {}
        for s in range(0, len(todo), self.image_batch_size):
            idx = todo[s:s + self.image_batch_size]
            inputs = [prepared[i] if prepared is not None else pred.prepare(images[i]) for i in idx]
            for i, enc in zip(idx, pred.encode(inputs)):
                out[i] = enc
            self.encoded_images += len(idx)
        return out


def unique_names(names) -> list[str]:
    """Tag names in order, each once; ``background`` is PSALM's own class and is left out."""
    return [n for n in dict.fromkeys(names) if n != "background"]


def to_instances(result: MaskResult, labels: list[str], phrases: Optional[list[str]] = None) -> Instances:
    """Masks -> :class:`Instances` (boxes: each mask's extent)."""
    boxes = np.stack([mask_box(m) for m in result.masks]) if len(result) else np.zeros((0, 4), np.float32)
    dets = Detections(boxes=boxes, scores=result.scores, labels=tuple(labels),
                      phrases=None if phrases is None else tuple(phrases))
    return Instances(dets, Regions(masks=tuple(encode_mask(m) for m in result.masks), mask_scores=result.scores))
