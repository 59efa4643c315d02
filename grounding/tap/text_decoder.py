"""TAP caption decoder: a causal pre-norm transformer with interleaved rotary embeddings.

One prompt token per region (the selected sem token projected by ``encoder``), then BOS and the
generated tokens. Positions are absolute: prompt 0, BOS 1, first generated token 2, ...
Attention uses torch SDPA with an explicit KV cache (the official code needs flash-attn).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


def rotary_tables(seq_len: int, head_dim: int, *, theta: float = 10000.0,
                  device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """``cos, sin`` float32 ``[seq_len, head_dim / 2]`` with frequencies ``theta^(-2i/d)``."""
    inv_freq = torch.pow(theta, torch.arange(0, head_dim, 2)[: head_dim // 2].float() / head_dim)
    angles = torch.arange(seq_len, dtype=torch.float32)[:, None] * inv_freq.reciprocal()[None]
    return angles.cos().to(device), angles.sin().to(device)


def apply_rotary_interleaved(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs ``(x[2i], x[2i+1])`` of ``x [N, L, H, hd]`` by ``cos/sin [L, hd/2]``."""
    x1, x2 = x[..., 0::2], x[..., 1::2]
    c, s = cos[:, None, :].to(x.dtype), sin[:, None, :].to(x.dtype)
    return torch.stack([x1 * c - x2 * s, x1 * s + x2 * c], dim=-1).flatten(-2)


class KVCache:
    """Per-block keys/values ``[N, H, T, hd]`` of the tokens seen so far."""

    def __init__(self, depth: int) -> None:
        self.k: list[Optional[torch.Tensor]] = [None] * depth
        self.v: list[Optional[torch.Tensor]] = [None] * depth

    @property
    def length(self) -> int:
        return 0 if self.k[0] is None else self.k[0].shape[2]


class CausalSelfAttention(nn.Module):
    def __init__(self, *, dim: int, num_heads: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"text dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads, self.head_dim = num_heads, dim // num_heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, cos, sin, cache: Optional[KVCache], layer: int) -> torch.Tensor:
        n, length, _ = x.shape
        q, k, v = self.qkv(x).view(n, length, 3, self.num_heads, self.head_dim).unbind(2)
        q, k = apply_rotary_interleaved(q, cos, sin), apply_rotary_interleaved(k, cos, sin)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))
        past = 0
        if cache is not None:
            if cache.k[layer] is not None:
                past = cache.k[layer].shape[2]
                k = torch.cat([cache.k[layer], k], dim=2)
                v = torch.cat([cache.v[layer], v], dim=2)
            cache.k[layer], cache.v[layer] = k, v
        mask = None
        if length > 1:  # causal, aligned bottom-right over past + new keys
            qi = torch.arange(length, device=x.device)[:, None] + past
            mask = qi >= torch.arange(past + length, device=x.device)[None, :]
        o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.proj(o.transpose(1, 2).flatten(2))


class TextBlock(nn.Module):
    def __init__(self, *, dim: int, num_heads: int, mlp_dim: int) -> None:
        super().__init__()
        self.attn = CausalSelfAttention(dim=dim, num_heads=num_heads)
        self.mlp = nn.Module()
        self.mlp.fc1 = nn.Linear(dim, mlp_dim)
        self.mlp.fc2 = nn.Linear(mlp_dim, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)

    def forward(self, x, cos, sin, cache, layer):
        x = x + self.attn(self.norm1(x), cos, sin, cache, layer)
        return x + self.mlp.fc2(F.gelu(self.mlp.fc1(self.norm2(x))))


