"""Tag2Text and RAM on configurations fixture A does not contain: invariants the official computation has.

Fixture A pins one configuration (384 px, window 12, 48-wide text, 3 text layers, 2-layer head). Without the
official code here, a configuration unlike it (224 px with window 7, 32-wide text with 2 heads, a 1-layer
4-head head, ReLU FFNs, LayerNorm eps 1e-6, a 40-token vocabulary) is checked against what must hold for the
official model whatever its sizes: the KV-cached decoding equals one full causal forward; every finished
hypothesis of the beam search scores sum(log p) / length recomputed from that forward (and none ends before
``min_length``); a batch decodes as its images alone (transformers 4.25.1; later versions do not); nucleus
sampling with a vanishing ``top_p`` follows the argmax of the penalised full-forward logits. These show that
the decoding is consistent with the model on any size, not that the sizes' numbers match the official ones
(fixture A shows that for its configuration). RAM is checked against RAM++ with one description per tag,
where the two official models compute the same thing (RAM++'s path is pinned to official numbers on such
configurations in ``test_ram_plus_configs.py``).
"""
from __future__ import annotations

import contextlib

import pytest
import torch

from tagging.ram import RAM
from tagging.ram_plus import RAMPlus
from tagging.tag2text import Tag2Text
from tagging.tag2text.generation import beam_search, sample

SEP, PAD, VOCAB, PROMPT = 3, 0, 40, [38, 7, 8, 9]  # [DEC] = 38 and three prompt tokens


@pytest.fixture(scope="module")
def model() -> Tag2Text:
    torch.manual_seed(5)
    m = Tag2Text(image_size=224, embed_dim=16, depths=(1, 2, 1, 1), num_heads=(1, 2, 2, 4), window_size=7,
                 num_classes=12, decoder_hidden_size=32, decoder_layers=1, decoder_heads=4,
                 decoder_intermediate_size=64, decoder_layer_norm_eps=1e-6, decoder_hidden_act="relu",
                 text_vocab_size=VOCAB, text_hidden_size=32, text_layers=2, text_heads=2, text_intermediate_size=64,
                 text_layer_norm_eps=1e-6, text_hidden_act="relu").eval()
    with torch.no_grad():
        m.text_decoder.cls.predictions.bias[SEP] += 1.0  # beams end with [SEP] or run to max_length
    return m


@pytest.fixture(scope="module")
def states(model) -> torch.Tensor:
    """Tag-encoder states of 3 images with 10-token tag strings (the last 3 tokens padding)."""
    g = torch.Generator().manual_seed(6)
    images = torch.randn(3, 3, 224, 224, generator=g)
    ids = torch.randint(10, VOCAB - 2, (3, 10), generator=g)
    ids[:, 0] = VOCAB - 1
    mask = torch.ones(3, 10, dtype=torch.long)
    mask[:, 7:] = 0
    with torch.no_grad():
        return model.encode_tags(ids, mask, model.encode_image(images))


@contextlib.contextmanager
def _sep_bias(model, extra: float):
    """[SEP] more likely by ``extra`` (logit) inside the block."""
    bias = model.text_decoder.cls.predictions.bias
    with torch.no_grad():
        bias[SEP] += extra
    try:
        yield
    finally:
        with torch.no_grad():
            bias[SEP] -= extra


def _step(model, states, repeat=1):
    kv = [(k.repeat_interleave(repeat, 0), v.repeat_interleave(repeat, 0))
          for k, v in model.text_decoder.cross_key_values(states)]

    def step(new_ids, past):
        logits, present = model.text_decoder(new_ids, cross_kv=kv, past=past)
        return logits[:, -1], present
    return step


def _full_log_probs(model, states, ids: list[int], row: int) -> torch.Tensor:
    """log-softmax of one full causal forward (no cache) over ``ids`` for image ``row``: ``[len, V]``."""
    with torch.no_grad():
        logits, _ = model.text_decoder(torch.tensor([ids]), cross_kv=model.text_decoder.cross_key_values(
            states[row:row + 1]))
    return torch.log_softmax(logits[0].double(), dim=-1)


def test_cached_decoding_equals_full_forward(model, states):
    ids = torch.randint(4, VOCAB, (3, 9), generator=torch.Generator().manual_seed(1))
    kv = model.text_decoder.cross_key_values(states)
    with torch.no_grad():
        full, _ = model.text_decoder(ids, cross_kv=kv)
        past, steps = None, []
        for t in range(ids.shape[1]):
            logits, past = model.text_decoder(ids[:, t:t + 1], cross_kv=kv, past=past)
            steps.append(logits)
    assert torch.allclose(torch.cat(steps, dim=1), full, atol=1e-5)
    with pytest.raises(ValueError, match="one at a time"):
        model.text_decoder(ids[:, :2], cross_kv=kv, past=past)


