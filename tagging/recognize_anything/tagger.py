"""The base of the recognize-anything tagging stages (RAM, RAM++, Tag2Text): images -> :class:`Tags`.

What the three share lives here: the closed-set tag list (official, custom, tiny), per-class thresholds
(strict ``sigmoid(logit) > threshold`` in float32), ``delete_tag_index``, the language of the tag names,
loading the official checkpoint (``convert_state_dict`` + relative-position-table resizing + strict load),
preprocessing (in the job's loader workers), batching, and optional open-set tags. A subclass names its
model builders, checkpoints, official tags and converter, and how open-set embeddings become logits.
"""
from __future__ import annotations

import functools
import json
from typing import Callable, ClassVar, Mapping, Optional, Sequence

import numpy as np
import torch

from openvocab.checkpoint import CheckpointError, read_state_dict, safetensors_error
from openvocab.hub import MissingFileError, RemoteFile, resolve
from openvocab.stages import Tagger
from openvocab.structures import Tag, Tags, TagSource

from .loading import load_official
from .openset import load_openset_embeddings
from .preprocess import IMAGENET_MEAN, IMAGENET_STD, normalize, preprocess, resize_uint8
from .tag_lists import DEFAULT_THRESHOLD, TINY_TAGS, TINY_THRESHOLD, TagList, custom_tag_list

#: languages of the tag names a tagger can output (``Tag.name``)
TAG_LANGUAGES = ("en", "zh")


