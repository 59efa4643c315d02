"""Caption generation as the official Tag2Text ran it (transformers 4.25.1 ``generate``), on this package's cache.

Beam search (the official default) reproduces transformers 4.25.1 token for token: per step ``log_softmax``
of the last logits, the logits processors (repetition penalty when != 1, ``[SEP]`` forbidden while the length
is below ``min_length``), plus the beam scores; the top ``2 * num_beams`` of ``[B, num_beams * V]``; ``[SEP]``
candidates ranked below ``num_beams`` ignored, the others stored as finished hypotheses scored
``sum_logprobs / length`` (the length counts the prompt, not the ``[SEP]``); an image is done once it holds
``num_beams`` hypotheses none worse than ``best_next / cur_len``; at ``max_length`` the running beams of the
images not done are added. ``max_length`` / ``min_length`` count the prompt tokens. Later transformers versions
score by the generated length only and give other captions (``NOTES.md`` §3).

Sampling (``sample=True``): 4.25.1 ``sample`` with repetition penalty on the raw logits, the ``[SEP]`` ban, top-k
(the BERT config's 50) then top-p filtering, ``torch.multinomial`` with a caller's generator.

A ``step(new_ids [N, t], past) -> (logits [N, V] of the last position, past)`` callable runs the decoder;
:func:`reorder` reorders its cache (``(key, value)`` per layer, rows first).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch

#: ``step(new_ids, past) -> (last-position logits [N, V], past)``
Step = Callable[[torch.Tensor, Optional[list]], tuple[torch.Tensor, list]]


@dataclass
class Generated:
    """Generated sequences of a batch of B prompts.

    Attributes:
        sequences: int64 ``[B, T]``, prompt included, as transformers 4.25.1 returns them: rows shorter than
            the longest end with ``[SEP]`` then ``[PAD]``s (a row cut at ``max_length`` has no ``[SEP]``).
        best: each row's tokens without the padding/``[SEP]`` added above.
        scores: each row's score (beam search: ``sum_logprobs / length``; sampling: ``nan``).
        hypotheses: beam search only: each row's finished ``(score, tokens)`` in the order they were kept.
    """

    sequences: torch.Tensor
    best: list[list[int]]
    scores: list[float]
    hypotheses: list[list[tuple[float, list[int]]]]


def reorder(past: Optional[list], rows: torch.Tensor) -> Optional[list]:
    """The cache of ``rows`` (int64 ``[N]``), in that order."""
    if past is None:
        return None
    return [(k.index_select(0, rows), v.index_select(0, rows)) for k, v in past]


def _penalise_repeats(scores: torch.Tensor, ids: torch.Tensor, penalty: float) -> torch.Tensor:
    """transformers' ``RepetitionPenaltyLogitsProcessor``: seen tokens' scores ``* penalty`` if < 0 else
    ``/ penalty``."""
    seen = torch.gather(scores, 1, ids)
    return scores.scatter(1, ids, torch.where(seen < 0, seen * penalty, seen / penalty))


def _process(scores: torch.Tensor, ids: torch.Tensor, *, min_length: int, eos_id: int,
             repetition_penalty: float) -> torch.Tensor:
    if repetition_penalty != 1.0:
        scores = _penalise_repeats(scores, ids, repetition_penalty)
    if ids.shape[1] < min_length:
        scores = scores.clone()
        scores[:, eos_id] = -float("inf")
    return scores


class _Hypotheses:
    """Finished hypotheses of one image (transformers 4.25.1 ``BeamHypotheses``, length penalty 1)."""

    def __init__(self, num_beams: int) -> None:
        self.num_beams = num_beams
        self.beams: list[tuple[float, list[int]]] = []
        self.worst = 1e9

    def add(self, tokens: list[int], sum_logprobs: float) -> None:
        score = sum_logprobs / len(tokens)
        if len(self.beams) < self.num_beams or score > self.worst:
            self.beams.append((score, tokens))
            if len(self.beams) > self.num_beams:
                ranked = sorted((s, i) for i, (s, _) in enumerate(self.beams))
                del self.beams[ranked[0][1]]
                self.worst = ranked[1][0]
            else:
                self.worst = min(score, self.worst)

    def is_done(self, best_sum_logprobs: float, cur_len: int) -> bool:
        return len(self.beams) >= self.num_beams and self.worst >= best_sum_logprobs / cur_len

    def best(self) -> tuple[float, list[int]]:
        return sorted(self.beams, key=lambda h: h[0])[-1]


def _pack(best: list[list[int]], *, max_length: int, eos_id: int, pad_id: int) -> torch.Tensor:
    """The 4.25.1 output tensor: rows padded to ``min(longest + 1, max_length)``, ``[SEP]`` after short rows."""
    width = min(max(len(b) for b in best) + 1, max_length)
    out = torch.full((len(best), width), pad_id, dtype=torch.long)
    for i, tokens in enumerate(best):
        out[i, :len(tokens)] = torch.tensor(tokens, dtype=torch.long)
        if len(tokens) < width:
            out[i, len(tokens)] = eos_id
    return out


def _check(prompt: torch.Tensor, max_length: int, min_length: int) -> None:
    if prompt.ndim != 2 or prompt.shape[0] < 1:
        raise ValueError(f"prompt must be [B, P] token ids, got {list(prompt.shape)}")
    if max_length <= prompt.shape[1]:
        raise ValueError(f"max_length {max_length} leaves no room after the {prompt.shape[1]} prompt tokens")
    if min_length < 0:
        raise ValueError(f"min_length must be >= 0, got {min_length}")


@torch.no_grad()
def beam_search(step: Step, prompt: torch.Tensor, *, num_beams: int, max_length: int, min_length: int,
                eos_id: int, pad_id: int, repetition_penalty: float = 1.0) -> Generated:
    """Beam search from ``prompt [B, P]``; ``step`` runs ``B * num_beams`` rows, image-major (row
    ``b * num_beams + j`` is beam ``j`` of image ``b``)."""
    _check(prompt, max_length, min_length)
    if num_beams < 1:
        raise ValueError(f"num_beams must be >= 1, got {num_beams}")
    batch, nb = prompt.shape[0], num_beams
    ids = prompt.repeat_interleave(nb, dim=0)
    beam_scores = torch.zeros(batch, nb)
    beam_scores[:, 1:] = -1e9
    beam_scores = beam_scores.view(-1)
    hyps = [_Hypotheses(nb) for _ in range(batch)]
    done = [False] * batch
    past = None
    while True:
        cur_len = ids.shape[1]
        logits, past = step(ids if past is None else ids[:, -1:], past)
        scores = _process(torch.log_softmax(logits.float(), dim=-1), ids, min_length=min_length, eos_id=eos_id,
                          repetition_penalty=repetition_penalty)
        scores = scores + beam_scores[:, None].to(scores.device)
        vocab = scores.shape[-1]
        top, index = torch.topk(scores.view(batch, nb * vocab), 2 * nb, dim=1, largest=True, sorted=True)
        top, index = top.cpu(), index.cpu()
        beams, tokens = index // vocab, index % vocab
        next_scores = torch.zeros(batch, nb)
        next_tokens = torch.full((batch, nb), pad_id, dtype=torch.long)
        next_rows = torch.zeros(batch, nb, dtype=torch.long)  # a done image's rows: row 0's, as 4.25.1 does
        for b in range(batch):
            if done[b]:
                continue
            kept = 0
            for rank in range(2 * nb):
                token, row = int(tokens[b, rank]), b * nb + int(beams[b, rank])
                if token == eos_id:
                    if rank < nb:
                        hyps[b].add(ids[row].tolist(), top[b, rank].item())
                else:
                    next_scores[b, kept], next_tokens[b, kept], next_rows[b, kept] = top[b, rank], token, row
                    kept += 1
                if kept == nb:
                    break
            done[b] = hyps[b].is_done(top[b].max().item(), cur_len)
        beam_scores = next_scores.view(-1)
        rows = next_rows.view(-1).to(ids.device)
        ids = torch.cat([ids.index_select(0, rows), next_tokens.view(-1, 1).to(ids.device)], dim=1)
        past = reorder(past, rows)
        if all(done) or ids.shape[1] >= max_length:
            break
    for b in range(batch):
        if not done[b]:
            for j in range(nb):
                hyps[b].add(ids[b * nb + j].tolist(), beam_scores[b * nb + j].item())
    chosen = [h.best() for h in hyps]
    best = [tokens for _, tokens in chosen]
    return Generated(sequences=_pack(best, max_length=max_length, eos_id=eos_id, pad_id=pad_id), best=best,
                     scores=[score for score, _ in chosen], hypotheses=[list(h.beams) for h in hyps])


def _top_k(scores: torch.Tensor, k: int) -> torch.Tensor:
    k = min(max(k, 1), scores.shape[-1])
    kth = torch.topk(scores, k)[0][..., -1, None]
    return scores.masked_fill(scores < kth, -float("inf"))


def _top_p(scores: torch.Tensor, p: float) -> torch.Tensor:
    """Keep the most likely tokens whose cumulative probability first reaches ``p`` (at least one)."""
    ordered, order = torch.sort(scores, descending=True)
    cumulative = ordered.softmax(dim=-1).cumsum(dim=-1)
    drop = cumulative > p
    drop[..., 1:] = drop[..., :-1].clone()
    drop[..., 0] = False
    return scores.masked_fill(drop.scatter(1, order, drop), -float("inf"))


@torch.no_grad()
def sample(step: Step, prompt: torch.Tensor, *, max_length: int, min_length: int, eos_id: int, pad_id: int,
           top_p: float = 0.9, top_k: int = 50, repetition_penalty: float = 1.1,
           generator: Optional[torch.Generator] = None) -> Generated:
    """Nucleus sampling from ``prompt [B, P]``, one row per prompt; finished rows continue with ``[PAD]``."""
    _check(prompt, max_length, min_length)
    if not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")
    ids, past = prompt, None
    unfinished = torch.ones(prompt.shape[0], dtype=torch.long, device=prompt.device)
    while True:
        logits, past = step(ids if past is None else ids[:, -1:], past)
        scores = _process(logits.float(), ids, min_length=min_length, eos_id=eos_id,
                          repetition_penalty=repetition_penalty)
        if top_k:
            scores = _top_k(scores, top_k)
        if top_p < 1.0:
            scores = _top_p(scores, top_p)
        probs = scores.softmax(dim=-1)
        chosen = torch.multinomial(probs.cpu(), num_samples=1, generator=generator).squeeze(1).to(ids.device)
        chosen = chosen * unfinished + pad_id * (1 - unfinished)
        ids = torch.cat([ids, chosen[:, None]], dim=1)
        unfinished = unfinished * (chosen != eos_id).long()
        if int(unfinished.max()) == 0 or ids.shape[1] >= max_length:
            break
    best = []
    for row in ids.tolist():
        end = row.index(eos_id, prompt.shape[1]) if eos_id in row[prompt.shape[1]:] else len(row)
        best.append(row[:end])
    return Generated(sequences=ids.cpu(), best=best, scores=[float("nan")] * len(best), hypotheses=[[] for _ in best])

