"""The registered Tag2Text stage: a tagger (3429 tags) and a tag-guided captioner in one model."""
from __future__ import annotations

import functools
from typing import Mapping, Optional, Sequence

import numpy as np
import torch

from openvocab.checkpoint import CheckpointError
from openvocab.hub import RemoteFile, resolve
from openvocab.registry import CAPTIONERS, TAGGERS
from openvocab.stages import Captioner
from openvocab.structures import Tags

from ..recognize_anything.tag_lists import TagList
from ..recognize_anything.tagger import RecognizeAnythingTagger
from .captioning import CaptionSettings, generate
from .convert import convert_state_dict
from .model import build_tag2text_swin_b, build_tag2text_tiny
from .tag_list import DELETE_TAG_INDEX, THRESHOLD, official_tag_list
from .tokenizer import Tag2TextTokenizer, read_vocab, tiny_vocab
from .weights import CHECKPOINTS, TAG_FILES, VOCAB

VARIANTS = {"swin_b_384": build_tag2text_swin_b,
            "swin_b_224": functools.partial(build_tag2text_swin_b, image_size=224),
            "tiny": build_tag2text_tiny}


@TAGGERS.register_module()
@CAPTIONERS.register_module(name="Tag2TextCaptioner")
class Tag2TextTagger(RecognizeAnythingTagger, Captioner):
    """Tag2Text: image tags (:meth:`tag`) and captions guided by tags (:meth:`caption`), or both from one image
    encoding (:meth:`tag_and_caption`). Registered as ``Tag2TextTagger`` (TAGGERS) and ``Tag2TextCaptioner``
    (CAPTIONERS).

    Args:
        variant: ``"swin_b_384"`` (official), ``"swin_b_224"`` (the official checkpoint at 224 px, relative
            position tables resized as the official loader does) or ``"tiny"`` (tests, random pipeline: its own
            small vocabulary).
        checkpoint: a name in :data:`tagging.tag2text.weights.CHECKPOINTS`, a local path (official layout), or
            ``None`` = random init (``seed``).
        model_kwargs: overrides for the variant's build function (e.g. tiny sizes).
        vocab: the tokenizer's ``vocab.txt`` (default: bert-base-uncased, fetched and cached like checkpoints;
            the tiny variant without checkpoint has its own).
        tag_list: ``None`` = the official 3429 tags (thresholds 0.68, 'person'/'man'/'woman' 0.7); else the
            names in the checkpoint's class order (list or text file).
        tag_list_zh: Chinese names for a custom ``tag_list`` (Tag2Text has none of its own).
        class_thresholds: per-class thresholds (list or file) replacing the defaults.
        threshold: threshold of every tag when ``class_thresholds`` is not given (official 0.68; the three
            hard-coded 0.7 stay for the official list).
        delete_tag_index: tags never output nor used for captions; ``None`` = the official 7 for the official
            list ('quarter', 'back', 'two', 'three', 'four', 'five', 'one'), none for another.
        tag_language: ``"en"`` or ``"zh"`` (the language of ``Tag.name``; captions are guided by English names).
        sample: nucleus sampling (``top_p``, ``top_k``, ``caption_seed``) instead of beam search.
        num_beams / max_length / min_length / repetition_penalty: generation settings
            (:class:`tagging.tag2text.captioning.CaptionSettings`); the defaults are the official inference's
            (``inference_tag2text``: 3 beams, 50 tokens with the prompt, at least 10).
        caption_seed: seed of the sampling generator (each :meth:`caption` call starts from it).
        batch_size: images per forward pass.
        seed: seed of the random init (``checkpoint=None``).
    """

    MODEL_NAME = "Tag2Text"
    VARIANTS = VARIANTS
    CHECKPOINTS = CHECKPOINTS

    def __init__(self, *, variant: str = "swin_b_384", checkpoint: Optional[str] = "tag2text_swin_14m",
                 model_kwargs: Optional[Mapping] = None, vocab: Optional[str] = None,
                 tag_list: Sequence[str] | str | None = None, tag_list_zh: Sequence[str] | str | None = None,
                 class_thresholds: Sequence[float] | str | None = None, threshold: float = THRESHOLD,
                 delete_tag_index: Optional[Sequence[int]] = None, tag_language: str = "en", sample: bool = False,
                 num_beams: int = 3, max_length: int = 50, min_length: int = 10, top_p: float = 0.9,
                 top_k: int = 50, repetition_penalty: Optional[float] = None, caption_seed: int = 0,
                 batch_size: int = 8, seed: int = 0) -> None:
        if delete_tag_index is None:
            delete_tag_index = DELETE_TAG_INDEX if tag_list is None and not (variant == "tiny" and checkpoint is None) \
                else ()
        super().__init__(variant=variant, checkpoint=checkpoint, model_kwargs=model_kwargs, tag_list=tag_list,
                         tag_list_zh=tag_list_zh, class_thresholds=class_thresholds, threshold=threshold,
                         delete_tag_index=delete_tag_index, tag_language=tag_language, batch_size=batch_size,
                         seed=seed)
        self.settings = CaptionSettings(sample=sample, num_beams=num_beams, max_length=max_length,
                                        min_length=min_length, top_p=top_p, top_k=top_k,
                                        repetition_penalty=repetition_penalty)
        self.vocab, self.caption_seed = vocab, int(caption_seed)
        self.tokenizer: Optional[Tag2TextTokenizer] = None

    convert_state_dict = staticmethod(convert_state_dict)

    def _uses_tiny_vocab(self) -> bool:
        return self.vocab is None and self.variant == "tiny" and self.checkpoint is None

    def official_tag_list(self) -> TagList:
        return official_tag_list(self.threshold)

    def official_tag_files(self) -> list[RemoteFile]:
        return list(TAG_FILES.values())

    def required_files(self) -> list[str]:
        extra = [] if self._uses_tiny_vocab() else [VOCAB.filename if self.vocab is None else str(self.vocab)]
        return super().required_files() + extra

    def remote_files(self) -> list[RemoteFile]:
        return super().remote_files() + ([VOCAB] if self.vocab is None and not self._uses_tiny_vocab() else [])

    def check_checkpoint(self, sd, model, closed: TagList, source: str) -> None:
        rows = sd.get("label_embed.weight")
        if rows is not None and rows.ndim == 2 and rows.shape[0] != model.num_classes:
            raise CheckpointError(f"{source} has {rows.shape[0]} tag queries (label_embed), the tag list has "
                                  f"{len(closed)} tags")
        words = sd.get("text_decoder.bert.embeddings.word_embeddings.weight")
        if words is not None and words.ndim == 2 and words.shape[0] != len(self.tokenizer):
            raise CheckpointError(f"{source} has a {words.shape[0]}-token text vocabulary, the tokenizer "
                                  f"({self.vocab or VOCAB.filename} + [DEC], [ENC]) has {len(self.tokenizer)}")

    def setup(self, device: str = "cpu") -> None:
        if self.model is None:
            if self._uses_tiny_vocab():
                vocab = {t: i for i, t in enumerate(tiny_vocab())}
            else:
                vocab = read_vocab(resolve(VOCAB if self.vocab is None else self.vocab))
            self.tokenizer = Tag2TextTokenizer(vocab=vocab)
            self.model_kwargs.setdefault("text_vocab_size", len(self.tokenizer))
        super().setup(device)

    # ------------------------------------------------------------------ captions
    def _tag_strings(self, closed_logits: torch.Tensor) -> list[str]:
        """The official tag strings: the kept tags' English names in tag-list order, joined by ``" | "``."""
        _, hits = self.closed_hits(closed_logits)
        return [" | ".join(self.closed.names[c] for c in np.nonzero(row)[0]) for row in hits]

    @torch.inference_mode()
    def _run(self, images: Sequence[np.ndarray], prepared: Optional[Sequence[np.ndarray]],
             tags: Optional[Sequence[Optional[Sequence[str]]]]) -> tuple[list[Optional[torch.Tensor]], list[str]]:
        """Per image: its closed-set logits (``None`` where its tags were given) and its caption."""
        logits: list[Optional[torch.Tensor]] = [None] * len(images)
        captions: list[str] = []
        generator = torch.Generator().manual_seed(self.caption_seed) if self.settings.sample else None
        for start in range(0, len(images), self.batch_size):
            stop = min(start + self.batch_size, len(images))
            chunk = None if prepared is None else prepared[start:stop]
            emb = self.model.encode_image(self.images_tensor(images[start:stop], chunk))
            given = [None if tags is None else tags[i] for i in range(start, stop)]
            strings: list[Optional[str]] = [None if g is None else " | ".join(_names(g)) for g in given]
            if any(s is None for s in strings):
                own = self.model.tag_logits(emb).float().cpu()
                own_strings = self._tag_strings(own)
                for j, s in enumerate(strings):
                    if s is None:
                        logits[start + j], strings[j] = own[j], own_strings[j]
            out = generate(self.model, self.tokenizer, emb, strings, self.settings, generator=generator)
            captions += [self.tokenizer.caption(row) for row in out.sequences]
        return logits, captions

    def caption(self, images: Sequence[np.ndarray], tags: Optional[Sequence[Optional[Sequence[str]]]] = None,
                prepared: Optional[Sequence[np.ndarray]] = None) -> list[str]:
        """One caption per image, guided by ``tags[i]`` (tag names, or a :class:`Tags`) when given (``None`` or
        ``tags[i] is None``: the image's own tags; an empty list: no tags)."""
        if tags is not None and len(tags) != len(images):
            raise ValueError(f"{len(tags)} tag lists for {len(images)} images")
        if len(images) == 0:
            return []
        if self.model is None:
            self.setup("cpu")
        return self._run(images, prepared, tags)[1]

    def tag_and_caption(self, images: Sequence[np.ndarray],
                        prepared: Optional[Sequence[np.ndarray]] = None) -> list[tuple[Tags, str]]:
        """Each image's own tags and the caption they guide (the official ``generate(return_tag_predict=True)``),
        from one image encoding."""
        if len(images) == 0:
            return []
        if self.model is None:
            self.setup("cpu")
        logits, captions = self._run(images, prepared, None)
        return list(zip(self.tags_from_logits(torch.stack(logits), None), captions))


def _names(tags) -> list[str]:
    """Tag names of a :class:`Tags` or a sequence of names."""
    if isinstance(tags, str):
        raise ValueError(f"tags must be a sequence of tag names, not one string: {tags!r}")
    names = tags.names if isinstance(tags, Tags) else list(tags)
    if not all(isinstance(n, str) for n in names):
        raise ValueError(f"tags must be a sequence of tag names, got {tags!r}")
    return names