def test_beam_hypotheses_score_their_full_forward_log_probs(model, states):
    prompt = torch.tensor([PROMPT] * 3)
    out = beam_search(_step(model, states, 3), prompt, num_beams=3, max_length=14, min_length=7, eos_id=SEP,
                      pad_id=PAD)
    ended = 0
    for b in range(3):
        assert len(out.hypotheses[b]) == 3
        for score, ids in out.hypotheses[b]:
            assert ids[:4] == PROMPT and SEP not in ids
            finished = len(ids) < 14  # else cut at max_length, added without [SEP]
            ended += finished
            assert len(ids) >= 7 or not finished  # no [SEP] before min_length
            logp = _full_log_probs(model, states, ids, b)
            total = sum(logp[t - 1, ids[t]].item() for t in range(4, len(ids)))
            total += logp[-1, SEP].item() if finished else 0.0
            assert abs(total / len(ids) - score) < 1e-5
        best = max(out.hypotheses[b], key=lambda h: h[0])
        assert out.best[b] == best[1] and out.scores[b] == best[0]
        row = out.sequences[b].tolist()
        assert row[:len(best[1])] == best[1]
        assert row[len(best[1]):] == ([SEP] + [PAD] * (len(row) - len(best[1]) - 1) if len(row) > len(best[1]) else [])
    assert 0 < ended < 9  # both endings occur


def test_a_batch_decodes_as_its_images_alone(model, states):
    kwargs = dict(num_beams=3, max_length=16, min_length=5, eos_id=SEP, pad_id=PAD)
    with _sep_bias(model, 0.5):
        batch = beam_search(_step(model, states, 3), torch.tensor([PROMPT] * 3), **kwargs)
        assert len({len(x) for x in batch.best}) > 1  # images finish at different steps
        for b in range(3):
            alone = beam_search(_step(model, states[b:b + 1], 3), torch.tensor([PROMPT]), **kwargs)
            assert alone.best == [batch.best[b]]
            assert [ids for _, ids in alone.hypotheses[0]] == [ids for _, ids in batch.hypotheses[b]]
            assert [s for s, _ in alone.hypotheses[0]] == pytest.approx([s for s, _ in batch.hypotheses[b]], abs=1e-6)


def test_repetition_penalty_changes_beam_scores(model, states):
    kwargs = dict(num_beams=2, max_length=12, min_length=12, eos_id=SEP, pad_id=PAD)
    plain = beam_search(_step(model, states[:1], 2), torch.tensor([PROMPT]), **kwargs)
    penalised = beam_search(_step(model, states[:1], 2), torch.tensor([PROMPT]), repetition_penalty=3.0, **kwargs)
    repeats = lambda ids: len(ids) - len(set(ids))  # noqa: E731
    assert repeats(penalised.best[0]) <= repeats(plain.best[0])
    assert penalised.scores[0] < plain.scores[0]  # seen tokens' log-probs are multiplied by 3


def test_vanishing_top_p_samples_the_penalised_argmax(model, states):
    prompt = torch.tensor([PROMPT] * 3)
    out = sample(_step(model, states), prompt, max_length=13, min_length=8, eos_id=SEP, pad_id=PAD, top_p=1e-6,
                 top_k=50, repetition_penalty=1.1, generator=torch.Generator().manual_seed(0))
    for b in range(3):
        ids = list(PROMPT)
        while len(ids) < 13:
            with torch.no_grad():
                logits, _ = model.text_decoder(torch.tensor([ids]), cross_kv=model.text_decoder.cross_key_values(
                    states[b:b + 1]))
            scores = logits[0, -1].clone()
            seen = torch.tensor(sorted(set(ids)))
            scores[seen] = torch.where(scores[seen] < 0, scores[seen] * 1.1, scores[seen] / 1.1)
            if len(ids) < 8:
                scores[SEP] = -float("inf")
            token = int(scores.argmax())
            if token == SEP:
                break
            ids.append(token)
        assert out.best[b] == ids
        row = out.sequences[b].tolist()
        if len(ids) < 13:
            assert row[len(ids)] == SEP and set(row[len(ids) + 1:]) <= {PAD}


def test_sampling_is_seeded_and_keeps_min_length(model, states):
    prompt = torch.tensor([PROMPT] * 3)

    def run(seed):
        return sample(_step(model, states), prompt, max_length=20, min_length=9, eos_id=SEP, pad_id=PAD,
                      generator=torch.Generator().manual_seed(seed))
    with _sep_bias(model, 3.0):
        a, b, c = run(0), run(0), run(1)
    assert torch.equal(a.sequences, b.sequences) and not torch.equal(a.sequences, c.sequences)
    rows = a.sequences.tolist() + c.sequences.tolist()
    assert any(SEP in row for row in rows)  # some rows end ...
    for row in rows:
        assert SEP not in row[:9]  # ... never before min_length
        if SEP in row:
            assert set(row[row.index(SEP) + 1:]) <= {PAD}


def test_ram_equals_ram_plus_with_one_description_per_tag():
    sizes = dict(image_size=128, embed_dim=16, depths=(2, 3, 2), num_heads=(2, 2, 4), window_size=4, num_classes=7,
                 decoder_hidden_size=48, decoder_layers=2, decoder_heads=3, decoder_intermediate_size=64,
                 decoder_layer_norm_eps=1e-6, decoder_hidden_act="relu")
    torch.manual_seed(3)
    plus = RAMPlus(descriptions_per_tag=1, **sizes).eval()
    ram = RAM(**sizes).eval()
    ram.load_state_dict({k: v for k, v in plus.state_dict().items() if k != "reweight_scale"})
    images = torch.randn(2, 3, 128, 128, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        assert torch.allclose(ram(images).logits, plus(images).logits, atol=1e-5)
        open_embed = torch.nn.functional.normalize(torch.randn(5, 512), dim=-1)
        emb = ram.encode_image(images)
        assert torch.allclose(ram.tag_logits(emb, open_embed), plus.tag_logits(emb, open_embed, 1), atol=1e-5)
