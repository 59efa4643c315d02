"""Tag2Text fixture rerun: :class:`tagging.tag2text.model.Tag2Text` from the fixture's ``config``.

The weights go through :func:`tagging.tag2text.convert_state_dict` and the strict loader (the fixture's
``checkpoint``, the official file layout, when present); the tokenizer is built from ``config.vocab_txt``.
Results mirror the fixture's names: ``outputs`` (tag logits, probabilities, thresholds, targets, tag strings),
``intermediates`` (Swin, tagging head, tag encoder, the first decoding step's scores) and ``generation``, one
entry a call of the official script: ``default_batch`` (own tags, ``generate`` defaults), ``wrapper_single``
(each image alone, ``inference_tag2text`` with max_length 50), ``user_tags_batch`` and ``wrapper_user_img0``
(the fixture's user tags, when it stores them), and ``teacher_forced`` (one causal forward over ``seqs``:
the fixture's, else this run's best sequences).
"""
from __future__ import annotations

import torch

from ..recognize_anything.loading import load_official
from ..tag2text.captioning import CaptionSettings, generate
from ..tag2text.convert import convert_state_dict
from ..tag2text.model import Tag2Text, model_kwargs_from_official
from ..tag2text.tokenizer import Tag2TextTokenizer
from .common import capture, config_of, difference, intermediate_pairs, model_input, tag_strings, weights_of
from .ram_plus import PREPROCESS_CHECK, thresholded


def _named(model: Tag2Text) -> dict:
    named = {"swin_patch_embed": model.visual_encoder.patch_embed, "image_embeds": model.visual_encoder,
             "tagging_embed": model.tagging_head}
    for i, layer in enumerate(model.visual_encoder.layers):
        named[f"swin_layer{i}_out"] = layer
    for i, layer in enumerate(model.tagging_head.encoder.layer):
        named[f"tagging_head_layer{i}_crossattn_out"] = layer.crossattention
        named[f"tagging_head_layer{i}_out"] = layer
    return named


def _thresholds(cfg: dict, classes: int) -> torch.Tensor:
    th = torch.full((classes,), float(cfg.get("threshold_ctor", 0.68)))
    for index, value in (cfg.get("hardcoded_class_threshold") or {}).items():
        th[int(index)] = float(value)
    return th


class _Run:
    """The model, tokenizer and decision of one fixture."""

    def __init__(self, cfg: dict, fixture: dict) -> None:
        self.model = Tag2Text(**model_kwargs_from_official(cfg)).eval()
        load_official(self.model, convert_state_dict(weights_of(fixture)), source="fixture checkpoint")
        self.tok = Tag2TextTokenizer(vocab={t: i for i, t in enumerate(cfg["vocab_txt"].splitlines())})
        self.names = cfg["tag_list"]
        self.thresholds = _thresholds(cfg, len(self.names))
        self.delete = [int(i) for i in cfg.get("delete_tag_index", [])]
        gen = cfg.get("generation", {})
        defaults = gen.get("generate_defaults", {})
        self.settings = CaptionSettings(num_beams=int(defaults.get("num_beams", 3)),
                                        max_length=int(defaults.get("max_length", 30)),
                                        min_length=int(defaults.get("min_length", 10)),
                                        repetition_penalty=float(defaults.get("repetition_penalty", 1.0)))
        wrapper = int(gen.get("wrapper_inference_tag2text", {}).get("max_length", 50))
        self.wrapper = CaptionSettings(num_beams=self.settings.num_beams, max_length=wrapper,
                                       min_length=self.settings.min_length,
                                       repetition_penalty=self.settings.repetition_penalty)

    def tags(self, emb: torch.Tensor) -> tuple[torch.Tensor, list[str]]:
        logits = self.model.tag_logits(emb)
        return logits, tag_strings(thresholded(torch.sigmoid(logits), self.thresholds, self.delete)[1], self.names)

    def call(self, emb: torch.Tensor, strings: list[str], settings: CaptionSettings) -> dict:
        out = generate(self.model, self.tok, emb, strings, settings)
        return dict(captions=[self.tok.caption(r) for r in out.sequences], generated_ids=out.sequences,
                    best_ids=out.best, hypotheses=[[(s, ids) for s, ids in h] for h in out.hypotheses],
                    decoded_best=[self.tok.decode(b) for b in out.best])

    def single(self, emb: torch.Tensor, user: str | None) -> dict:
        """``inference_tag2text`` on one image: own tags, and a second call with the user's when given."""
        tags = self.tags(emb)[1]
        first = self.call(emb, tags, self.wrapper)
        out = dict(tags=tags[0], user_tags=None, caption=first["captions"][0], generated_ids=first["generated_ids"],
                   hypotheses=first["hypotheses"], best_ids=first["best_ids"][0])
        if user is not None:
            second = self.call(emb, [user], self.wrapper)
            out.update(user_tags=user, caption=second["captions"][0], generated_ids_first_call=first["generated_ids"],
                       generated_ids=second["generated_ids"], hypotheses=second["hypotheses"],
                       best_ids=second["best_ids"][0])
        return out


