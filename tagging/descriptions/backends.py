"""LLM backends that answer a prompt with several sampled completions.

* :class:`OpenAIHTTPBackend`: any OpenAI-compatible ``/chat/completions`` endpoint (OpenAI, vLLM,
  llama.cpp server, Ollama...). The API key is read from an environment variable.
* :class:`TransformersLMBackend`: a local ``transformers`` causal LM (a hub id or a folder).
"""
from __future__ import annotations

import http.client
import json
import os
import time
from typing import Optional

from openvocab.errors import RunError
from openvocab.registry import DESCRIPTION_BACKENDS

from .deadline import post_with_deadline
from .prompts import MAX_TOKENS, TEMPERATURE


class BackendError(RunError):
    """The LLM could not answer (HTTP error, bad response, missing model); the CLI prints it as one line."""


@DESCRIPTION_BACKENDS.register_module()
class OpenAIHTTPBackend:
    """Chat completions over HTTP.

    Args:
        base_url: e.g. ``"https://api.openai.com/v1"`` or ``"http://127.0.0.1:8000/v1"``.
        model: model name the server knows.
        api_key_env: environment variable holding the key (may be unset for local servers).
        max_tokens / temperature: sampling settings (RAM++ used 77 and 0.99).
        timeout: seconds a request may take in all (connecting, sending, the whole answer), not per
            read: a server trickling its answer is cut off at the deadline.
        retries: attempts per request: timeouts, refused/reset connections, cut-short answers and
            answers that are not the expected JSON are tried again (after ``backoff``, doubling);
            HTTP 400/401/403/404 are not.
        role: chat role of the prompt message (the official RAM++ script sent ``"assistant"``;
            ``"user"`` is what chat servers answer).
    """

    def __init__(self, *, base_url: str, model: str, api_key_env: str = "OPENAI_API_KEY",
                 max_tokens: int = MAX_TOKENS, temperature: float = TEMPERATURE, timeout: float = 60.0,
                 retries: int = 3, backoff: float = 1.0, role: str = "user") -> None:
        if retries < 1:
            raise ValueError("retries must be >= 1")
        if not timeout > 0 or backoff < 0:
            raise ValueError(f"timeout must be > 0 and backoff >= 0, got {timeout} and {backoff}")
        if role not in ("user", "assistant", "system"):
            raise ValueError(f"role must be 'user', 'assistant' or 'system', got {role!r}")
        self.role = role
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model, self.api_key_env = model, api_key_env
        self.max_tokens, self.temperature = max_tokens, temperature
        self.timeout, self.retries, self.backoff = timeout, retries, backoff

    @property
    def cache_key(self) -> str:
        return f"http:{self.model}:{self.role}:{self.temperature}:{self.max_tokens}"

    def generate(self, prompt: str, n: int) -> list[str]:
        """``n`` sampled answers. Servers that return fewer choices than asked (llama.cpp and
        Ollama ignore ``n``) are asked again for the rest."""
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        answers: list[str] = []
        while len(answers) < n:
            answers += self._request(prompt, n - len(answers))[:n - len(answers)]
        return answers

    def _request(self, prompt: str, n: int) -> list[str]:
        body = json.dumps({"model": self.model, "messages": [{"role": self.role, "content": prompt}],
                           "n": n, "max_tokens": self.max_tokens, "temperature": self.temperature}).encode()
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        last = ""
        for attempt in range(self.retries):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                status, raw = post_with_deadline(self.url, body, headers, deadline=self.timeout)
            except TimeoutError as e:
                last = str(e)
                continue
            except (OSError, http.client.HTTPException) as e:  # refused, reset, cut short (IncompleteRead)
                last = f"{type(e).__name__}: {e}"
                continue
            if status != 200:
                last = f"HTTP {status}: {raw.decode(errors='replace')}"
                if status in (400, 401, 403, 404):
                    break  # not worth retrying
                continue
            try:
                data = json.loads(raw)
                answers = [c["message"]["content"].strip() for c in data["choices"]]
                if not answers:
                    raise ValueError("empty 'choices'")
                return answers
            except (ValueError, KeyError, TypeError, AttributeError) as e:  # bad JSON: truncated or not an answer
                last = f"unexpected response ({type(e).__name__}: {e})"
        tries = f"{attempt + 1} attempt{'s' if attempt else ''}"
        raise BackendError(f"{self.url} (model {self.model}) failed after {tries}: {' '.join(last.split())[:300]}")


@DESCRIPTION_BACKENDS.register_module()
class TransformersLMBackend:
    """A local causal LM through ``transformers`` (loaded on first use, never in ``__init__``).

    Args:
        model: hub id or local folder of a causal LM (and its tokenizer).
        device: ``"cpu"`` / ``"cuda"``; dtype: ``"float32"`` / ``"bfloat16"`` / ``"float16"``.
        chat_template: wrap the prompt with the tokenizer's chat template when it has one.
    """

    def __init__(self, *, model: str, device: str = "cpu", dtype: str = "float32",
                 max_tokens: int = MAX_TOKENS, temperature: float = TEMPERATURE, chat_template: bool = True,
                 seed: Optional[int] = 0) -> None:
        self.model_name, self.device, self.dtype = model, device, dtype
        self.max_tokens, self.temperature, self.chat_template, self.seed = max_tokens, temperature, chat_template, seed
        self._model = self._tokenizer = None

    @property
    def cache_key(self) -> str:
        return f"transformers:{self.model_name}:{self.temperature}:{self.max_tokens}"

    def _load(self) -> None:
        if self._model is not None:
            return
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        try:
            self._tokenizer = AutoTokenizer.from_pretrained(self.model_name)
            self._model = AutoModelForCausalLM.from_pretrained(
                self.model_name, dtype=getattr(torch, self.dtype)).to(self.device).eval()
        except (OSError, ValueError) as e:
            raise BackendError(f"cannot load the language model {self.model_name!r}: {e}") from None

    def generate(self, prompt: str, n: int) -> list[str]:
        import torch

        self._load()
        tok = self._tokenizer
        text = prompt
        if self.chat_template and getattr(tok, "chat_template", None):
            text = tok.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                           add_generation_prompt=True)
        inputs = tok(text, return_tensors="pt").to(self.device)
        if self.seed is not None:
            torch.manual_seed(self.seed)
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        with torch.inference_mode():
            out = self._model.generate(**inputs, do_sample=True, temperature=self.temperature,
                                       max_new_tokens=self.max_tokens, num_return_sequences=n,
                                       pad_token_id=pad)
        start = inputs["input_ids"].shape[1]
        return [tok.decode(row[start:], skip_special_tokens=True).strip() for row in out]