class TextTransformer(nn.Module):
    def __init__(self, *, depth: int, dim: int, num_heads: int, mlp_dim: int, vocab_size: int) -> None:
        super().__init__()
        self.depth, self.head_dim = depth, dim // num_heads
        self.tok_embeddings = nn.Embedding(vocab_size, dim)
        self.blocks = nn.ModuleList(TextBlock(dim=dim, num_heads=num_heads, mlp_dim=mlp_dim)
                                    for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.text_proj = nn.Linear(dim, vocab_size, bias=False)


class TapTextDecoder(nn.Module):
    """Prompt projection ``encoder`` (D_img -> D_text, no bias) + causal ``transformer``."""

    def __init__(self, *, depth: int = 12, embed_dim: int = 512, num_heads: int = 8,
                 mlp_ratio: int = 4, prompt_embed_dim: int = 256, max_seq_len: int = 40,
                 vocab_size: int = 32000) -> None:
        super().__init__()
        self.max_seq_len = max_seq_len
        self.max_text_len = max_seq_len - 1
        self.encoder = nn.Linear(prompt_embed_dim, embed_dim, bias=False)
        self.transformer = TextTransformer(depth=depth, dim=embed_dim, num_heads=num_heads,
                                           mlp_dim=embed_dim * mlp_ratio, vocab_size=vocab_size)

    def forward(self, x: torch.Tensor, start_pos: int, cache: Optional[KVCache] = None) -> torch.Tensor:
        """Embedded sequence ``x [N, L, D]`` at positions ``start_pos..`` -> float32 logits ``[N, L, V]``."""
        tr = self.transformer
        cos, sin = rotary_tables(start_pos + x.shape[1], tr.head_dim, device=x.device)
        cos, sin = cos[start_pos:], sin[start_pos:]
        for i, blk in enumerate(tr.blocks):
            x = blk(x, cos, sin, cache, i)
        return tr.text_proj(tr.norm(x)).float()


@dataclass
class Generation:
    """Greedy decoding result for ``N`` prompts.

    Attributes:
        tokens: ``int64 [N, max_text_len]``: BOS, generated ids, pad after the last step (rows may
            hold tokens after their EOS: decoding runs until every row has ended).
        step_logits: ``float32 [N, steps, V]``; row ``s`` predicts ``tokens[:, s + 1]``.
    """

    tokens: np.ndarray
    step_logits: torch.Tensor


@torch.inference_mode()
def generate_greedy(decoder: TapTextDecoder, sem_tokens: torch.Tensor, *, bos_id: int, eos_id: int,
                    pad_id: int, max_gen_len: Optional[int] = None) -> Generation:
    """Official greedy loop: ``sem_tokens [N, 1, D_img]`` -> :class:`Generation`.

    Step 1 feeds ``[prompt, BOS]``; each later step feeds the previous token with a KV cache.
    Stops when every row has emitted ``eos_id`` or after ``max_gen_len - 1`` steps.
    """
    max_gen_len = min(max_gen_len or decoder.max_text_len, decoder.max_text_len)
    n = sem_tokens.shape[0]
    prompts = decoder.encoder(sem_tokens)
    tokens = np.full((n, decoder.max_text_len), pad_id, dtype=np.int64)
    tokens[:, 0] = bos_id
    cache = KVCache(decoder.transformer.depth)
    ended = np.zeros(n, dtype=bool)
    steps = []
    emb = decoder.transformer.tok_embeddings
    for cur in range(1, max_gen_len):
        prev = torch.as_tensor(tokens[:, cur - 1:cur], device=prompts.device)
        x = emb(prev)
        if cur == 1:
            x, start = torch.cat([prompts, x], dim=1), 0
        else:
            start = cur  # prompt occupies position 0, so token i sits at position i + 1
        logits = decoder(x, start, cache)[:, -1]
        steps.append(logits)
        nxt = logits.argmax(-1).cpu().numpy()
        tokens[:, cur] = nxt
        ended |= nxt == eos_id
        if ended.all():
            break
    v = decoder.transformer.text_proj.out_features
    step_logits = torch.stack(steps, 1) if steps else torch.zeros(n, 0, v)
    return Generation(tokens=tokens, step_logits=step_logits)
