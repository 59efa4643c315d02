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
* :func:`build_concept_matrix` from any text encoder with ``encode(list[str]) -> [N, D]``.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch.nn import functional as F

from openvocab import hub

from .safe_pickle import safe_load
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


def load_concept_matrix(spec: str | os.PathLike) -> ConceptMatrix:
    """Official name (``merged_2560``...), or a ``.pkl`` / ``.pt`` / ``.safetensors`` path."""
    spec_s = str(spec)
    path = hub.resolve(CONCEPTS[spec_s] if spec_s in CONCEPTS else spec_s)
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            if "names" not in meta:
                raise ValueError(f"{path}: no 'names' in the safetensors metadata")
            return ConceptMatrix(weights=f.get_tensor("weights"), names=tuple(json.loads(meta["names"])))
    if path.suffix == ".pt":
        obj = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(obj, dict) or "weights" not in obj or "names" not in obj:
            raise ValueError(f"{path}: expected a dict with 'weights' [D, C] and 'names'")
        return ConceptMatrix(weights=obj["weights"], names=tuple(obj["names"]))
    obj = safe_load(path)
    if not (isinstance(obj, (list, tuple)) and len(obj) == 2 and isinstance(obj[0], np.ndarray)):
        raise ValueError(f"{path}: expected an official concept pickle [weights (D, C), names]")
    return ConceptMatrix(weights=torch.from_numpy(np.ascontiguousarray(obj[0], dtype=np.float32)),
                         names=tuple(str(n) for n in obj[1]))
