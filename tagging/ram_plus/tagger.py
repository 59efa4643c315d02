"""The registered RAM++ tagging stage: images -> :class:`openvocab.structures.Tags`."""
from __future__ import annotations

import functools
import json
from typing import Mapping, Optional, Sequence

import numpy as np
import torch

from openvocab.checkpoint import CheckpointError, load_strict, read_state_dict, safetensors_error
from openvocab.hub import MissingFileError, resolve
from openvocab.registry import TAGGERS
from openvocab.stages import Tagger
from openvocab.structures import Tag, Tags, TagSource

from .convert import convert_state_dict
from .model import RAMPlus, build_ram_plus_swin_l, build_ram_plus_tiny
from .openset import load_openset_embeddings
from .preprocess import IMAGENET_MEAN, IMAGENET_STD, normalize, preprocess, resize_uint8
from .tag_lists import DEFAULT_THRESHOLD, TagList, custom_tag_list, official_tag_list
from .weights import CHECKPOINTS, TAG_FILES

VARIANTS = {"swin_l_384": build_ram_plus_swin_l, "tiny": build_ram_plus_tiny}

#: tags of the tiny random variant (no checkpoint): everyday objects plus scenes, actions, colours
TINY_TAGS = ("person", "dog", "cat", "car", "bicycle", "bus", "boat", "bird", "horse", "tree", "flower",
             "grass", "building", "road", "chair", "table", "cup", "bottle", "book", "laptop", "phone",
             "water", "beach", "sky", "cloud", "sunset", "night", "running", "red", "blue")
#: their threshold (random weights give probabilities around 0.5)
TINY_THRESHOLD = 0.5