class RecognizeAnythingTagger(Tagger):
    """Shared set-up and output of the recognize-anything taggers (see the subclasses for the arguments).

    ``tag_language``: ``"en"`` (``Tag.name`` is the English name, ``Tag.name_zh`` the Chinese one when the
    tag list has it) or ``"zh"`` (``Tag.name`` and :attr:`class_names` are the Chinese names; the tag list
    must have them). English-text stages downstream (a detector prompted with tag names) need ``"en"``.
    """

    #: the model's name in messages
    MODEL_NAME: ClassVar[str] = ""
    #: variant name -> build function (keyword arguments: ``num_classes`` and the ``model_kwargs``)
    VARIANTS: ClassVar[Mapping[str, Callable[..., torch.nn.Module]]] = {}
    #: checkpoint name -> where it comes from
    CHECKPOINTS: ClassVar[Mapping[str, RemoteFile]] = {}

    def __init__(self, *, variant: str, checkpoint: Optional[str], model_kwargs: Optional[Mapping] = None,
                 tag_list: Sequence[str] | str | None = None, tag_list_zh: Sequence[str] | str | None = None,
                 class_thresholds: Sequence[float] | str | None = None, threshold: float = DEFAULT_THRESHOLD,
                 openset: Optional[str] = None, openset_mode: str = "add", openset_threshold: float = 0.5,
                 openset_thresholds: Optional[Mapping[str, float]] = None, delete_tag_index: Sequence[int] = (),
                 tag_language: str = "en", batch_size: int = 8, seed: int = 0) -> None:
        if variant not in self.VARIANTS:
            raise ValueError(f"unknown {self.MODEL_NAME} variant {variant!r}; choose from {sorted(self.VARIANTS)}")
        if openset_mode not in ("add", "replace"):
            raise ValueError(f"openset_mode must be 'add' or 'replace', got {openset_mode!r}")
        if openset_mode == "replace" and openset is None:
            raise ValueError("openset_mode='replace' needs an openset embedding file")
        for name, t in [("threshold", threshold), ("openset_threshold", openset_threshold),
                        *((f"openset_thresholds[{k!r}]", v) for k, v in (openset_thresholds or {}).items())]:
            if not 0.0 <= float(t) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {t}")
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if tag_list is not None and not isinstance(tag_list, str) and len(tag_list) == 0:
            raise ValueError("tag_list is empty")
        if tag_language not in TAG_LANGUAGES:
            raise ValueError(f"tag_language must be one of {TAG_LANGUAGES}, got {tag_language!r}")
        self.variant = variant
        self.checkpoint = checkpoint
        self.model_kwargs = dict(model_kwargs or {})
        self.tag_list_spec, self.tag_list_zh_spec = tag_list, tag_list_zh
        self.class_thresholds_spec, self.threshold = class_thresholds, float(threshold)
        self.openset_path, self.openset_mode = openset, openset_mode
        self.openset_threshold = float(openset_threshold)
        self.openset_thresholds = {str(k): float(v) for k, v in (openset_thresholds or {}).items()}
        self.delete_tag_index = [int(i) for i in delete_tag_index]
        self.tag_language = tag_language
        self.batch_size, self.seed = int(batch_size), int(seed)
        self.model: Optional[torch.nn.Module] = None
        self.closed: Optional[TagList] = None
        self.open_names: list[str] = []
        self._open_embed: Optional[torch.Tensor] = None
        self._open_d = 0
        self._open_th: Optional[np.ndarray] = None
        self.device: Optional[torch.device] = None

    # ------------------------------------------------------------------ what a subclass provides
    @staticmethod
    def convert_state_dict(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The model's official-checkpoint converter."""
        raise NotImplementedError

    def official_tag_list(self) -> TagList:
        """The tags of the official checkpoint (resolved through the hub)."""
        raise NotImplementedError

    def official_tag_files(self) -> list[RemoteFile]:
        """The files :meth:`official_tag_list` reads."""
        raise NotImplementedError

    def check_checkpoint(self, sd: Mapping[str, torch.Tensor], model: torch.nn.Module, closed: TagList,
                         source: str) -> None:
        """Raise a :class:`CheckpointError` saying why ``sd`` cannot serve this tag list (before the
        strict load names keys)."""

    def prepare_openset(self, embed: torch.Tensor, descriptions_per_tag: int) -> tuple[torch.Tensor, int]:
        """The open-set file's ``[K*D, 512]`` rows as this model uses them."""
        return embed, descriptions_per_tag

    def openset_logits(self, image_embeds: torch.Tensor) -> torch.Tensor:
        """``[B, K]`` logits of the open-set tags."""
        raise NotImplementedError(f"{self.MODEL_NAME} has no open-set tags")

    # ------------------------------------------------------------------ set-up
    def required_files(self) -> list[str]:
        files = []
        if isinstance(self.checkpoint, str):
            spec = self.CHECKPOINTS.get(self.checkpoint)
            files.append(spec.filename if spec else self.checkpoint)
        if self._uses_official_tags():
            files += [f.filename for f in self.official_tag_files()]
        if self.openset_path:
            files.append(str(self.openset_path))
        return files

    def remote_files(self) -> list[RemoteFile]:
        files = [self.CHECKPOINTS[self.checkpoint]] if self.checkpoint in self.CHECKPOINTS else []
        if self._uses_official_tags():
            files += self.official_tag_files()
        return files

    def _uses_tiny_tags(self) -> bool:
        return self.variant == "tiny" and self.checkpoint is None and self.tag_list_spec is None

    def _uses_official_tags(self) -> bool:
        return self.tag_list_spec is None and not self._uses_tiny_tags() and not self._exported_tags()

    @functools.cached_property
    def _export_metadata(self) -> dict:
        """``tags`` / ``model_kwargs`` recorded by ``openvocab train`` in an ``exported.safetensors``
        (``{}`` for any other checkpoint), so a fine-tuned tagger loads from its file alone."""
        ckpt = self.checkpoint
        if not isinstance(ckpt, str) or not ckpt.endswith(".safetensors") or ckpt in self.CHECKPOINTS:
            return {}
        from safetensors import safe_open

        path = resolve(ckpt)
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
        except Exception as e:
            raise safetensors_error(path, e) from None
        try:
            out = {}
            if "tags" in meta:
                out["tags"] = [str(t) for t in json.loads(meta["tags"])]
            if "model_kwargs" in meta:
                out["model_kwargs"] = dict(json.loads(meta["model_kwargs"]))
            return out
        except (OSError, ValueError, TypeError) as e:
            raise CheckpointError(f"{ckpt}: unreadable training metadata ({type(e).__name__}: {e})") from None

    def _exported_tags(self) -> bool:
        try:
            return "tags" in self._export_metadata
        except (CheckpointError, MissingFileError):  # reported by setup, with where the file comes from
            return False

    def _closed_tag_list(self) -> TagList:
        th_spec = self.class_thresholds_spec
        exported = self._export_metadata.get("tags") if self.tag_list_spec is None else None
        if exported:
            return custom_tag_list(exported, thresholds=th_spec if th_spec is not None else self.threshold)
        if self._uses_tiny_tags():
            return custom_tag_list(TINY_TAGS, thresholds=TINY_THRESHOLD if th_spec is None else th_spec)
        if self.tag_list_spec is None:
            tags = self.official_tag_list()
            if th_spec is not None:
                tags = custom_tag_list(tags.names, thresholds=th_spec, names_zh=tags.names_zh)
            return tags
        return custom_tag_list(self.tag_list_spec, names_zh=self.tag_list_zh_spec,
                               thresholds=th_spec if th_spec is not None else self.threshold)

    def _load_state_dict(self) -> tuple[dict, str]:
        path = resolve(self.CHECKPOINTS.get(self.checkpoint, self.checkpoint))
        return self.convert_state_dict(read_state_dict(path, key="model")), str(path)

    def _build_model(self, closed: TagList) -> torch.nn.Module:
        kwargs = {**self._export_metadata.get("model_kwargs", {}), **self.model_kwargs}
        kwargs.setdefault("num_classes", len(closed))
        if kwargs["num_classes"] != len(closed):
            raise ValueError(f"model_kwargs num_classes={kwargs['num_classes']} but the tag list has "
                             f"{len(closed)} tags")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            model = self.VARIANTS[self.variant](**kwargs)
        if self.checkpoint is not None:
            sd, source = self._load_state_dict()
            self.check_checkpoint(sd, model, closed, source)
            load_official(model, sd, source=source)
        return model

    def setup(self, device: str = "cpu") -> None:
        device = torch.device(device)
        if self.model is not None:
            self.model.to(device)
            self._open_embed = None if self._open_embed is None else self._open_embed.to(device)
            self.device = device
            return
        closed = self._closed_tag_list()
        bad = [i for i in self.delete_tag_index if not 0 <= i < len(closed)]
        if bad:
            raise ValueError(f"delete_tag_index {bad} out of range for {len(closed)} closed-set tags")
        if self.tag_language == "zh" and closed.names_zh is None:
            raise ValueError(f"tag_language='zh' needs Chinese tag names: this {self.MODEL_NAME} tag list has none "
                             "(give tag_list_zh)")
        model = self._build_model(closed)
        self._open_embed, self._open_d, self.open_names, self._open_th = None, 0, [], None
        if self.openset_path is not None:
            names, embed, d = load_openset_embeddings(resolve(self.openset_path))
            unknown = sorted(set(self.openset_thresholds) - set(names))
            if unknown:
                raise ValueError(f"openset_thresholds names tags not in {self.openset_path}: {unknown}")
            embed, d = self.prepare_openset(embed, d)
            self.open_names, self._open_d = names, d
            self._open_embed = embed.to(device)
            self._open_th = np.asarray([self.openset_thresholds.get(n, self.openset_threshold) for n in names],
                                       dtype=np.float32)
        self.closed = closed
        self.model = model.eval().to(device)
        self.device = device

    # ------------------------------------------------------------------ inference
    @property
    def image_size(self) -> int:
        if self.model is None:
            raise RuntimeError("call setup() first")
        return self.model.image_size

    def _closed_names(self) -> tuple[str, ...]:
        return self.closed.names_zh if self.tag_language == "zh" else self.closed.names

    @property
    def class_names(self) -> Optional[list[str]]:
        """The closed-set tags (in tag-list order, unless ``openset_mode='replace'``), then the open-set tags,
        in :attr:`tag_language`; ``None`` before :meth:`setup`."""
        if self.closed is None:
            return None
        closed = list(self._closed_names()) if self.openset_mode == "add" else []
        return closed + [n for n in self.open_names if n not in set(closed)]

    def prepare(self, image: np.ndarray) -> np.ndarray:
        """The official resize of one image, ``uint8 [S, S, 3]`` (loader workers run it)."""
        return resize_uint8(image, self.image_size)

    def images_tensor(self, images: Sequence[np.ndarray],
                      prepared: Optional[Sequence[np.ndarray]] = None) -> torch.Tensor:
        """Normalised ``float32 [B, 3, S, S]`` on the stage's device (``prepared``: :meth:`prepare` outputs)."""
        if prepared is not None:
            x = normalize(prepared, mean=IMAGENET_MEAN, std=IMAGENET_STD)
        else:
            x = preprocess(images, image_size=self.model.image_size, mean=IMAGENET_MEAN, std=IMAGENET_STD)
        return x.to(self.device)

    def logits(self, images: Sequence[np.ndarray], prepared: Optional[Sequence[np.ndarray]] = None
               ) -> tuple[Optional[torch.Tensor], Optional[torch.Tensor]]:
        """``(closed [B, C], open [B, K])`` float32 CPU logits; ``None`` for a group not in use.

        ``prepared``: :meth:`prepare` of each image, when already computed."""
        if self.model is None:  # the pipeline calls setup(); stand-alone use defaults to the CPU
            self.setup("cpu")
        return self._logits(images, prepared)

    @torch.inference_mode()
    def _logits(self, images: Sequence[np.ndarray], prepared: Optional[Sequence[np.ndarray]] = None
                ) -> tuple[Optional[torch.Tensor], Optional[torch.Tensor]]:
        closed, opened = [], []
        for start in range(0, len(images), self.batch_size):
            chunk = None if prepared is None else prepared[start:start + self.batch_size]
            emb = self.model.encode_image(self.images_tensor(images[start:start + self.batch_size], chunk))
            if self.openset_mode == "add":
                closed.append(self.model.tag_logits(emb).float().cpu())
            if self._open_embed is not None:
                opened.append(self.openset_logits(emb).float().cpu())
        return (torch.cat(closed) if closed else None), (torch.cat(opened) if opened else None)

    def closed_hits(self, closed_logits: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """``(probs [B, C] float32, hits [B, C] bool)``: the official decision, ``delete_tag_index`` applied."""
        probs = torch.sigmoid(closed_logits.float()).numpy()
        hits = probs > self.closed.thresholds[None]
        hits[:, self.delete_tag_index] = False
        return probs, hits

    def tags_from_logits(self, closed_logits: Optional[torch.Tensor],
                         open_logits: Optional[torch.Tensor]) -> list[Tags]:
        """One :class:`Tags` per row of the logits (highest score first)."""
        rows = (closed_logits if closed_logits is not None else open_logits).shape[0]
        per_image: list[list[Tag]] = [[] for _ in range(rows)]
        if closed_logits is not None:
            probs, hits = self.closed_hits(closed_logits)
            names, zh = self._closed_names(), self.closed.names_zh
            for b, c in zip(*np.nonzero(hits)):
                per_image[b].append(Tag(name=names[c], score=float(probs[b, c]), source=TagSource.CLOSED_SET,
                                        name_zh=zh[c] if zh else None))
        if open_logits is not None:
            probs = torch.sigmoid(open_logits).numpy()
            for b, k in zip(*np.nonzero(probs > self._open_th[None])):
                per_image[b].append(Tag(name=self.open_names[k], score=float(probs[b, k]),
                                        source=TagSource.OPEN_SET))
        return [Tags(tuple(t)) for t in per_image]

    def tag(self, images: Sequence[np.ndarray], prepared: Optional[Sequence[np.ndarray]] = None) -> list[Tags]:
        """One :class:`Tags` per image (highest score first): tags whose probability exceeds their threshold."""
        if len(images) == 0:
            return []
        return self.tags_from_logits(*self.logits(images, prepared))
