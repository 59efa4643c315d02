"""Describe new tags with an LLM, once per tag (on-disk JSON cache)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Optional, Sequence, Union

from openvocab.registry import DESCRIPTION_BACKENDS, TOOLS
from openvocab.stages import TagDescriber

from .prompts import DESCRIPTION_PROMPTS, SAMPLES_PER_PROMPT, plain_prompt


@TOOLS.register_module()
class LLMTagDescriber(TagDescriber):
    """The RAM++ recipe: ``"a photo of a {tag}."`` + ``samples_per_prompt`` answers to each prompt.

    Args:
        backend: a backend (``generate(prompt, n) -> list[str]``, ``cache_key``) or its config.
        samples_per_prompt: answers per prompt (RAM++: 10, giving 1 + 5 x 10 = 51 per tag).
        prompts: questions with ``{tag}`` (default: :data:`DESCRIPTION_PROMPTS`).
        cache: JSON file remembering every tag already described by this backend (``None``: no cache).
    """

    def __init__(self, *, backend: Union[dict, object], samples_per_prompt: int = SAMPLES_PER_PROMPT,
                 prompts: Optional[Sequence[str]] = None,
                 cache: Optional[str] = "~/.cache/openvocab/tag_descriptions.json") -> None:
        self.backend = DESCRIPTION_BACKENDS.build(backend) if isinstance(backend, dict) else backend
        if samples_per_prompt < 1:
            raise ValueError("samples_per_prompt must be >= 1")
        self.samples_per_prompt = samples_per_prompt
        self.prompts = tuple(prompts or DESCRIPTION_PROMPTS)
        if not all("{tag}" in p for p in self.prompts):
            raise ValueError("every prompt must contain '{tag}'")
        self.cache_path = Path(cache).expanduser() if cache else None
        self.hits = self.misses = 0

    def _key(self, tag: str) -> str:
        return f"{self.backend.cache_key}|{self.samples_per_prompt}|{hashlib.sha1(json.dumps(self.prompts).encode()).hexdigest()[:8]}|{tag}"

    def _load_cache(self) -> dict:
        if self.cache_path is None or not self.cache_path.is_file():
            return {}
        try:
            return json.loads(self.cache_path.read_text(encoding="utf-8"))
        except ValueError:
            return {}  # a corrupt cache is rebuilt, never fatal

    def _save_cache(self, cache: dict) -> None:
        if self.cache_path is None:
            return
        from openvocab.writers.base import atomic_write_text

        atomic_write_text(self.cache_path, json.dumps(cache, ensure_ascii=False))

    def describe(self, tags: Sequence[str]) -> dict[str, list[str]]:
        cache = self._load_cache()
        out: dict[str, list[str]] = {}
        for tag in dict.fromkeys(t.strip() for t in tags if t.strip()):
            key = self._key(tag)
            if key in cache:
                self.hits += 1
                out[tag] = list(cache[key])
                continue
            self.misses += 1
            descs = [plain_prompt(tag)]
            for p in self.prompts:
                descs += [" ".join(a.split()) for a in self.backend.generate(p.format(tag=tag), self.samples_per_prompt)]
            out[tag] = descs
            cache[key] = descs
            self._save_cache(cache)  # after each tag: an interrupted run keeps what it paid for
        return out
