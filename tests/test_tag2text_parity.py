"""Tag2Text parity against the official-code fixture A: tags, the transformers 4.25.1 beam search's exact token
ids and captions (own tags, user tags, batch and single image, max_length 30 and 50), teacher-forced logits."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from openvocab.hub import sha256sum
from tagging import verify
from tagging.tag2text import CaptionSettings, Tag2TextTagger, Tag2TextTokenizer, generate
from tagging.tag2text.model import model_kwargs_from_official
from tagging.tag2text.weights import TAG_FILES

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def fixture_path(parity_dir) -> Path:
    return parity_dir / "tag2text" / "tag2text_tiny_A.pt"


@pytest.fixture(scope="module")
def fixture(fixture_path):
    return torch.load(fixture_path, map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def rerun(fixture):
    return verify.run(fixture)


@pytest.fixture(scope="module")
def files(fixture, tmp_path_factory) -> dict:
    """The fixture's weights as the official file, its vocabulary, and its tag list written as the official
    file (the same bytes: the tag file's published sha256)."""
    d = tmp_path_factory.mktemp("t2t")
    torch.save(fixture["checkpoint"], d / "tag2text_tiny_A.pth")
    (d / "vocab.txt").write_text(fixture["config"]["vocab_txt"])
    (d / TAG_FILES["tag_list"].filename).write_text("\n".join(fixture["config"]["tag_list"]))
    return {"checkpoint": d / "tag2text_tiny_A.pth", "vocab": d / "vocab.txt", "dir": d}


def test_verify_cli_exact_tokens_and_captions(fixture_path, fixture, tmp_path):
    out = tmp_path / "out.pt"
    proc = subprocess.run([sys.executable, "-m", "tagging.verify", str(fixture_path), "--save", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "OK: worst" in proc.stdout and "tag2text fixture" in proc.stdout
    res = torch.load(out, weights_only=True)
    assert set(res["outputs"]) == set(fixture["outputs"])
    for call, ref in fixture["generation"].items():
        if call == "teacher_forced":
            continue
        mine = res["generation"][call]
        for got, want in (zip(mine, ref) if isinstance(ref, list) else [(mine, ref)]):
            assert got["best_ids"] == want["best_ids"], call
            assert torch.equal(got["generated_ids"], want["generated_ids"]), call
            assert got.get("captions", got.get("caption")) == want.get("captions", want.get("caption")), call


def test_tags_and_thresholds(rerun, fixture):
    res, _ = rerun
    ref = fixture["outputs"]
    assert (res["outputs"]["tag_logits"] - ref["tag_logits"]).abs().max() < 1e-4
    assert torch.equal(res["outputs"]["class_threshold"], ref["class_threshold"])
    assert torch.equal(res["outputs"]["tag_targets"], ref["tag_targets"])
    assert res["outputs"]["tags"] == ref["tags"]
    # the designed cases: 'quarter'/'two' fire everywhere and are deleted; 'person' (0.69) blocked by its 0.7
    names = fixture["config"]["tag_list"]
    assert ref["tag_targets_before_delete"][:, [127, 3351]].all() and not ref["tag_targets"][:, [127, 3351]].any()
    assert names[2701] == "person" and 0.68 < ref["tag_probs"][0, 2701] < 0.7 and not ref["tag_targets"][0, 2701]


def test_generation_calls_token_for_token(rerun, fixture):
    res, _ = rerun
    diffs = dict(verify.compare(fixture, res, rerun[1]))
    gen = fixture["generation"]
    # both ways a hypothesis ends are covered: max_length without [SEP] (images 0 and 1), [SEP] (image 2)
    assert gen["default_batch"]["generated_ids"][2, 16] == 3 and len(gen["default_batch"]["best_ids"][0]) == 30
    for name, d in diffs.items():
        if name.startswith("generation.") and not name.endswith(("hypotheses", "logits", "tag_encoder_out")):
            assert d == 0.0, name  # ids and strings exactly
    for call in ("default_batch", "user_tags_batch", "wrapper_user_img0", "wrapper_single[0]", "wrapper_single[2]"):
        assert diffs[f"generation.{call}.hypotheses"] < 1e-5, call  # every finished hypothesis, score and ids
    assert diffs["intermediates.first_step_scores"] < 1e-4
    assert diffs["intermediates.tag_encoder_input_ids"] == 0.0  # [ENC] first, [PAD] after [SEP], cut at 40
    assert diffs["generation.teacher_forced.logits"] < 1e-4


def test_teacher_forced_logits_from_stored_encoder_states(fixture):
    """The decoder alone: the stored tag-encoder states and sequences give the official logits."""
    from tagging.recognize_anything.loading import load_official
    from tagging.tag2text import Tag2Text, convert_state_dict

    model = Tag2Text(**model_kwargs_from_official(fixture["config"])).eval()
    load_official(model, convert_state_dict(fixture["checkpoint"]))
    tf = fixture["generation"]["teacher_forced"]
    with torch.no_grad():
        logits, _ = model.text_decoder(tf["seqs"], cross_kv=model.text_decoder.cross_key_values(tf["tag_encoder_out"]))
    for b, n in enumerate(tf["lens"]):
        assert (logits[b, :n] - tf["logits"][b, :n]).abs().max() < 1e-4


def test_tokenizer_matches_official_ids(fixture):
    cfg = fixture["config"]
    tok = Tag2TextTokenizer(vocab={t: i for i, t in enumerate(cfg["vocab_txt"].splitlines())})
    assert (tok.bos_id, tok.enc_id, len(tok)) == (2751, 2752, 2753)
    assert tok.prompt_ids(2).tolist() == [[2751] + cfg["tokenizer"]["prompt_ids"][1:-1]] * 2
    ids, mask = tok.encode_tags(fixture["outputs"]["tags"])
    assert torch.equal(ids, fixture["intermediates"]["tag_encoder_input_ids"])
    assert torch.equal(mask, fixture["intermediates"]["tag_encoder_attention_mask"])
    assert ids[1, 39] == tok.sep_id and mask[1].all()  # image 1's 29 tags are cut at 40 tokens
    for ids, text in zip(fixture["generation"]["default_batch"]["best_ids"],
                         fixture["generation"]["default_batch"]["decoded_best"]):
        assert tok.decode(ids) == text
    # word pieces join, [UNK] and other special tokens vanish, contractions and punctuation close up
    v = tok._tok.convert_tokens_to_ids
    assert tok.decode([tok.bos_id, v("a"), v("thanks"), v("##giving"), tok.unk_id, v("."), tok.sep_id]) \
        == "a thanksgiving."


def test_tag_file_bytes_are_the_official_file(files):
    assert sha256sum(files["dir"] / TAG_FILES["tag_list"].filename) == TAG_FILES["tag_list"].sha256


def test_stage_reproduces_official_tags_and_captions(fixture, files, monkeypatch):
    """Tag2TextTagger with the official tag list (through the hub look-up, thresholds and deleted tags
    included) and the fixture's weights: tags, own-tag captions and user-tag captions."""
    monkeypatch.setenv("OPENVOCAB_CHECKPOINT_DIR", str(files["dir"]))
    tagger = Tag2TextTagger(variant="tiny", checkpoint=str(files["checkpoint"]), vocab=str(files["vocab"]),
                            model_kwargs=model_kwargs_from_official(fixture["config"]), max_length=30, batch_size=3)
    tagger.setup("cpu")
    assert tagger.delete_tag_index == [127, 2961, 3351, 3265, 3338, 3355, 3359]
    images = [t.numpy() for t in fixture["inputs"]["raw_uint8"]]
    gen = fixture["generation"]
    both = tagger.tag_and_caption(images)
    for (tags, caption), want_tags, want_caption in zip(both, fixture["outputs"]["tags"],
                                                          gen["default_batch"]["captions"]):
        assert sorted(tags.names) == sorted(want_tags.split(" | "))
        assert caption == want_caption
    assert [t.names for t in tagger.tag(images)] == [t.names for t, _ in both]
    assert tagger.caption(images, tags=[s.split(" | ") for s in gen["user_tags_batch"]["tag_input"]]) \
        == gen["user_tags_batch"]["captions"]
    # one image alone at the official inference's max_length 50, own tags then the user's
    single = Tag2TextTagger(variant="tiny", checkpoint=str(files["checkpoint"]), vocab=str(files["vocab"]),
                            model_kwargs=model_kwargs_from_official(fixture["config"]))
    user = gen["wrapper_user_img0"]["user_tags"].split(" | ")
    assert single.caption(images[:1]) == [gen["wrapper_single"][0]["caption"]]
    assert single.caption(images[1:], tags=[None, None]) == [w["caption"] for w in gen["wrapper_single"][1:]]
    assert single.caption(images[:1], tags=[user]) == [gen["wrapper_user_img0"]["caption"]]


def test_hypothesis_scores_are_length_normalised_log_probs(fixture):
    """The 4.25.1 rule: a finished hypothesis scores sum(log p) / length, the length counting the prompt and
    not the [SEP]; here recomputed from the official teacher-forced logits of the best sequences."""
    tf, gen = fixture["generation"]["teacher_forced"], fixture["generation"]["default_batch"]
    for b, n in enumerate(tf["lens"]):
        logp = torch.log_softmax(tf["logits"][b].double(), dim=-1)
        seq = tf["seqs"][b]
        ended = gen["generated_ids"][b, n:n + 1].tolist() == [3]
        total = sum(logp[t - 1, seq[t]].item() for t in range(4, n)) + (logp[n - 1, 3].item() if ended else 0.0)
        best = max(gen["hypotheses"][b], key=lambda h: h[0])
        assert best[1] == seq[:n].tolist() and abs(total / n - best[0]) < 1e-5


def test_caption_settings_validate():
    for bad in [dict(num_beams=0), dict(max_length=4), dict(top_p=0.0), dict(top_k=-1),
                dict(repetition_penalty=0.0), dict(min_length=-1)]:
        with pytest.raises(ValueError):
            CaptionSettings(**bad)
    with pytest.raises(ValueError, match="tag strings"):
        generate(None, None, torch.zeros(2, 5, 8), ["a"], CaptionSettings())


def test_inputs_only_fixture_saves_every_call_and_fails(fixture, tmp_path, capsys):
    bare = {k: fixture[k] for k in ("config", "checkpoint", "inputs")}
    path = tmp_path / "bare.pt"
    torch.save(bare, path)
    assert verify.main([str(path), "--save", str(tmp_path / "o.pt")]) == 1
    assert capsys.readouterr().out.splitlines()[-1].startswith("FAIL: nothing compared")
    res = torch.load(tmp_path / "o.pt", weights_only=True)
    gen = fixture["generation"]
    assert res["generation"]["default_batch"]["captions"] == gen["default_batch"]["captions"]
    assert res["generation"]["default_batch"]["best_ids"] == gen["default_batch"]["best_ids"]
    assert [w["caption"] for w in res["generation"]["wrapper_single"]] == [w["caption"] for w in gen["wrapper_single"]]
    assert set(res["generation"]) == {"default_batch", "wrapper_single", "teacher_forced"}  # no user tags stored