def run(fixture: dict) -> tuple[dict, dict]:
    """``(results, captured intermediates)`` of a Tag2Text fixture."""
    cfg = config_of(fixture)
    r = _Run(cfg, fixture)
    image, res = model_input(fixture, r.model.image_size, cfg["preprocess"]["mean"], cfg["preprocess"]["std"])
    stored = fixture.get("generation") or {}
    with torch.no_grad():
        got, hooks = capture(_named(r.model))
        try:
            emb = r.model.encode_image(image)
            logits, tags = r.tags(emb)
        finally:
            for h in hooks:
                h.remove()
        probs = torch.sigmoid(logits)
        before, after = thresholded(probs, r.thresholds, r.delete)
        res["outputs"] = dict(tag_logits=logits, tag_probs=probs, class_threshold=r.thresholds,
                              tag_targets_before_delete=before, tag_targets=after, tags=tags)
        ids, mask = r.tok.encode_tags(tags)
        states = r.model.encode_tags(ids, mask, emb)
        first, _ = r.model.text_decoder(r.tok.prompt_ids(len(tags)),
                                        cross_kv=r.model.text_decoder.cross_key_values(states))
        scores = torch.log_softmax(first[:, -1], dim=-1)
        scores[:, r.tok.sep_id] = -float("inf")
        got.update(tag_encoder_input_ids=ids, tag_encoder_attention_mask=mask, tag_encoder_out=states,
                   first_step_scores=scores)
        gen = {"default_batch": dict(r.call(emb, tags, r.settings), tag_output=tags)}
        gen["wrapper_single"] = [r.single(emb[i:i + 1], None) for i in range(len(emb))]
        if "tag_input" in stored.get("user_tags_batch", {}):
            user = list(stored["user_tags_batch"]["tag_input"])
            ids_u, mask_u = r.tok.encode_tags(user)
            gen["user_tags_batch"] = dict(r.call(emb, user, r.settings), tag_input=user, tag_output=user,
                                          tag_encoder_input_ids=ids_u,
                                          tag_encoder_attention_mask=mask_u,
                                          tag_encoder_out=r.model.encode_tags(ids_u, mask_u, emb))
        if "input_tag" in stored.get("wrapper_user_img0", {}):
            input_tag = stored["wrapper_user_img0"]["input_tag"]
            gen["wrapper_user_img0"] = dict(r.single(emb[:1], input_tag.replace(",", " | ")), input_tag=input_tag)
        seqs = stored.get("teacher_forced", {}).get("seqs")
        best = gen["default_batch"]["best_ids"]
        lens = [len(b) for b in best]
        if seqs is None:
            seqs = torch.full((len(best), max(lens)), r.tok.pad_id, dtype=torch.long)
            for i, b in enumerate(best):
                seqs[i, :len(b)] = torch.tensor(b)
        tf_logits, _ = r.model.text_decoder(seqs, cross_kv=r.model.text_decoder.cross_key_values(states))
        gen["teacher_forced"] = dict(seqs=seqs, lens=lens, logits=tf_logits, tag_encoder_out=states)
    res["intermediates"], res["generation"] = got, gen
    return res, got


def _teacher_forced(mine: dict, ref: dict) -> float:
    """Logits at the stored sequences' real positions (``t < lens[b]``; later positions are padding)."""
    if mine["logits"].shape != ref["logits"].shape:
        return float("inf")
    worst = 0.0
    for b, n in enumerate(ref["lens"]):
        worst = max(worst, difference(mine["logits"][b, :n], ref["logits"][b, :n]))
    return worst


def compare(fixture: dict, res: dict, got: dict) -> list[tuple[str, float]]:
    """``(name, max abs diff)`` for every stored reference present in the fixture (ids and strings: 0 or inf)."""
    pairs = [(f"outputs.{k}", res["outputs"].get(k), v) for k, v in (fixture.get("outputs") or {}).items()]
    if "preprocessed" in res:
        pairs.append((PREPROCESS_CHECK, res["preprocessed"], (fixture.get("inputs") or {}).get("image")))
    pairs += intermediate_pairs(fixture.get("intermediates") or {}, got)
    out = [(name, difference(mine, ref)) for name, mine, ref in pairs if ref is not None]
    for call, ref in (fixture.get("generation") or {}).items():
        mine = res["generation"].get(call)
        if call == "teacher_forced":
            for key in ("lens", "tag_encoder_out"):
                out.append((f"generation.teacher_forced.{key}", difference(mine.get(key), ref.get(key))))
            out.append(("generation.teacher_forced.logits", _teacher_forced(mine, ref)))
            continue
        items = enumerate(ref) if isinstance(ref, list) else [(None, ref)]
        for i, entry in items:
            one = (mine[i] if mine is not None and i < len(mine) else None) if i is not None else mine
            where = f"generation.{call}" + ("" if i is None else f"[{i}]")
            for key, value in entry.items():
                if key in ("call", "num_steps"):  # a description, a count of the official loop
                    continue
                out.append((f"{where}.{key}", difference(None if one is None else one.get(key), value)))
    return out


def saved(res: dict, got: dict) -> dict:
    """What ``--save`` writes: the results under the fixture's names."""
    return res