@TAGGERS.register_module()
class RAMPlusTagger(Tagger):
    """RAM++ tagger (closed-set 4585 tags, plus optional open-set tags from description embeddings).

    Args:
        variant: ``"swin_l_384"`` (official size) or ``"tiny"`` (tests, random pipeline).
        checkpoint: a name in :data:`tagging.ram_plus.weights.CHECKPOINTS`, a local path (official
            layout, converted with :func:`convert_state_dict`), or ``None`` = random init (``seed``).
        model_kwargs: overrides for the variant's build function (e.g. tiny sizes).
        tag_list: ``None`` = the official 4585 tags (for ``tiny`` without checkpoint: :data:`TINY_TAGS`);
            else the closed-set names in the checkpoint's class order (list or text file).
        tag_list_zh: Chinese names for a custom ``tag_list`` (list or file).
        class_thresholds: per-class thresholds (list or file) replacing the defaults.
        threshold: threshold of every custom tag when ``class_thresholds`` is not given.
        openset: path (or hub name) of an ``openvocab-openset-v1`` ``.safetensors`` file.
        openset_mode: ``"add"`` (beside the closed set) or ``"replace"`` (open-set tags only).
        openset_threshold: threshold of open-set tags (official: 0.5).
        openset_thresholds: ``{tag: threshold}`` overriding it per open-set tag.
        delete_tag_index: closed-set class indices never output (official ``delete_tag_index``).
        batch_size: images per forward pass.
        seed: seed of the random init (``checkpoint=None``).
    """

    def __init__(self, *, variant: str = "swin_l_384", checkpoint: Optional[str] = "ram_plus_swin_large_14m",
                 model_kwargs: Optional[Mapping] = None, tag_list: Sequence[str] | str | None = None,
                 tag_list_zh: Sequence[str] | str | None = None,
                 class_thresholds: Sequence[float] | str | None = None, threshold: float = DEFAULT_THRESHOLD,
                 openset: Optional[str] = None, openset_mode: str = "add", openset_threshold: float = 0.5,
                 openset_thresholds: Optional[Mapping[str, float]] = None,
                 delete_tag_index: Sequence[int] = (), batch_size: int = 8, seed: int = 0) -> None:
        if variant not in VARIANTS:
            raise ValueError(f"unknown RAM++ variant {variant!r}; choose from {sorted(VARIANTS)}")
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
        self.variant = variant
        self.checkpoint = checkpoint
        self.model_kwargs = dict(model_kwargs or {})
        self.tag_list_spec, self.tag_list_zh_spec = tag_list, tag_list_zh
        self.class_thresholds_spec, self.threshold = class_thresholds, float(threshold)
        self.openset_path, self.openset_mode = openset, openset_mode
        self.openset_threshold = float(openset_threshold)
        self.openset_thresholds = {str(k): float(v) for k, v in (openset_thresholds or {}).items()}
        self.delete_tag_index = [int(i) for i in delete_tag_index]
        self.batch_size, self.seed = int(batch_size), int(seed)
        self.model: Optional[RAMPlus] = None
        self.closed: Optional[TagList] = None
        self.open_names: list[str] = []
        self._open_embed: Optional[torch.Tensor] = None
        self._open_d = 0
        self._open_th: Optional[np.ndarray] = None
        self.device: Optional[torch.device] = None

    # ------------------------------------------------------------------ set-up
    def required_files(self) -> list[str]:
        files = []
        if isinstance(self.checkpoint, str):
            spec = CHECKPOINTS.get(self.checkpoint)
            files.append(spec.filename if spec else self.checkpoint)
        if self.tag_list_spec is None and not self._uses_tiny_tags() and not self._exported_tags():
            files += ["ram_tag_list.txt", "ram_tag_list_chinese.txt", "ram_tag_list_threshold.txt"]
        if self.openset_path:
            files.append(str(self.openset_path))
        return files

    def remote_files(self) -> list:
        files = [CHECKPOINTS[self.checkpoint]] if isinstance(self.checkpoint, str) and self.checkpoint in CHECKPOINTS else []
        if self.tag_list_spec is None and not self._uses_tiny_tags() and not self._exported_tags():
            files += list(TAG_FILES.values())
        return files

    def _uses_tiny_tags(self) -> bool:
        return self.variant == "tiny" and self.checkpoint is None and self.tag_list_spec is None

    @functools.cached_property
    def _export_metadata(self) -> dict:
        """``tags`` / ``model_kwargs`` recorded by ``openvocab train`` in an ``exported.safetensors``
        (``{}`` for any other checkpoint), so a fine-tuned tagger loads from its file alone."""
        ckpt = self.checkpoint
        if not isinstance(ckpt, str) or not ckpt.endswith(".safetensors") or ckpt in CHECKPOINTS:
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
        exported = self._export_metadata.get("tags") if self.tag_list_spec is None else None
        if exported:
            th = self.class_thresholds_spec if self.class_thresholds_spec is not None else self.threshold
            return custom_tag_list(exported, thresholds=th)
        if self._uses_tiny_tags():
            th = TINY_THRESHOLD if self.class_thresholds_spec is None else self.class_thresholds_spec
            return custom_tag_list(TINY_TAGS, thresholds=th)
        if self.tag_list_spec is None:
            tags = official_tag_list()
            if self.class_thresholds_spec is not None:
                tags = custom_tag_list(tags.names, thresholds=self.class_thresholds_spec, names_zh=tags.names_zh)
            return tags
        return custom_tag_list(self.tag_list_spec, names_zh=self.tag_list_zh_spec,
                               thresholds=self.class_thresholds_spec if self.class_thresholds_spec is not None
                               else self.threshold)

    def _load_state_dict(self) -> tuple[dict, str]:
        spec = CHECKPOINTS.get(self.checkpoint, self.checkpoint)
        path = resolve(spec)
        return convert_state_dict(read_state_dict(path, key="model")), str(path)

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
        kwargs = {**self._export_metadata.get("model_kwargs", {}), **self.model_kwargs}
        kwargs.setdefault("num_classes", len(closed))
        if kwargs["num_classes"] != len(closed):
            raise ValueError(f"model_kwargs num_classes={kwargs['num_classes']} but the tag list has "
                             f"{len(closed)} tags")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            model = VARIANTS[self.variant](**kwargs)
        if self.checkpoint is not None:
            sd, source = self._load_state_dict()
            rows = sd.get("label_embed")
            want = model.label_embed.shape[0]
            if rows is not None and rows.ndim == 2 and rows.shape[0] != want:
                raise CheckpointError(
                    f"{source} has {rows.shape[0]} description rows (label_embed), the tag list needs "
                    f"{len(closed)} tags x {model.descriptions_per_tag} = {want}")
            load_strict(model, sd, source=source)
        self._open_embed, self._open_d, self.open_names, self._open_th = None, 0, [], None
        if self.openset_path is not None:
            names, embed, d = load_openset_embeddings(resolve(self.openset_path))
            unknown = sorted(set(self.openset_thresholds) - set(names))
            if unknown:
                raise ValueError(f"openset_thresholds names tags not in {self.openset_path}: {unknown}")
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

    @property
    def class_names(self) -> Optional[list[str]]:
        """The closed-set tags (in tag-list order, unless ``openset_mode='replace'``), then the open-set tags;
        ``None`` before :meth:`setup`."""
        if self.closed is None:
            return None
        closed = list(self.closed.names) if self.openset_mode == "add" else []
        return closed + [n for n in self.open_names if n not in set(closed)]

    def prepare(self, image: np.ndarray) -> np.ndarray:
        """The official resize of one image, ``uint8 [S, S, 3]`` (loader workers run it)."""
        return resize_uint8(image, self.image_size)

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
            if prepared is not None:
                x = normalize(prepared[start:start + self.batch_size], mean=IMAGENET_MEAN, std=IMAGENET_STD)
            else:
                x = preprocess(images[start:start + self.batch_size], image_size=self.model.image_size,
                               mean=IMAGENET_MEAN, std=IMAGENET_STD)
            emb = self.model.encode_image(x.to(self.device))
            if self.openset_mode == "add":
                closed.append(self.model.tag_logits(emb).float().cpu())
            if self._open_embed is not None:
                opened.append(self.model.tag_logits(emb, self._open_embed, self._open_d).float().cpu())
        return (torch.cat(closed) if closed else None), (torch.cat(opened) if opened else None)

    def tag(self, images: Sequence[np.ndarray], prepared: Optional[Sequence[np.ndarray]] = None) -> list[Tags]:
        """One :class:`Tags` per image (highest score first): tags whose probability exceeds their threshold."""
        if len(images) == 0:
            return []
        closed_logits, open_logits = self.logits(images, prepared)
        per_image: list[list[Tag]] = [[] for _ in images]
        if closed_logits is not None:
            probs = torch.sigmoid(closed_logits).numpy()
            hits = probs > self.closed.thresholds[None]
            hits[:, self.delete_tag_index] = False
            zh = self.closed.names_zh
            for b, c in zip(*np.nonzero(hits)):
                per_image[b].append(Tag(name=self.closed.names[c], score=float(probs[b, c]),
                                        source=TagSource.CLOSED_SET, name_zh=zh[c] if zh else None))
        if open_logits is not None:
            probs = torch.sigmoid(open_logits).numpy()
            for b, k in zip(*np.nonzero(probs > self._open_th[None])):
                per_image[b].append(Tag(name=self.open_names[k], score=float(probs[b, k]),
                                        source=TagSource.OPEN_SET))
        return [Tags(tuple(t)) for t in per_image]
