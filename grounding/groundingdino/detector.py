"""The registered Grounding DINO detector stage: tag names (as prompt chunks) or free text -> Detections."""
from __future__ import annotations

import contextlib
import string
import tempfile
from pathlib import Path
from typing import Iterator, Optional, Sequence

import numpy as np
import torch

from openvocab.boxes import merge_detections
from ..prompt import Prompt, PromptChunker
from openvocab.registry import DETECTORS
from openvocab.stages import Detector
from openvocab.structures import Detections

from .convert import convert_hf_state_dict, convert_state_dict, is_hf_state_dict
from .model import build_gdino_swinb_cogcoor, build_gdino_swint_ogc, build_gdino_tiny
from .postprocess import best_tags, box_threshold, char_span_to_token_span, cxcywh_to_xyxy_pixels, phrase_spans
from .preprocess import pad_batch, resize_image, to_normalized_tensor
from .text_cache import TextFeatureCache
from .tokenize import MAX_TEXT_LEN, count_tokens, load_tokenizer, preprocess_caption
from .weights import WEIGHTS

_BUILDERS = {"swint_ogc": build_gdino_swint_ogc, "swinb_cogcoor": build_gdino_swinb_cogcoor, "tiny": None}
_COMMON_WORDS = ("a an the of in on at with and person man woman child dog cat car bus truck bicycle horse bird "
                 "tree sky road red blue green white black shirt fire hydrant traffic light table chair cup "
                 "bottle phone riding sitting standing").split()


def tiny_vocab() -> list[str]:
    """Small self-contained WordPiece vocab for the random tiny pipeline (ids are not BERT ids)."""
    toks = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    toks += list(string.punctuation) + list(string.digits) + list(string.ascii_lowercase)
    toks += ["##" + c for c in string.ascii_lowercase + string.digits]
    toks += [w for w in dict.fromkeys(_COMMON_WORDS) if w not in toks]
    return toks


def _image_size(im) -> tuple[int, int]:
    if isinstance(im, np.ndarray) and im.ndim == 3:
        return int(im.shape[0]), int(im.shape[1])
    if hasattr(im, "size") and not isinstance(im, np.ndarray):  # PIL
        return int(im.size[1]), int(im.size[0])
    raise ValueError(f"expected an HxWx3 uint8 RGB array or a PIL image, got {type(im).__name__}")


