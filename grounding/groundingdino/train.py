"""Grounding DINO fine-tuning as an mmengine model (``configs/train/detector_*.py``).

The wrapped network is built and loaded exactly as :class:`GroundingDINODetector` builds it (same
variants, checkpoint resolution and conversion, tokenizer), and it keeps one such detector stage for
``mode='predict'``, so training-time predictions go through the inference post-processing unchanged.
Images go through the inference preprocessing (:func:`preprocess_images` with ``resize``) and the
caption is the inference prompt (:class:`grounding.prompt.TagPromptBuilder`: ``"a . b . c ."``).

Losses (DINO / Grounding DINO): per image, Hungarian matching of queries to objects; contrastive focal
classification of every query over the prompt's tokens (target: the token span of the matched object's
class); L1 + GIoU on matched boxes; for every decoder layer and for the encoder's top-k proposals.
"""
from __future__ import annotations

import math
import random
from typing import Optional, Sequence

import torch
from mmengine.model import BaseModel

from openvocab.boxes import clip_detections
from ..prompt import Prompt, TagPromptBuilder, normalise_tag
from openvocab.registry import MODELS
from openvocab.structures import Detections
from openvocab.training.datasets import TrainSample
from openvocab.training.losses import MatchCosts, deep_supervision_losses
from openvocab.training.preprocessor import TrainSamplePassThrough

from .detector import GroundingDINODetector
from .model import GroundingDINO
from .postprocess import char_span_to_token_span
from .preprocess import preprocess_images
from .tokenize import tokenize


def positive_map(offsets: Sequence[tuple[int, int]], prompt: Prompt, labels: Sequence[str], num_tokens: int,
                 *, source: str = "image") -> torch.Tensor:
    """``[G, num_tokens]``: row g spreads 1 over the tokens of object g's class span in ``prompt``."""
    spans = {s.name: char_span_to_token_span(offsets, s.start, s.end) for s in prompt.spans}
    pm = torch.zeros((len(labels), num_tokens))
    for g, label in enumerate(labels):
        toks = spans.get(normalise_tag(label))
        if toks is None:
            raise ValueError(f"{source}: object class {label!r} is not in the prompt {prompt.caption!r}")
        if not toks:
            raise ValueError(f"{source}: class {label!r} has no tokens (prompt truncated?)")
        pm[g, toks] = 1.0 / len(toks)
    return pm


def normalised_cxcywh(sample: TrainSample) -> torch.Tensor:
    """A sample's xyxy pixel boxes -> ``[N, 4]`` cxcywh normalised to the image (the network's output frame)."""
    h, w = sample.image.shape[:2]
    b = torch.as_tensor(sample.boxes, dtype=torch.float32).reshape(-1, 4)
    b = b / torch.tensor([w, h, w, h], dtype=torch.float32)
    b = b.clamp(0, 1)
    return torch.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2, b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], -1)


@torch.no_grad()
def init_logit_prior(model: GroundingDINO, prior_prob: float, scale: float = 0.1) -> None:
    """Initialise a random model so every contrastive logit starts near ``log(p / (1 - p))``.

    The contrastive head has no bias, and the LayerNorm-ed query and text features of a random model
    give logits of standard deviation ~16: the focal loss then first drives every logit negative,
    which random models learn by collapsing all text tokens onto one direction (and then cannot tell
    classes apart). Instead the last norms of the query (decoder and encoder-proposal) and text paths
    get a small gain ``scale`` and opposite biases ``+a*u`` / ``-a*u`` with ``a**2 = -logit(p)``, so
    every query-token logit starts at about ``logit(p)`` with a small spread, the prior init
    RetinaNet/DETR use for their classifier bias.
    """
    logit = math.log(prior_prob / (1 - prior_prob))
    d = model.transformer.decoder.norm.weight.shape[0]
    u = torch.ones(d) / math.sqrt(d)
    a = math.sqrt(-logit)
    for norm, sign in ((model.transformer.decoder.norm, 1.0), (model.transformer.enc_output_norm, 1.0),
                       (model.transformer.encoder.text_layers[-1].norm2, -1.0)):
        norm.weight.fill_(scale)
        norm.bias.copy_(sign * a * u)


