"""The registered Grounding DINO detector stage: tags (prompt chunks) or free text -> Detections."""
from __future__ import annotations

import string
import tempfile
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch

from openvocab.registry import DETECTORS
from openvocab.stages import Detector
from openvocab.structures import Detections, Prompt

from .convert import convert_hf_state_dict, convert_state_dict, is_hf_state_dict
from .model import build_gdino_swinb_cogcoor, build_gdino_swint_ogc, build_gdino_tiny
from .postprocess import (box_threshold, char_span_to_token_span, cxcywh_to_xyxy_pixels, nms_detections,
                          phrase_spans, tag_scores)
from .preprocess import preprocess_images
from .tokenize import MAX_TEXT_LEN, count_tokens, load_tokenizer, preprocess_caption, tokenize
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


@DETECTORS.register_module()
class GroundingDINODetector(Detector):
    """Grounding DINO (official or HF checkpoints) as a tag/free-text detector."""

    max_text_tokens = MAX_TEXT_LEN

    def __init__(self, *, variant: str = "swint_ogc", checkpoint: Optional[str] = "groundingdino_swint_ogc",
                 vocab: Optional[str] = None, box_threshold: float = 0.35, text_threshold: float = 0.25,
                 nms_iou: Optional[float] = 0.5, agnostic_nms_iou: Optional[float] = None,
                 max_detections: int = 100, seed: int = 0, resize: tuple[int, int] = (800, 1333),
                 dtype: str = "float32") -> None:
        if variant not in _BUILDERS:
            raise ValueError(f"unknown variant {variant!r}; choose from {sorted(_BUILDERS)}")
        for name, v in (("box_threshold", box_threshold), ("text_threshold", text_threshold)):
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {v}")
        if dtype not in ("float32", "bfloat16"):
            raise ValueError("dtype must be 'float32' or 'bfloat16'")
        self.variant, self.checkpoint, self.vocab = variant, checkpoint, vocab
        self.box_threshold, self.text_threshold = box_threshold, text_threshold
        self.nms_iou, self.agnostic_nms_iou = nms_iou, agnostic_nms_iou
        self.max_detections, self.seed, self.resize, self.dtype = max_detections, seed, tuple(resize), dtype
        self.model = None
        self.tokenizer = None
        self.device = "cpu"

    def required_files(self) -> list[str]:
        out = []
        if self.checkpoint in WEIGHTS:
            out.append(WEIGHTS[self.checkpoint].filename)
        if self.vocab is None and self.variant != "tiny":
            out.append(WEIGHTS["bert-base-uncased-vocab"].filename)
        return out

    def _load_tokenizer(self):
        if self.vocab is not None:
            return load_tokenizer(self.vocab)
        if self.variant == "tiny":
            d = Path(tempfile.mkdtemp(prefix="gdino_vocab_"))
            (d / "vocab.txt").write_text("\n".join(tiny_vocab()) + "\n")
            return load_tokenizer(str(d / "vocab.txt"))
        from openvocab.hub import resolve

        return load_tokenizer(str(resolve(WEIGHTS["bert-base-uncased-vocab"])))

    def setup(self, device: str = "cpu") -> None:
        self.tokenizer = self._load_tokenizer()
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

    def count_tokens(self, text: str) -> int:
        if self.tokenizer is None:
            self.tokenizer = self._load_tokenizer()
        return count_tokens(self.tokenizer, text)

    def _forward(self, images: Sequence[np.ndarray], captions: Sequence[str]):
        if self.model is None:
            raise ValueError("call setup() before detecting")
        batch = preprocess_images(images, self.resize[0], self.resize[1])
        tb = tokenize(self.tokenizer, captions)
        dev = self.device
        with torch.no_grad(), torch.autocast(device_type=torch.device(dev).type, dtype=torch.bfloat16,
                                             enabled=self.dtype == "bfloat16"):
            out = self.model(batch.pixel_values.to(dev), batch.pixel_mask.to(dev), tb.input_ids.to(dev),
                             tb.attention_mask.to(dev), tb.text_self_attention_masks.to(dev),
                             tb.position_ids.to(dev))
        return batch, tb, out.pred_logits.float().cpu(), out.pred_boxes.float().cpu()

    def detect(self, images: Sequence[np.ndarray], prompts: Sequence[Sequence[Prompt]]) -> list[Detections]:
        if len(images) != len(prompts):
            raise ValueError("one prompt list per image is required")
        boxes: list[list[torch.Tensor]] = [[] for _ in images]
        scores: list[list[torch.Tensor]] = [[] for _ in images]
        names: list[list[str]] = [[] for _ in images]
        sizes = None
        n_chunks = max((len(p) for p in prompts), default=0)
        for c in range(n_chunks):
            idx = [i for i, p in enumerate(prompts) if c < len(p)]
            chunk = [prompts[i][c] for i in idx]
            batch, tb, logits, pboxes = self._forward([images[i] for i in idx], [p.caption for p in chunk])
            for j, (i, pr) in enumerate(zip(idx, chunk)):
                th = box_threshold(logits[j], pboxes[j], self.box_threshold)
                spans = [char_span_to_token_span(tb.offsets[j], s.start, s.end) for s in pr.spans]
                ts = tag_scores(th.probs, spans)
                if ts.shape[1] == 0 or th.indices.numel() == 0:
                    continue
                best, arg = ts.max(-1)
                keep = best > self.text_threshold
                h, w = batch.original_sizes[j]
                boxes[i].append(cxcywh_to_xyxy_pixels(th.boxes[keep], h, w))
                scores[i].append(th.scores[keep])
                names[i] += [pr.spans[k].name for k in arg[keep].tolist()]
        out = []
        for i in range(len(images)):
            if not names[i]:
                out.append(Detections())
                continue
            b, s = torch.cat(boxes[i]), torch.cat(scores[i])
            uniq = {n: k for k, n in enumerate(dict.fromkeys(names[i]))}
            lab = torch.tensor([uniq[n] for n in names[i]])
            keep = nms_detections(b, s, lab, iou=self.nms_iou, agnostic_iou=self.agnostic_nms_iou)
            keep = keep[: self.max_detections]
            labels = tuple(names[i][k] for k in keep.tolist())
            out.append(Detections(boxes=b[keep].numpy(), scores=s[keep].numpy(), labels=labels, phrases=labels))
        return out

    def detect_text(self, images: Sequence[np.ndarray], texts: Sequence[str]) -> list[Detections]:
        """Official ``predict``: queries above box_threshold (query order), phrase = caption spans of
        tokens above text_threshold."""
        if len(images) != len(texts):
            raise ValueError("one text per image is required")
        caps = [preprocess_caption(t) for t in texts]
        batch, tb, logits, pboxes = self._forward(images, caps)
        out = []
        for j, cap in enumerate(caps):
            th = box_threshold(logits[j], pboxes[j], self.box_threshold)
            phrases = tuple(phrase_spans(p, tb.offsets[j], cap, self.text_threshold) for p in th.probs)
            h, w = batch.original_sizes[j]
            b = cxcywh_to_xyxy_pixels(th.boxes, h, w)
            out.append(Detections(boxes=b.numpy(), scores=th.scores.numpy(), labels=phrases, phrases=phrases))
        return out
