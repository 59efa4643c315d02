"""The registered TAP mask head stage (masks + region concepts + captions)."""
from __future__ import annotations

from typing import Any, Mapping, Optional, Union

import numpy as np
import torch

from openvocab import hub
from openvocab.checkpoint import load_strict
from openvocab.masks import encode_mask
from openvocab.registry import MASK_HEADS
from openvocab.structures import Concept, Regions

from .concepts import ConceptMatrix, concepts_from_spec
from .convert import read_tap_checkpoint
from ..predictor_head import PredictorMaskHead
from .model import BUILDERS, TapModel
from .predictor import TapPrediction, TapPredictor
from .tokenizer import ByteTokenizer, SentencePieceTokenizer
from .weights import CHECKPOINT_VARIANT, CHECKPOINTS, CONCEPTS, TOKENIZER

@MASK_HEADS.register_module()
class TAPMaskHead(PredictorMaskHead):
    """Tokenize Anything via Prompting: a mask, an IoU score, top-k concepts and a caption per box.

    Args:
        variant: ``"vit_b" | "vit_l" | "vit_h" | "tiny"`` (build function, see :mod:`.model`).
        checkpoint: an official checkpoint name (``tap_vit_l_v1_1``...), a path (``.pkl`` official
            pickle, ``.pt`` / ``.safetensors`` state_dict), or ``None`` for random weights.
        concepts: official concept set name (``merged_2560``, ``lvis_1203``, ``coco_80``), a
            ``.pkl`` / ``.pt`` / ``.safetensors`` path, a vocabulary spec
            ``dict(names=[...] | names_file=PATH, text_encoder=dict(type='CLIPTextEncoder', ...) | 'random')``
            embedded at setup (:func:`.concepts.concepts_from_spec`; its dimension must match the
            model's semantic embeddings), or ``None`` (no concepts).
        tokenizer: SentencePiece model path, or ``None`` for the official one via the hub (for
            ``variant="tiny"`` without checkpoint: a built-in byte tokenizer, no files needed).
        top_k_concepts: concepts kept per region.
        max_caption_tokens: generated tokens per caption (``None``: model limit, 38 official).
        caption: generate captions.
        multimask: ``"auto"`` (boxes -> output 0, points -> best IoU of 1..3) or a fixed index.
        prompt_batch_size: prompts decoded together.
        image_batch_size: images encoded together in a job (:meth:`segment_batch`; ``1``: results never
            depend on the batch).
        dtype: ``"float32"`` or ``"bfloat16"`` (``"float16"`` on CUDA).
        seed: seed of the random initialisation (checkpoint ``None``).
        model_kwargs: extra keyword arguments of the build function (e.g. ``image_size``).
    """

    family = "TAP"

    def __init__(self, *, variant: str = "vit_l", checkpoint: Optional[str] = "tap_vit_l_v1_1",
                 concepts: Union[str, Mapping[str, Any], None] = "merged_2560", tokenizer: Optional[str] = None,
                 top_k_concepts: int = 3, max_caption_tokens: Optional[int] = None,
                 caption: bool = True, multimask: Union[str, int] = "auto",
                 prompt_batch_size: int = 64, image_batch_size: int = 1, dtype: str = "float32", seed: int = 0,
                 model_kwargs: Optional[dict[str, Any]] = None) -> None:
        self._set_options(builders=BUILDERS, checkpoint_variant=CHECKPOINT_VARIANT, variant=variant,
                          checkpoint=checkpoint, multimask=multimask, prompt_batch_size=prompt_batch_size,
                          image_batch_size=image_batch_size, dtype=dtype, seed=seed, model_kwargs=model_kwargs)
        if isinstance(top_k_concepts, bool) or not isinstance(top_k_concepts, int) or top_k_concepts < 1:
            raise ValueError(f"top_k_concepts must be an int >= 1 (got {top_k_concepts!r})")
        if max_caption_tokens is not None and max_caption_tokens < 1:
            raise ValueError(f"max_caption_tokens must be >= 1 (got {max_caption_tokens})")
        self.concepts, self.tokenizer, self.top_k_concepts = concepts, tokenizer, top_k_concepts
        self.max_caption_tokens, self.caption = max_caption_tokens, caption

    def required_files(self) -> list[str]:
        files = []
        if self.checkpoint is not None:
            spec = CHECKPOINTS.get(self.checkpoint)
            files.append(f"{spec.filename} ({spec.source})" if spec else str(self.checkpoint))
        if isinstance(self.concepts, Mapping):
            if "names_file" in self.concepts:
                files.append(str(self.concepts["names_file"]))
            enc = self.concepts.get("text_encoder")
            if isinstance(enc, Mapping):
                files.append(f"the files of text encoder {enc.get('type')!r} (concept vocabulary)")
        elif self.concepts is not None:
            spec = CONCEPTS.get(self.concepts)
            files.append(f"{spec.filename} ({spec.source})" if spec else str(self.concepts))
        if self.caption and not self._byte_tokenizer():
            files.append(f"{TOKENIZER.filename} ({TOKENIZER.source})" if self.tokenizer is None
                         else str(self.tokenizer))
        return files

    def remote_files(self) -> list:
        files = [CHECKPOINTS[self.checkpoint]] if self.checkpoint in CHECKPOINTS else []
        if isinstance(self.concepts, str) and self.concepts in CONCEPTS:
            files.append(CONCEPTS[self.concepts])
        if self.caption and not self._byte_tokenizer() and self.tokenizer is None:
            files.append(TOKENIZER)
        return files

    def _byte_tokenizer(self) -> bool:
        return self.variant == "tiny" and self.checkpoint is None and self.tokenizer is None

    def _load_tokenizer(self):
        if self._byte_tokenizer():
            return ByteTokenizer()
        return SentencePieceTokenizer(model_file=hub.resolve(self.tokenizer or TOKENIZER))

    def _build_model(self, vocab_size: int) -> TapModel:
        kwargs = dict(self.model_kwargs)
        kwargs.setdefault("vocab_size", vocab_size)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            model = BUILDERS[self.variant](**kwargs)
        if self.checkpoint is not None:
            spec = CHECKPOINTS.get(self.checkpoint, self.checkpoint)
            path = hub.resolve(spec)
            load_strict(model, read_tap_checkpoint(path), source=str(path))
        return model

    def setup(self, device: str = "cpu") -> None:
        if self.predictor is not None and self.device == device:
            return
        dtype = self._torch_dtype(device)
        tokenizer = self._load_tokenizer() if (self.caption or self._byte_tokenizer()) else None
        vocab = tokenizer.n_words if tokenizer is not None else 32000
        model = self._build_model(vocab).eval().to(device=device, dtype=dtype)
        model.pixel_mean.data = model.pixel_mean.data.float()  # normalisation stays float32
        model.pixel_rsig.data = model.pixel_rsig.data.float()
        model.prompt_encoder.coord_matrix.data = model.prompt_encoder.coord_matrix.data.float()
        concepts: Optional[ConceptMatrix] = None
        if self.concepts is not None:
            concepts = concepts_from_spec(self.concepts,
                                          dim=model.image_decoder.sem_pred.layers[-1].out_features)
        self.predictor = TapPredictor(model, tokenizer=tokenizer, concepts=concepts,
                                      top_k_concepts=self.top_k_concepts, caption=self.caption,
                                      max_caption_tokens=self.max_caption_tokens,
                                      multimask=self.multimask,
                                      prompt_batch_size=self.prompt_batch_size)
        self.device = device

    def to_regions(self, prediction) -> Regions:
        return to_regions(prediction)


def to_regions(pred: TapPrediction) -> Regions:
    """:class:`TapPrediction` -> :class:`openvocab.structures.Regions` (RLE masks)."""
    concepts = None
    if pred.concept_names is not None:
        concepts = tuple(tuple(Concept(name=n, score=float(s)) for n, s in zip(names, scores))
                         for names, scores in zip(pred.concept_names, pred.concept_scores))
    masks = pred.rles if pred.rles is not None else [encode_mask(m) for m in pred.masks]
    return Regions(masks=tuple(masks),
                   mask_scores=np.asarray(pred.scores, dtype=np.float32),
                   concepts=concepts,
                   captions=None if pred.captions is None else tuple(pred.captions))