@MODELS.register_module()
class GroundingDINOTrainModel(BaseModel):
    """Trainable Grounding DINO.

    Args:
        variant, checkpoint, vocab, seed: as :class:`GroundingDINODetector` (``checkpoint=None``: random init).
        classes: the class names; the prompt is ``" . "``-joined by the prompt builder.
        shuffle_classes: shuffle the class order of each image's prompt (off: one fixed prompt).
        max_negative_classes: keep only this many randomly chosen absent classes in an image's prompt
            (``None``: all of them).
        freeze_backbone / freeze_text_encoder: no gradients (and eval mode) for Swin / BERT.
        loss_cls, loss_bbox, loss_giou: loss weights; match_*: Hungarian cost weights.
        aux_loss: losses on every decoder layer (else the last only); enc_loss: on the encoder proposals.
        resize: ``(short side, max size)`` of the preprocessing (inference uses the same).
        box_threshold, text_threshold, nms_iou, max_detections: post-processing of ``mode='predict'``.
        prior_prob: random init only (``checkpoint=None``): start every query-token probability near
            this value (RetinaNet/DETR prior init, see :func:`init_logit_prior`); ``None``: leave the init.
        data_preprocessor: default :class:`TrainSamplePassThrough` (images are preprocessed here).
    """

    def __init__(self, *, classes: Sequence[str], variant: str = "tiny", checkpoint: Optional[str] = None,
                 vocab: Optional[str] = None, seed: int = 0, shuffle_classes: bool = False,
                 max_negative_classes: Optional[int] = None, freeze_backbone: bool = False,
                 freeze_text_encoder: bool = False, loss_cls: float = 1.0, loss_bbox: float = 5.0,
                 loss_giou: float = 2.0, match_cls: float = 2.0, match_bbox: float = 5.0, match_giou: float = 2.0,
                 aux_loss: bool = True, enc_loss: bool = True, resize: Sequence[int] = (800, 1333),
                 box_threshold: float = 0.0, text_threshold: float = 0.0, nms_iou: Optional[float] = 0.5,
                 max_detections: int = 100, prior_prob: Optional[float] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if data_preprocessor is None:
            data_preprocessor = TrainSamplePassThrough()
        elif isinstance(data_preprocessor, dict):  # built here: mmengine's own registry has no openvocab scope
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        names = [normalise_tag(c) for c in classes]
        if not names or any(not n for n in names) or len(set(names)) != len(names):
            raise ValueError(f"classes must be distinct non-empty names, got {list(classes)}")
        if max_negative_classes is not None and max_negative_classes < 0:
            raise ValueError("max_negative_classes must be >= 0 or None")
        if prior_prob is not None and not 0.0 < prior_prob < 0.5:
            raise ValueError(f"prior_prob must be in (0, 0.5), got {prior_prob}")
        if prior_prob is not None and checkpoint is not None:
            raise ValueError("prior_prob re-initialises output norms of a random model; it would overwrite "
                             f"the weights of checkpoint {checkpoint!r}")
        if len(resize) != 2:
            raise ValueError(f"resize must be (short side, max size), got {resize}")
        self.classes = tuple(names)
        self.shuffle_classes, self.max_negative_classes = shuffle_classes, max_negative_classes
        self.freeze_backbone, self.freeze_text_encoder = freeze_backbone, freeze_text_encoder
        self.weights = dict(w_cls=loss_cls, w_bbox=loss_bbox, w_giou=loss_giou)
        self.costs = MatchCosts(cls=match_cls, bbox=match_bbox, giou=match_giou)
        self.aux_loss, self.enc_loss = aux_loss, enc_loss
        self.resize = (int(resize[0]), int(resize[1]))
        self._rng = random.Random(seed)
        # The inference stage builds, loads (official/HF/exported checkpoints) and post-processes.
        self.stage = GroundingDINODetector(variant=variant, checkpoint=checkpoint, vocab=vocab, seed=seed,
                                           resize=self.resize, box_threshold=box_threshold,
                                           text_threshold=text_threshold, nms_iou=nms_iou,
                                           max_detections=max_detections)
        self.stage.setup("cpu")
        self.gdino = self.stage.model
        if prior_prob is not None:
            init_logit_prior(self.gdino, prior_prob)
        self.tokenizer = self.stage.tokenizer
        self.builder = TagPromptBuilder()
        if freeze_backbone:
            self.gdino.backbone.requires_grad_(False)
        if freeze_text_encoder:
            self.gdino.bert.requires_grad_(False)
        self._fixed_prompt = self._prompt(self.classes)
        self.train()

    def train(self, mode: bool = True):
        super().train(mode)
        if self.freeze_backbone:
            self.gdino.backbone.eval()
        if self.freeze_text_encoder:
            self.gdino.bert.eval()
        return self

    def _prompt(self, names: Sequence[str]) -> Prompt:
        prompts = self.builder.build(names, self.stage.count_tokens, self.stage.max_text_tokens)
        if len(prompts) != 1:
            raise ValueError(f"{len(names)} classes do not fit one {self.stage.max_text_tokens}-token prompt; "
                             f"set max_negative_classes to train on class subsets")
        return prompts[0]

    def prompt_for(self, sample: TrainSample) -> Prompt:
        """The training prompt of one image: every class (fixed order) unless class sampling is on."""
        if not self.shuffle_classes and self.max_negative_classes is None:
            return self._fixed_prompt
        present = list(dict.fromkeys(normalise_tag(l) for l in sample.labels))
        absent = [c for c in self.classes if c not in present]
        if self.max_negative_classes is not None and len(absent) > self.max_negative_classes:
            absent = self._rng.sample(absent, self.max_negative_classes)
        names = [c for c in self.classes if c in present or c in absent]
        if self.shuffle_classes:
            self._rng.shuffle(names)
        return self._prompt(names)

    def forward(self, data: list[TrainSample], mode: str = "loss"):
        if mode == "loss":
            return self.loss(data)
        if mode == "predict":
            return self.predict(data)
        raise ValueError(f"unknown mode {mode!r} (expected 'loss' or 'predict')")

    def _device(self) -> torch.device:
        return next(self.gdino.parameters()).device

    def loss(self, data: list[TrainSample]) -> dict[str, torch.Tensor]:
        """The weighted losses (``loss_*`` last layer, ``d{i}.loss_*`` earlier layers, ``enc.loss_*``)."""
        if not data:
            raise ValueError("empty training batch")
        prompts = [self.prompt_for(s) for s in data]
        batch = preprocess_images([s.image for s in data], self.resize[0], self.resize[1])
        tb = tokenize(self.tokenizer, [p.caption for p in prompts])
        dev = self._device()
        out = self.gdino(batch.pixel_values.to(dev), batch.pixel_mask.to(dev), tb.input_ids.to(dev),
                         tb.attention_mask.to(dev), tb.text_self_attention_masks.to(dev), tb.position_ids.to(dev),
                         return_intermediate=True)
        t = tb.input_ids.shape[1]
        pos_maps = [positive_map(tb.offsets[i], prompts[i], s.labels, t, source=s.info.file if s.info else "image")
                    .to(dev) for i, s in enumerate(data)]
        gt = [normalised_cxcywh(s).to(dev) for s in data]
        layers = list(zip(out.layer_logits, out.layer_boxes))
        if not self.aux_loss:
            layers = layers[-1:]
        layers = [(lg[..., :t], bx) for lg, bx in layers]
        enc = (out.enc_logits[..., :t], out.enc_boxes) if self.enc_loss else None
        return deep_supervision_losses(layers, out.text_token_mask, pos_maps, gt, encoder=enc, costs=self.costs,
                                       **self.weights)

    @torch.no_grad()
    def predict(self, data: list[TrainSample]) -> list[Detections]:
        """Per image, :class:`Detections` over all classes via the inference stage's ``detect`` (boxes clipped
        to the image, as the pipeline clips them)."""
        self.stage.device = str(self._device())
        found = self.stage.detect([s.image for s in data], [self.classes] * len(data))
        return [clip_detections(d, *s.image.shape[:2]) for d, s in zip(found, data)]

    def export_state_dict(self) -> dict[str, torch.Tensor]:
        """The network's weights in the layout ``GroundingDINODetector(checkpoint=PATH)`` loads
        (tied box heads stored under each name, as separate tensors, so safetensors can save them)."""
        return {k: v.detach().clone() for k, v in self.gdino.state_dict().items()}
