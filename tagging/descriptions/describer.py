"""Describe new tags with an LLM, once per tag (on-disk JSON cache)."""
from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Optional, Sequence, Union

from openvocab.registry import DESCRIPTION_BACKENDS, TOOLS
from openvocab.stages import TagDescriber

from .backends import BackendError
from .prompts import DESCRIPTION_PROMPTS, SAMPLES_PER_PROMPT, plain_prompt

logger = logging.getLogger(__name__)

#: requests per prompt before a backend that keeps answering with empty text is given up on
MAX_ROUNDS = 3


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
            data = json.loads(self.cache_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}  # a corrupt cache is rebuilt, never fatal
        if not isinstance(data, dict):
            return {}
        # entries another version may have stored with empty descriptions are described again
        return {k: v for k, v in data.items() if isinstance(v, list) and v and all(_usable(d) for d in v)}

    def _save_cache(self, cache: dict) -> None:
        if self.cache_path is None:
            return
        from openvocab.writers.base import atomic_write_text

        try:
            atomic_write_text(self.cache_path, json.dumps(cache, ensure_ascii=False))
        except OSError as e:  # the cache saves money, it is not the output: go on without it
            logger.warning("cannot write the description cache %s (%s)", self.cache_path, e)

    def _answers(self, prompt: str, n: int) -> list[str]:
        """``n`` non-empty answers (white space collapsed); empty ones are asked for again, at most
        :data:`MAX_ROUNDS` requests in all."""
        got: list[str] = []
        for _ in range(MAX_ROUNDS):
            got += [a for a in (" ".join(str(x).split()) for x in self.backend.generate(prompt, n - len(got))) if a]
            if len(got) >= n:
                return got[:n]
        raise BackendError(f"only {len(got)} of {n} answers to {prompt!r} were not empty after {MAX_ROUNDS} "
                           "requests")

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
            try:
                for p in self.prompts:
                    descs += self._answers(p.format(tag=tag), self.samples_per_prompt)
            except BackendError as e:  # nothing of this tag is cached; earlier tags are
                raise BackendError(f"describing tag {tag!r}: {e}") from None
            out[tag] = descs
            cache[key] = descs
            self._save_cache(cache)  # after each tag: an interrupted run keeps what it paid for
        return out


def _usable(description) -> bool:
    return isinstance(description, str) and bool(description.strip())
