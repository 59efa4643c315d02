"""PSALM's input schema: the conversation text of each task and its token ids.

Every task is one conversation (template ``llava_phi``, LLaMA-2 style) whose placeholders the model fills with
embeddings: ``<image>`` (the image tokens), ``<seg>`` (the Q mask queries), ``<cls>`` (one class name each:
its token embeddings), ``<refer>`` (the referring sentences' token embeddings), ``<region>`` (one pooled
region feature each). Text between placeholders is tokenised chunk by chunk (no merge across a placeholder).
Class names and referring text end with the ``[SEG]`` token, as in training.
"""
from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import Optional, Sequence

import torch

SYSTEM = ("You are a helpful language and vision assistant. You are able to understand the visual content that "
          "the user provides, and assist the user with a variety of tasks using natural language.")
EOS = "<|endoftext|>"
SEG_TOKEN = "[SEG]"
#: placeholder text -> the negative id it becomes in ``input_ids`` (official constants)
PLACEHOLDERS = {"<image>": -200, "<seg>": -201, "<cls>": -202, "<region>": -203, "<refer>": -204}
IMAGE, SEG, CLS, REGION, REFER = (PLACEHOLDERS[k] for k in ("<image>", "<seg>", "<cls>", "<region>", "<refer>"))
BACKGROUND = "background"
#: ``task`` of :func:`category_text` -> the instruction's task name (panoptic and instance use the same prompt)
CATEGORY_TASKS = {"panoptic": "Panoptic", "semantic": "Semantic"}


def conversation(human: str, gpt: str) -> str:
    """One LLaMA-2 style round with PSALM's system prompt (``<|endoftext|>`` as separator)."""
    return f"[INST] <<SYS>>\n{SYSTEM}\n<</SYS>>\n\n{human} [/INST] {gpt} {EOS}"


def referring_text() -> str:
    return conversation("This is an image <image>, Please doing Referring Segmentation according to the following "
                        "instruction:\n<refer>", "\nSure, the segmentation result is <seg>")


def category_text(num_classes: int, task: str = "panoptic") -> str:
    """``num_classes`` counts every ``<cls>``, ``background`` included."""
    if task not in CATEGORY_TASKS:
        raise ValueError(f"task must be one of {sorted(CATEGORY_TASKS)} (got {task!r})")
    category = "<cls>, " * (num_classes - 1) + "<cls>."
    return conversation(f"This is an image <image>, Please do {CATEGORY_TASKS[task]} Segmentation.\n"
                        f"This is all the candidate categories: {category}\n",
                        "\nSure, the segmentation result is <seg>")


def region_text(num_regions: int) -> str:
    regions = " <region>," * (num_regions - 1) + " <region>."
    return conversation(f"This is an image <image>, Please segment by given regions\nThis is all regions: {regions}\n",
                        f"\n{SEG_TOKEN}<seg>")


def refer_instruction(sentences: Sequence[str]) -> str:
    """Referring sentences as the official dataset joins them: ``" s1. s2."``."""
    return "".join(f" {s}." for s in sentences)


@dataclass(frozen=True)
class PromptIds:
    """A tokenised prompt.

    Attributes:
        input_ids: ``int64 [L]``, text ids and the negative placeholder ids.
        class_ids: per ``<cls>``, the ids of its class name + ``[SEG]`` (``None``: no category list).
        refer_ids: ids of the referring text + ``[SEG]`` (``None``: not a referring prompt).
        num_regions: number of ``<region>`` placeholders.
    """

    input_ids: torch.Tensor
    class_ids: Optional[tuple[torch.Tensor, ...]] = None
    refer_ids: Optional[torch.Tensor] = None
    num_regions: int = 0

    def __post_init__(self) -> None:
        ids = self.input_ids
        if int((ids == IMAGE).sum()) != 1 or int((ids == SEG).sum()) != 1:
            raise ValueError("a PSALM prompt has exactly one <image> and one <seg>")
        n_cls = int((ids == CLS).sum())
        if n_cls != (0 if self.class_ids is None else len(self.class_ids)):
            raise ValueError(f"{n_cls} <cls> placeholders for {0 if self.class_ids is None else len(self.class_ids)} "
                             "class names")
        if int((ids == REFER).sum()) != (0 if self.refer_ids is None else 1):
            raise ValueError("a referring prompt has one <refer> placeholder and refer_ids")
        if int((ids == REGION).sum()) != self.num_regions:
            raise ValueError(f"{int((ids == REGION).sum())} <region> placeholders for {self.num_regions} regions")


class PromptTokenizer:
    """Turns task inputs (class names, referring sentences, a number of regions) into :class:`PromptIds` with a
    transformers tokenizer that has PSALM's ``[SEG]`` token. Class names are tokenised once and kept (LRU)."""

    def __init__(self, *, tokenizer, cache_size: int = 4096) -> None:
        seg = tokenizer.convert_tokens_to_ids(SEG_TOKEN)
        if seg is None or seg == getattr(tokenizer, "unk_token_id", None):
            raise ValueError(f"the tokenizer has no {SEG_TOKEN} token: not PSALM's tokenizer")
        self.tokenizer, self.seg_id, self.cache_size = tokenizer, int(seg), cache_size
        self._names: OrderedDict[str, torch.Tensor] = OrderedDict()

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def prompt_ids(self, text: str) -> torch.Tensor:
        """``text`` with placeholders -> ids (official ``tokenizer_special_tokens``)."""
        ids: list[int] = []
        for chunk in re.split("(" + "|".join(PLACEHOLDERS) + ")", text):
            if chunk in PLACEHOLDERS:
                ids.append(PLACEHOLDERS[chunk])
            elif chunk:
                ids.extend(self.encode(chunk))
        return torch.tensor(ids, dtype=torch.long)

    def class_name_ids(self, name: str) -> torch.Tensor:
        if name not in self._names:
            self._names[name] = torch.tensor(self.encode(name) + [self.seg_id], dtype=torch.long)
            while len(self._names) > self.cache_size:
                self._names.popitem(last=False)
        self._names.move_to_end(name)
        return self._names[name]

    def categories(self, names: Sequence[str], task: str = "panoptic") -> PromptIds:
        """A category-list prompt: ``names`` then ``background`` (added here; must not be among ``names``)."""
        names = list(names)
        if not names:
            raise ValueError("a category prompt needs at least one class name")
        if BACKGROUND in names:
            raise ValueError(f"{BACKGROUND!r} is added by PSALM itself; leave it out of the class names")
        classes = names + [BACKGROUND]
        return PromptIds(input_ids=self.prompt_ids(category_text(len(classes), task)),
                         class_ids=tuple(self.class_name_ids(n) for n in classes))

    def referring(self, sentences: Sequence[str] | str) -> PromptIds:
        sentences = [sentences] if isinstance(sentences, str) else list(sentences)
        if not sentences or not all(isinstance(s, str) and s.strip() for s in sentences):
            raise ValueError("referring segmentation needs non-empty sentences")
        refer = torch.tensor(self.encode(refer_instruction(sentences)) + [self.seg_id], dtype=torch.long)
        return PromptIds(input_ids=self.prompt_ids(referring_text()), refer_ids=refer)

    def regions(self, count: int) -> PromptIds:
        if count < 1:
            raise ValueError("a region prompt needs at least one region")
        return PromptIds(input_ids=self.prompt_ids(region_text(count)), num_regions=count)
