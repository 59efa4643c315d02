"""RAM++ fine-tuning wrapper for mmengine's Runner (``openvocab train configs/train/tagger_*.py``).

Training uses the inference dataflow unchanged: :func:`tagging.recognize_anything.preprocess.preprocess` on
each ``TrainSample.image`` (the function :class:`RAMPlusTagger` calls), then ``encode_image`` and
``tag_logits``; the loss is the asymmetric loss on the tag logits (RAM/RAM++: ``gamma_neg=7,
gamma_pos=0, clip=0.05``). The tag description embeddings (``label_embed``) stay frozen, as in RAM++;
with ``freeze_backbone`` the Swin encoder does too (``image_proj``, the reweighting temperature and the
tagging decoder always train). Without a checkpoint the random init is rescaled by :func:`scratch_init`
so that a from-scratch model learns.

Description embeddings of the trained tags (``label_embed``):

* ``"checkpoint"`` (default with a checkpoint): each tag's rows of the checkpoint's ``label_embed``,
  found by name in the checkpoint's tag list (``checkpoint_tag_list``; default the official 4585);
* ``"random"`` (default without a checkpoint): random unit rows per tag (the tiny model);
* a path to an ``openvocab-openset-v1`` file (``openvocab embed-tags``): tags in that file take its
  rows, the others come from the checkpoint. This is how new open-set tags are trained: with
  ``tag_list=None`` the trained tags are the checkpoint's tags followed by the file's new ones.

``export_state_dict()`` is the :class:`RAMPlus` state_dict, which ``RAMPlusTagger(checkpoint=FILE,
variant=..., model_kwargs=..., tag_list=<the trained tags>)`` loads (``exported.safetensors``; the
tag list is also in its metadata, key ``tags``).
"""
from __future__ import annotations

import json
from collections import Counter
from typing import Mapping, Optional, Sequence

import torch
from mmengine.model import BaseModel

from openvocab.checkpoint import CheckpointError, load_strict, read_state_dict
from openvocab.hub import resolve
from openvocab.registry import MODELS
from openvocab.training.datasets import TrainSample
from openvocab.training.losses import asymmetric_loss
from openvocab.training.metrics import TagPrediction
from openvocab.training.preprocessor import TrainSamplePassThrough

from .convert import convert_state_dict
from .model import RAMPlus
from ..recognize_anything.openset import load_openset_embeddings
from ..recognize_anything.preprocess import IMAGENET_MEAN, IMAGENET_STD, preprocess
from ..recognize_anything.tag_lists import custom_tag_list, official_tag_list
from .tagger import VARIANTS
from .weights import CHECKPOINTS


def _names(spec: Sequence[str] | str) -> tuple[str, ...]:
    names = custom_tag_list(spec).names
    dup = sorted(n for n, c in Counter(names).items() if c > 1)
    if dup:
        raise ValueError(f"duplicate tags in the tag list: {dup}")
    return names


@torch.no_grad()
def scratch_init(model: RAMPlus, *, query_gain: float = 8.0, value_gain: float = 0.1) -> None:
    """Rescale a random :class:`RAMPlus` init so that it can be trained from scratch.

    With :meth:`RAMPlus._init_random` the image dominates the decoder's residual stream and the tag
    queries barely do: the gradients of different tags' logits w.r.t. the image tokens are nearly
    parallel (mean cosine ~0.84 on the tiny model), so early training only learns the label prior and
    the tags collapse onto one output. Larger tag queries (``wordvec_proj`` x ``query_gain``) and
    smaller cross-attention values (x ``value_gain``) make each tag read the image through its own path
    (cosine ~0.03) and the tiny model learns in a few hundred steps.
    """
    if query_gain <= 0 or value_gain <= 0:
        raise ValueError(f"gains must be positive, got query_gain={query_gain}, value_gain={value_gain}")
    if isinstance(model.wordvec_proj, torch.nn.Linear):
        model.wordvec_proj.weight.mul_(query_gain)
    for layer in model.tagging_head.encoder.layer:
        layer.crossattention.self.value.weight.mul_(value_gain)


