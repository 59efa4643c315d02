"""Concept matrices: the vocabulary TAP's semantic embeddings are classified against.

A :class:`ConceptMatrix` holds ``weights`` ``float32 [D, C]`` (official layout: D x C) whose
columns are L2-normalised text embeddings already multiplied by the logit scale, and ``C`` names.
Region logits are ``normalize(sem_embed) @ weights``; probabilities are their softmax over C.

Sources:

* official concept pickles (``merged_2560``, ``lvis_1203``, ``coco_80``): ``[weights, names]``,
  EVA02-CLIP-bigE-14-plus text embeddings of ``"a {}"`` times ``exp(logit_scale) = 100``; read with
  the restricted unpickler;
* ``.pt`` (``{"weights": [D, C], "names": [...]}``, ``weights_only``) or ``.safetensors``
  (tensor ``weights``, names as JSON in the metadata) files written by :func:`save_concept_matrix`;
* :func:`build_concept_matrix` from any text encoder with ``encode(list[str]) -> [N, D]``;
* :func:`concepts_from_spec` with a *vocabulary spec* (a dict, as a config's ``mask_head.concepts``):
  ``dict(names=[...] | names_file=PATH, text_encoder=dict(type='CLIPTextEncoder', ...) | 'random',
  template='a {}', logit_scale=100.0, seed=0)``. The text encoder is built through
  ``openvocab.registry.TEXT_ENCODERS`` (the config's ``custom_imports`` must load the package that
  registers it, e.g. ``tagging`` for the tagger's CLIP text encoder; nothing here imports it).
  ``'random'`` gives deterministic, meaningless unit vectors (tiny smoke-test pipelines).

The text space must be the one the TAP model was trained in: the official weights expect 1024-d
EVA02-CLIP-bigE-14-plus text embeddings, so a CLIP ViT-B/16 (512-d) vocabulary only fits a TAP model
with ``sem_embed_dim=512`` (e.g. one trained or tiny); a mismatch raises ``ValueError``.
"""
from __future__ import annotations

import json
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np
import torch
from torch.nn import functional as F

from openvocab import hub
from openvocab.checkpoint import CheckpointError, read_checkpoint, safetensors_error

from .safe_pickle import UnsafePickleError, safe_load
from .weights import CONCEPTS

#: exp(logit_scale) of CLIP-style models (the official matrices have it baked in)
DEFAULT_LOGIT_SCALE = 100.0


@dataclass(frozen=True)
class ConceptMatrix:
    """``weights float32 [D, C]`` (scale included) and ``names`` (length C)."""

    weights: torch.Tensor
    names: tuple[str, ...]

    def __post_init__(self) -> None:
        w = torch.as_tensor(self.weights, dtype=torch.float32)
        if w.ndim != 2 or w.shape[1] != len(self.names):
            raise ValueError(f"concept weights must be [D, C] with C = {len(self.names)} names, "
                             f"got {tuple(w.shape)}")
        object.__setattr__(self, "weights", w)
        object.__setattr__(self, "names", tuple(str(n) for n in self.names))

    @property
    def dim(self) -> int:
        return self.weights.shape[0]

    def logits(self, sem_embeds: torch.Tensor) -> torch.Tensor:
        """``[..., D]`` semantic embeddings -> float32 ``[..., C]`` logits."""
        if sem_embeds.shape[-1] != self.dim:
            raise ValueError(f"semantic embeddings have {sem_embeds.shape[-1]} dims, the concept "
                             f"matrix {self.dim}")
        w = self.weights.to(sem_embeds.device)
        with torch.autocast(device_type=sem_embeds.device.type, enabled=False):  # float32 even under autocast
            return F.normalize(sem_embeds.float(), dim=-1) @ w

    def topk(self, sem_embeds: torch.Tensor, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Softmax top-k: ``(indices int64 [..., k], probabilities float32 [..., k])``."""
        probs = self.logits(sem_embeds).softmax(-1)
        score, index = probs.topk(min(k, len(self.names)), dim=-1)
        return index.cpu().numpy(), score.cpu().numpy()


def build_concept_matrix(names: Sequence[str], text_encoder, *, template: str = "a {}",
                         logit_scale: float = DEFAULT_LOGIT_SCALE) -> ConceptMatrix:
    """Concept matrix for a user vocabulary.

    ``text_encoder`` is any object with ``encode(list[str]) -> Tensor [N, D]`` (e.g. an
    ``openvocab.registry.TEXT_ENCODERS`` entry). Each name is written into ``template``, embedded,
    L2-normalised and multiplied by ``logit_scale`` (``exp(logit_scale)`` of CLIP, 100; the
    official matrices use the same temperature). ``D`` must equal the TAP model's semantic
    embedding size (1024, the EVA02-CLIP-bigE-14-plus text space, for the official weights).
    """
    names = [str(n) for n in names]
    if not names:
        raise ValueError("build_concept_matrix needs at least one name")
    with torch.inference_mode():
        emb = torch.as_tensor(text_encoder.encode([template.format(n) for n in names]))
    if emb.ndim != 2 or emb.shape[0] != len(names):
        raise ValueError(f"text encoder returned shape {tuple(emb.shape)} for {len(names)} texts")
    emb = F.normalize(emb.float().cpu(), dim=-1) * float(logit_scale)
    return ConceptMatrix(weights=emb.t().contiguous(), names=tuple(names))


def save_concept_matrix(matrix: ConceptMatrix, path: os.PathLike | str) -> None:
    """Write ``.safetensors`` (names in metadata) or ``.pt`` (weights_only-loadable dict)."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({"weights": matrix.weights.contiguous()}, str(path),
                  metadata={"names": json.dumps(list(matrix.names))})
    else:
        torch.save({"weights": matrix.weights, "names": list(matrix.names)}, path)