@DETECTORS.register_module()
class GroundingDINODetector(Detector):
    """Grounding DINO (official or HF checkpoints) as a tag/free-text detector.

    Args:
        variant: ``swint_ogc``, ``swinb_cogcoor`` or ``tiny`` (random test model, its own small vocab).
        checkpoint: a :data:`WEIGHTS` name, a local file (official ``.pth`` or HF ``.safetensors``) or ``None``.
        vocab: local bert vocab.txt (default: bert-base-uncased, fetched and cached like checkpoints).
        box_threshold / text_threshold: the official ``predict`` thresholds (a box is kept if its best slot
            probability exceeds ``box_threshold``; in tag mode its best tag must exceed ``text_threshold``).
        nms_iou: per-tag NMS IoU (``None`` = off); agnostic_nms_iou: class-agnostic NMS after it (``None`` = off).
            Both run on the merged boxes of all prompt chunks.
        max_detections: boxes kept per image (best first).
        prompt_builder: how tag names become captions (:class:`grounding.prompt.TagPromptBuilder` config;
            default ``"a . b . c ."`` chunked under the 256-token limit).
        text_cache_size: captions whose BERT features are kept (one ``--vocab`` job has one per chunk).
        pad_batch: ``False`` (default): images are batched only with images of the same resized size, so
            every image gets exactly its single-image result. ``True``: all images share one zero-padded
            batch with padding masks like the official ``nested_tensor_from_tensor_list`` (fewer, larger
            forwards; as in the official code, an image's outputs then depend on the batch's padded size,
            because the Swin windows and GroupNorm see the padding).
        dtype: ``bfloat16`` runs the model under bf16 autocast; ``float32`` adds no autocast of its own
            (a pipeline's ``--precision`` autocast still applies).

    Boxes are in original-image pixels and not clipped (the pipeline clips every detector's boxes;
    ``grounding.verify`` keeps the official unclipped numbers).
    """

    max_text_tokens = MAX_TEXT_LEN

    def __init__(self, *, variant: str = "swint_ogc", checkpoint: Optional[str] = "groundingdino_swint_ogc",
                 vocab: Optional[str] = None, box_threshold: float = 0.35, text_threshold: float = 0.25,
                 nms_iou: Optional[float] = 0.5, agnostic_nms_iou: Optional[float] = None,
                 max_detections: int = 100, seed: int = 0, resize: tuple[int, int] = (800, 1333),
                 prompt_builder: Optional[dict] = None, text_cache_size: int = 64, pad_batch: bool = False,
                 dtype: str = "float32") -> None:
        if variant not in _BUILDERS:
            raise ValueError(f"unknown variant {variant!r}; choose from {sorted(_BUILDERS)}")
        for name, v in (("box_threshold", box_threshold), ("text_threshold", text_threshold)):
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {v}")
        for name, v in (("nms_iou", nms_iou), ("agnostic_nms_iou", agnostic_nms_iou)):
            if v is not None and not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must be in [0, 1] or None, got {v}")
        if max_detections < 1:
            raise ValueError(f"max_detections must be >= 1, got {max_detections}")
        if text_cache_size < 1:
            raise ValueError(f"text_cache_size must be >= 1, got {text_cache_size}")
        if dtype not in ("float32", "bfloat16"):
            raise ValueError("dtype must be 'float32' or 'bfloat16'")
        self.variant, self.checkpoint, self.vocab = variant, checkpoint, vocab
        self.box_threshold, self.text_threshold = box_threshold, text_threshold
        self.nms_iou, self.agnostic_nms_iou = nms_iou, agnostic_nms_iou
        self.max_detections, self.seed, self.resize, self.dtype = max_detections, seed, tuple(resize), dtype
        self.pad_batch = pad_batch
        self.prompt_builder = prompt_builder
        self.text_cache_size = text_cache_size
        self.model = None
        self.tokenizer = None
        self.device = "cpu"
        self._chunker: Optional[PromptChunker] = None
        self._text_cache: Optional[TextFeatureCache] = None

    def required_files(self) -> list[str]:
        out = []
        if self.checkpoint in WEIGHTS:
            out.append(WEIGHTS[self.checkpoint].filename)
        if self.vocab is None and self.variant != "tiny":
            out.append(WEIGHTS["bert-base-uncased-vocab"].filename)
        return out

    def remote_files(self) -> list:
        files = [WEIGHTS[self.checkpoint]] if self.checkpoint in WEIGHTS else []
        if self.vocab is None and self.variant != "tiny":
            files.append(WEIGHTS["bert-base-uncased-vocab"])
        return files

    def _load_tokenizer(self):
        if self.vocab is not None:
            return load_tokenizer(self.vocab)
        if self.variant == "tiny":
            with tempfile.TemporaryDirectory(prefix="gdino_vocab_") as d:
                (Path(d) / "vocab.txt").write_text("\n".join(tiny_vocab()) + "\n")
                return load_tokenizer(str(Path(d) / "vocab.txt"))
        from openvocab.hub import resolve

        return load_tokenizer(str(resolve(WEIGHTS["bert-base-uncased-vocab"])))

    def setup(self, device: str = "cpu") -> None:
        self.tokenizer = self._load_tokenizer()
        with torch.random.fork_rng(devices=[]):  # random init of the tiny model without touching global RNG
            torch.manual_seed(self.seed)
            if self.variant == "tiny":
                model = build_gdino_tiny(vocab_size=len(self.tokenizer.get_vocab()))
            else:
                model = _BUILDERS[self.variant]()
        if self.checkpoint is not None:
            from openvocab.checkpoint import load_strict, read_state_dict
            from openvocab.hub import resolve

            spec = WEIGHTS.get(self.checkpoint, self.checkpoint)
            sd = read_state_dict(resolve(spec), key="model")
            sd = convert_hf_state_dict(sd) if is_hf_state_dict(sd) else convert_state_dict(sd)
            load_strict(model, sd, source=str(self.checkpoint))
        self.model = model.eval().to(device)
        self.device = device
        self._text_cache = None

    def count_tokens(self, text: str) -> int:
        if self.tokenizer is None:
            self.tokenizer = self._load_tokenizer()
        return count_tokens(self.tokenizer, text)

    @property
    def text_cache(self) -> TextFeatureCache:
        """Tokenized captions and their text features, once per caption (for this model and tokenizer)."""
        cache = self._text_cache
        if cache is None or cache.model is not self.model or cache.tokenizer is not self.tokenizer:
            cache = self._text_cache = TextFeatureCache(self.model, self.tokenizer, size=self.text_cache_size)
        return cache

    @property
    def chunker(self) -> PromptChunker:
        """Tag names -> prompt chunks under the 256-token limit (built once per vocabulary)."""
        if self._chunker is None:
            self._chunker = PromptChunker(count_tokens=self.count_tokens, max_tokens=self.max_text_tokens,
                                          builder=self.prompt_builder)
        return self._chunker

    def prepare(self, image: np.ndarray) -> torch.Tensor:
        """The official resize + normalisation of one image: ``float32 [3, h, w]`` (loader workers run it)."""
        _image_size(image)
        return to_normalized_tensor(resize_image(image, self.resize[0], self.resize[1]))

    def _autocast(self):
        if self.dtype == "bfloat16":
            return torch.autocast(device_type=torch.device(self.device).type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _run(self, images: Sequence, captions: Sequence[Sequence[str]],
             prepared: Optional[Sequence] = None) -> Iterator[tuple]:
        """Yields ``(image index, chunk index, (token offsets, word ids), logits [Q,256], boxes [Q,4])`` for each
        caption of every image. The backbone runs once per image batch and each prompt chunk reuses its
        features; each caption is tokenized and text-encoded once (:class:`TextFeatureCache`) and runs with
        the images that share it."""
        if self.model is None or self.tokenizer is None:
            raise ValueError("call setup() before detecting")
        tensors = list(prepared) if prepared is not None else [self.prepare(im) for im in images]
        groups: dict = {}
        for i, t in enumerate(tensors):
            groups.setdefault("all" if self.pad_batch else tuple(t.shape), []).append(i)
        dev = self.device
        for idx in groups.values():
            pv, pm = pad_batch([tensors[i] for i in idx])
            pv, pm = pv.to(dev), pm.to(dev)
            with torch.no_grad(), self._autocast():
                feats = self.model.backbone(pv)
            for c in range(max(len(captions[i]) for i in idx)):
                by_caption: dict[str, list[int]] = {}
                for k, i in enumerate(idx):
                    if c < len(captions[i]):
                        by_caption.setdefault(captions[i][c], []).append(k)
                for caption, sel in by_caption.items():
                    s = torch.tensor(sel, device=dev)
                    with torch.no_grad(), self._autocast():
                        text = self.text_cache.get(caption, dev)
                        n = len(sel)
                        out = self.model(pv[s], pm[s], *(x.expand(n, *x.shape[1:]) for x in text.tensors),
                                         backbone_features=[f[s] for f in feats],
                                         text_features=text.features.expand(n, -1, -1))
                    logits, boxes = out.pred_logits.float().cpu(), out.pred_boxes.float().cpu()
                    for j, k in enumerate(sel):
                        yield idx[k], c, (text.offsets, text.word_ids), logits[j], boxes[j]

    def detect(self, images: Sequence[np.ndarray], tag_names: Sequence[Sequence[str]],
               prepared: Optional[Sequence] = None) -> list[Detections]:
        """Boxes for the tags ``tag_names[i]`` in ``images[i]``: the names become prompt chunks
        (:attr:`chunker`, cached per vocabulary), then :meth:`detect_prompts`."""
        if len(images) != len(tag_names):
            raise ValueError("one list of tag names per image is required")
        return self.detect_prompts(images, [self.chunker(names) for names in tag_names], prepared=prepared)

    def detect_prompts(self, images: Sequence[np.ndarray], prompts: Sequence[Sequence[Prompt]],
                       prepared: Optional[Sequence] = None) -> list[Detections]:
        """Each box gets the tag (of its own prompt chunk) whose token span scores highest, and that span's
        probability as its score (the box threshold still uses the best of all slots, as the official
        ``predict``); the boxes of all chunks are merged, then per-tag / class-agnostic NMS and
        ``max_detections`` (:func:`openvocab.boxes.merge_detections`). Labels are the spans' tag names."""
        if len(images) != len(prompts):
            raise ValueError("one prompt list per image is required")
        sizes = [_image_size(im) for im in images]
        parts: list[list[Detections]] = [[] for _ in images]
        todo = [i for i, p in enumerate(prompts) if len(p)]
        caps = [[p.caption for p in prompts[i]] for i in todo]
        todo_prepared = None if prepared is None else [prepared[i] for i in todo]
        for k, c, (offsets, _), logits, pboxes in self._run([images[i] for i in todo], caps, todo_prepared):
            i = todo[k]
            pr = prompts[i][c]
            th = box_threshold(logits, pboxes, self.box_threshold)
            if th.indices.numel() == 0 or not pr.spans:
                continue
            score, arg = best_tags(th.probs, [char_span_to_token_span(offsets, s.start, s.end) for s in pr.spans])
            keep = score > self.text_threshold
            h, w = sizes[i]
            labels = tuple(pr.spans[t].label for t in arg[keep].tolist())
            parts[i].append(Detections(boxes=cxcywh_to_xyxy_pixels(th.boxes[keep], h, w).numpy(),
                                       scores=score[keep].numpy(),  # the label's own probability
                                       labels=labels))
        return [merge_detections(p, nms_iou=self.nms_iou, agnostic_nms_iou=self.agnostic_nms_iou,
                                 max_detections=self.max_detections) for p in parts]

    def detect_text(self, images: Sequence[np.ndarray], texts: Sequence[str]) -> list[Detections]:
        """Official ``predict``: queries above box_threshold (query order), scores = max slot probability;
        phrase = the caption words holding the tokens above text_threshold (caption text, whole words)."""
        if len(images) != len(texts):
            raise ValueError("one text per image is required")
        caps = [preprocess_caption(t) for t in texts]
        out: list[Optional[Detections]] = [None] * len(images)
        for i, _, (offsets, words), logits, pboxes in self._run(images, [[c] for c in caps]):
            th = box_threshold(logits, pboxes, self.box_threshold)
            phrases = tuple(phrase_spans(p, offsets, caps[i], self.text_threshold, words) for p in th.probs)
            h, w = _image_size(images[i])
            b = cxcywh_to_xyxy_pixels(th.boxes, h, w)
            out[i] = Detections(boxes=b.numpy(), scores=th.scores.numpy(), labels=phrases, phrases=phrases)
        return out