@MODELS.register_module()
class RAMPlusTrainModel(BaseModel):
    """Trainable RAM++ (see the module docstring).

    Args:
        variant: ``"tiny"`` or ``"swin_l_384"``.
        model_kwargs: overrides for the variant's build function (``num_classes`` follows the tags).
        checkpoint: a name in :data:`tagging.ram_plus.weights.CHECKPOINTS`, a local file (official or
            exported layout, read as :class:`RAMPlusTagger` reads it), or ``None`` = random init (``seed``).
        checkpoint_tag_list: the checkpoint's tags in class order (list or file); ``None`` = official.
        tag_list: the trained tags (list or file), e.g. the dataset's classes; ``None`` = the checkpoint's
            tags (+ the open-set file's new ones).
        label_embed: ``"checkpoint"``, ``"random"`` or an open-set embedding file; ``None`` = ``"checkpoint"``
            with a checkpoint, else ``"random"``.
        freeze_backbone: freeze the Swin encoder.
        gamma_neg, gamma_pos, clip: asymmetric loss parameters.
        seed: seed of the random init.
        scratch_query_gain, scratch_value_gain: without a checkpoint, the random init's ``wordvec_proj`` and
            decoder cross-attention ``value`` weights are scaled by these (1, 1 = the inference random init),
            see :func:`scratch_init`.
        data_preprocessor: default :class:`TrainSamplePassThrough`.
    """

    def __init__(self, *, variant: str = "tiny", model_kwargs: Optional[Mapping] = None,
                 checkpoint: Optional[str] = None, checkpoint_tag_list: Sequence[str] | str | None = None,
                 tag_list: Sequence[str] | str | None = None, label_embed: Optional[str] = None,
                 freeze_backbone: bool = False, gamma_neg: float = 7.0, gamma_pos: float = 0.0, clip: float = 0.05,
                 seed: int = 0, scratch_query_gain: float = 8.0, scratch_value_gain: float = 0.1,
                 data_preprocessor=None, init_cfg=None) -> None:
        if data_preprocessor is None:
            data_preprocessor = TrainSamplePassThrough()
        elif isinstance(data_preprocessor, Mapping):  # openvocab's registry: buildable outside a Runner too
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if variant not in VARIANTS:
            raise ValueError(f"unknown RAM++ variant {variant!r}; choose from {sorted(VARIANTS)}")
        source = label_embed if label_embed is not None else ("checkpoint" if checkpoint else "random")
        if source == "checkpoint" and checkpoint is None:
            raise ValueError("label_embed='checkpoint' needs a checkpoint")
        if source == "random" and checkpoint is not None:
            raise ValueError("label_embed='random' would discard the checkpoint's description embeddings; "
                             "use 'checkpoint' or an open-set embedding file")
        if tag_list is not None and not isinstance(tag_list, str) and len(tag_list) == 0:
            raise ValueError("tag_list is empty")
        self.variant, self.freeze_backbone = variant, bool(freeze_backbone)
        self.loss_kwargs = dict(gamma_neg=float(gamma_neg), gamma_pos=float(gamma_pos), clip=float(clip))
        self.model_kwargs = dict(model_kwargs or {})

        ck_sd, ck_source, ck_tags = None, None, None
        if checkpoint is not None:
            path = resolve(CHECKPOINTS.get(checkpoint, checkpoint))
            ck_sd, ck_source = convert_state_dict(read_state_dict(path, key="model")), str(path)
            ck_tags = _names(checkpoint_tag_list) if checkpoint_tag_list is not None else official_tag_list().names
        open_names, open_embed, open_d = [], None, None
        if source not in ("checkpoint", "random"):
            open_names, open_embed, open_d = load_openset_embeddings(resolve(source))
        if tag_list is not None:
            tags = _names(tag_list)
        elif ck_tags is not None:
            tags = ck_tags + tuple(n for n in open_names if n not in ck_tags)
        elif open_names:
            tags = tuple(open_names)
        else:
            raise ValueError("tag_list is required without a checkpoint or an open-set embedding file")
        self.tags = tags

        kwargs = dict(self.model_kwargs)
        if kwargs.setdefault("num_classes", len(tags)) != len(tags):
            raise ValueError(f"model_kwargs num_classes={kwargs['num_classes']} but {len(tags)} tags are trained")
        if open_d is not None:
            kwargs.setdefault("descriptions_per_tag", open_d)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            self.model: RAMPlus = VARIANTS[variant](**kwargs)
        d = self.model.descriptions_per_tag
        if open_d is not None and open_d != d:
            raise ValueError(f"{source} has {open_d} descriptions per tag, the model {d}")
        if ck_sd is not None:
            ck_sd = dict(ck_sd)
            ck_embed = ck_sd.pop("label_embed", None)
            if ck_embed is None or ck_embed.ndim != 2 or ck_embed.shape[0] != len(ck_tags) * d:
                got = None if ck_embed is None else list(ck_embed.shape)
                raise CheckpointError(f"{ck_source}: label_embed {got} does not fit {len(ck_tags)} checkpoint "
                                      f"tags x {d} descriptions (pass checkpoint_tag_list=...)")
            ck_sd["label_embed"] = self._assemble(ck_embed, ck_tags, open_names, open_embed, d)
            load_strict(self.model, ck_sd, source=ck_source)
        elif open_embed is not None:
            missing = [t for t in tags if t not in open_names]
            if missing:
                raise ValueError(f"{source} has no descriptions for {missing} (and there is no checkpoint)")
            with torch.no_grad():
                self.model.label_embed.copy_(self._assemble(None, (), open_names, open_embed, d))
        if ck_sd is None:
            scratch_init(self.model, query_gain=scratch_query_gain, value_gain=scratch_value_gain)
        self.model.label_embed.requires_grad_(False)
        if self.freeze_backbone:
            self.model.visual_encoder.requires_grad_(False)

    def _assemble(self, ck_embed, ck_tags, open_names, open_embed, d) -> torch.Tensor:
        """``[K * D, 512]`` rows for ``self.tags``: the open-set file's rows first, else the checkpoint's."""
        ck_index = {t: i for i, t in enumerate(ck_tags)}
        open_index = {t: i for i, t in enumerate(open_names)}
        missing = [t for t in self.tags if t not in ck_index and t not in open_index]
        if missing:
            hint = "" if open_names else " (give an open-set file from `openvocab embed-tags` as label_embed)"
            raise ValueError(f"no description embeddings for tags {missing[:10]}"
                             f"{' ...' if len(missing) > 10 else ''}{hint}")
        rows = []
        for t in self.tags:
            if t in open_index:
                rows.append(open_embed[open_index[t] * d:(open_index[t] + 1) * d])
            else:
                rows.append(ck_embed[ck_index[t] * d:(ck_index[t] + 1) * d])
        return torch.cat([r.float() for r in rows])

    def train(self, mode: bool = True):
        super().train(mode)
        if self.freeze_backbone:
            self.model.visual_encoder.eval()
        return self

    # ------------------------------------------------------------------ forward
    def logits(self, images) -> torch.Tensor:
        """``[B, K]`` logits of :attr:`tags` for RGB uint8 images (inference preprocessing)."""
        x = preprocess(images, image_size=self.model.image_size, mean=IMAGENET_MEAN, std=IMAGENET_STD)
        x = x.to(self.model.label_embed.device)
        if self.freeze_backbone:
            with torch.no_grad():
                feats = self.model.visual_encoder(x)
            emb = self.model.image_proj(feats)
        else:
            emb = self.model.encode_image(x)
        return self.model.tag_logits(emb)

    def targets(self, data: Sequence[TrainSample]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(targets, weight)`` ``[B, K]``: 1 for the image's tags; weight 0 for tags neither positive nor
        verified negative when the sample has ``negative_tags`` (else every tag counts)."""
        pos = torch.tensor([[t in s.tags for t in self.tags] for s in data], dtype=torch.float32)
        weight = torch.ones_like(pos)
        for b, s in enumerate(data):
            if s.negative_tags is not None:
                neg = set(s.negative_tags)
                weight[b] = torch.tensor([t in s.tags or t in neg for t in self.tags], dtype=torch.float32)
        return pos, weight

    def forward(self, data: Sequence[TrainSample], mode: str = "loss"):
        if mode not in ("loss", "predict", "tensor"):
            raise ValueError(f"unknown mode {mode!r}")
        logits = self.logits([s.image for s in data])
        if mode == "tensor":
            return logits
        if mode == "loss":
            pos, weight = (t.to(logits.device) for t in self.targets(data))
            return {"loss_tag": asymmetric_loss(logits.float(), pos, weight=weight, **self.loss_kwargs)}
        probs = logits.detach().float().sigmoid().cpu().numpy()
        return [TagPrediction(file=s.info.file if s.info is not None else "", names=self.tags, scores=p,
                              gt_tags=tuple(s.tags),
                              gt_negative_tags=None if s.negative_tags is None else tuple(s.negative_tags))
                for s, p in zip(data, probs)]

    # ------------------------------------------------------------------ export
    def export_state_dict(self) -> dict[str, torch.Tensor]:
        """The :class:`RAMPlus` weights, in the layout ``RAMPlusTagger(checkpoint=...)`` loads."""
        return {k: v.detach() for k, v in self.model.state_dict().items()}

    def export_metadata(self) -> dict[str, str]:
        """Written into ``exported.safetensors``: the trained tags (class order), variant and model kwargs."""
        kwargs = {k: list(v) if isinstance(v, tuple) else v for k, v in self.model_kwargs.items()}
        return {"tags": json.dumps(list(self.tags)), "variant": self.variant, "model_kwargs": json.dumps(kwargs)}