def _read_concept_file(path: Path) -> ConceptMatrix:
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                meta, weights = f.metadata() or {}, (f.get_tensor("weights") if "weights" in f.keys() else None)
        except Exception as e:
            raise safetensors_error(path, e) from None
        if "names" not in meta or weights is None:
            raise CheckpointError(f"{path}: a concept file needs a 'weights' tensor and 'names' in its metadata")
        return ConceptMatrix(weights=weights, names=tuple(json.loads(meta["names"])))
    if path.suffix == ".pt":
        obj = read_checkpoint(path)
        if not isinstance(obj, dict) or "weights" not in obj or "names" not in obj:
            raise CheckpointError(f"{path}: expected a dict with 'weights' [D, C] and 'names'")
        return ConceptMatrix(weights=obj["weights"], names=tuple(obj["names"]))
    try:
        obj = safe_load(path)
    except UnsafePickleError as e:
        raise CheckpointError(f"{path}: concept file refused: {e}") from None
    except Exception as e:  # not a pickle, truncated, unreadable
        raise CheckpointError(f"{path}: cannot read the concept pickle ({type(e).__name__}: {e})") from None
    if not (isinstance(obj, (list, tuple)) and len(obj) == 2 and isinstance(obj[0], np.ndarray)):
        raise CheckpointError(f"{path}: expected an official concept pickle [weights (D, C), names]")
    return ConceptMatrix(weights=torch.from_numpy(np.ascontiguousarray(obj[0], dtype=np.float32)),
                         names=tuple(str(n) for n in obj[1]))


def load_concept_matrix(spec: str | os.PathLike) -> ConceptMatrix:
    """Official name (``merged_2560``...), or a ``.pkl`` / ``.pt`` / ``.safetensors`` path.

    A file that cannot be read as a concept matrix (code in a pickle, a pickle named ``.safetensors``,
    a wrong layout) raises one :class:`~openvocab.checkpoint.CheckpointError` naming it."""
    spec_s = str(spec)
    path = hub.resolve(CONCEPTS[spec_s] if spec_s in CONCEPTS else spec_s)
    try:
        return _read_concept_file(path)
    except CheckpointError:
        raise
    except (ValueError, TypeError) as e:  # a layout ConceptMatrix refuses
        raise CheckpointError(f"{path}: not a concept matrix ({e})") from None


class RandomTextEncoder:
    """Meaningless but deterministic unit vectors, one per text (seeded by the text's CRC32).

    For tiny random pipelines: concepts then exercise the whole toolchain without any file.
    """

    def __init__(self, *, dim: int, seed: int = 0) -> None:
        if dim < 1:
            raise ValueError(f"dim must be >= 1 (got {dim})")
        self.dim, self.seed = int(dim), int(seed)

    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        rows = []
        for t in texts:
            g = torch.Generator().manual_seed((zlib.crc32(str(t).encode("utf-8")) + 7919 * self.seed) % 2**63)
            rows.append(torch.randn(self.dim, generator=g))
        return F.normalize(torch.stack(rows), dim=-1) if rows else torch.zeros(0, self.dim)


#: keys of a vocabulary spec (see :func:`concepts_from_spec`)
SPEC_KEYS = frozenset({"names", "names_file", "text_encoder", "template", "logit_scale", "seed"})


def read_names_file(path: Union[str, os.PathLike]) -> list[str]:
    """Concept names from a text file (one per line, blank lines and ``#`` comments skipped) or a
    JSON list."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{p}: concept names file not found")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{p}: concept names file is not UTF-8 text (byte {e.start})") from None
    if p.suffix.lower() == ".json":
        try:
            names = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"{p}: invalid JSON ({e.msg} at line {e.lineno})") from None
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ValueError(f"{p}: expected a JSON list of concept names")
    else:
        names = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not names:
        raise ValueError(f"{p}: no concept names")
    return names


def _build_text_encoder(cfg: Any, dim: Optional[int], seed: int):
    if cfg == "random":
        if dim is None:
            raise ValueError("text_encoder='random' needs the model's semantic embedding size")
        return RandomTextEncoder(dim=dim, seed=seed)
    if isinstance(cfg, Mapping):
        from openvocab.registry import TEXT_ENCODERS

        try:
            return TEXT_ENCODERS.build(dict(cfg))
        except KeyError as e:
            raise ValueError(f"concept text encoder {dict(cfg).get('type')!r} is not registered ({e}); load the "
                             "package that registers it with the config's custom_imports (the tagger's "
                             "CLIPTextEncoder registers with 'tagging')") from None
    if hasattr(cfg, "encode"):
        return cfg
    raise ValueError(f"text_encoder must be a TEXT_ENCODERS config dict, 'random' or an object with "
                     f"encode(texts) (got {cfg!r})")


def concepts_from_spec(spec: Union[str, os.PathLike, Mapping[str, Any]], *,
                       dim: Optional[int] = None) -> ConceptMatrix:
    """A concept matrix from an official name / file (:func:`load_concept_matrix`) or a vocabulary spec.

    Args:
        spec: ``"merged_2560"`` / a path, or ``dict(names=[...] | names_file=PATH,
            text_encoder=dict(type=...) | 'random', template='a {}', logit_scale=100.0, seed=0)``.
        dim: the TAP model's semantic embedding size; the matrix must have it (``ValueError``).
    """
    if isinstance(spec, Mapping):
        unknown = set(spec) - SPEC_KEYS
        if unknown:
            raise ValueError(f"unknown concept vocabulary keys {sorted(unknown)} (allowed: {sorted(SPEC_KEYS)})")
        if ("names" in spec) == ("names_file" in spec):
            raise ValueError("a concept vocabulary needs exactly one of 'names' (a list) or 'names_file'")
        names = read_names_file(spec["names_file"]) if "names_file" in spec else spec["names"]
        if isinstance(names, str) or not all(isinstance(n, str) for n in names):
            raise ValueError("concept 'names' must be a list of strings")
        if "text_encoder" not in spec:
            raise ValueError("a concept vocabulary needs a 'text_encoder' (a TEXT_ENCODERS config dict, e.g. "
                             "dict(type='CLIPTextEncoder'), or 'random')")
        encoder = _build_text_encoder(spec["text_encoder"], dim, int(spec.get("seed", 0)))
        matrix = build_concept_matrix(list(names), encoder, template=spec.get("template", "a {}"),
                                      logit_scale=float(spec.get("logit_scale", DEFAULT_LOGIT_SCALE)))
        source = f"vocabulary of {len(names)} names embedded by {type(encoder).__name__}"
    else:
        matrix = load_concept_matrix(spec)
        source = str(spec)
    if dim is not None and matrix.dim != dim:
        raise ValueError(
            f"concept matrix ({source}) has {matrix.dim}-d embeddings but the TAP model's semantic "
            f"embeddings are {dim}-d. Concepts must live in the text space the model was trained in: the "
            "official TAP weights use 1024-d EVA02-CLIP-bigE-14-plus text embeddings (the official concept "
            "files), so e.g. CLIP ViT-B/16 (512-d) concepts only fit a TAP model with sem_embed_dim=512")
    return matrix
