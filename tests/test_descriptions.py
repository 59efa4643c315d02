"""Open-set tag descriptions: describer + backends (fake, HTTP, transformers), CLIP embedding, files."""
import http.server
import json
import threading

import pytest
import torch
from safetensors import safe_open

import tagging  # noqa: F401  (registers)
from openvocab.cli import main as cli_main
from openvocab.registry import DESCRIPTION_BACKENDS, TOOLS
from tagging.descriptions import read_descriptions
from tagging.descriptions.backends import BackendError, OpenAIHTTPBackend, TransformersLMBackend
from tagging.descriptions.clip_text import CLIPTextEncoder
from tagging.descriptions.prompts import DESCRIPTION_PROMPTS


@pytest.fixture(scope="module")
def encoder(bpe_files):
    return CLIPTextEncoder(variant="tiny", checkpoint=None, vocab=bpe_files[0], merges=bpe_files[1]).setup()


class FakeBackend:
    cache_key = "fake"

    def __init__(self):
        self.calls = []

    def generate(self, prompt, n):
        self.calls.append(prompt)
        return [f"{prompt} answer {i}" for i in range(n)]


def test_describer_recipe_and_cache(tmp_path):
    backend = FakeBackend()
    d = TOOLS.build(dict(type="LLMTagDescriber", backend=backend, samples_per_prompt=3,
                         cache=str(tmp_path / "cache.json")))
    out = d.describe(["Snow Leopard", "kite", "kite"])
    assert list(out) == ["Snow Leopard", "kite"]
    descs = out["Snow Leopard"]
    assert descs[0] == "a photo of a snow leopard." and len(descs) == 1 + 3 * len(DESCRIPTION_PROMPTS)
    assert descs[1] == "Describe concisely what a(n) Snow Leopard looks like: answer 0"
    assert (d.hits, d.misses, len(backend.calls)) == (0, 2, 2 * len(DESCRIPTION_PROMPTS))
    d2 = TOOLS.build(dict(type="LLMTagDescriber", backend=backend, samples_per_prompt=3,
                          cache=str(tmp_path / "cache.json")))
    assert d2.describe(["kite", "ball"])["kite"] == out["kite"]
    assert (d2.hits, d2.misses) == (1, 1)


class _Handler(http.server.BaseHTTPRequestHandler):
    requests = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Handler.requests.append((self.path, self.headers.get("Authorization"), body))
        if body["model"] == "missing":
            self.send_response(404)
            self.end_headers()
            self.wfile.write(b'{"error": "no such model"}')
            return
        q = body["messages"][0]["content"]
        if body["model"] == "one-choice":  # like llama.cpp / Ollama: n is ignored
            data = {"choices": [{"message": {"content": f"{q} call {len(_Handler.requests)}"}}]}
        elif body["model"] == "no-content":
            data = {"choices": [{"message": {"content": None}}]}
        else:
            data = {"choices": [{"message": {"content": f"  {q} #{i} "}} for i in range(body["n"])]}
        raw = json.dumps(data).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *a):
        pass


def test_http_backend_against_local_server(monkeypatch, tmp_path):
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
        monkeypatch.setenv("MY_KEY", "sk-test")
        b = OpenAIHTTPBackend(base_url=base, model="tiny-llm", api_key_env="MY_KEY")
        assert b.generate("What does a kite look like?", 2) == ["What does a kite look like? #0",
                                                                "What does a kite look like? #1"]
        path, auth, body = _Handler.requests[-1]
        assert path == "/v1/chat/completions" and auth == "Bearer sk-test"
        assert body["n"] == 2 and body["max_tokens"] == 77 and body["temperature"] == 0.99
        assert body["messages"] == [{"role": "user", "content": "What does a kite look like?"}]
        OpenAIHTTPBackend(base_url=base, model="tiny-llm", role="assistant").generate("x", 1)  # as the official script
        assert _Handler.requests[-1][2]["messages"][0]["role"] == "assistant"
        # a server that answers one choice per request is asked until n answers are in
        before = len(_Handler.requests)
        one = OpenAIHTTPBackend(base_url=base, model="one-choice")
        assert one.generate("Describe a kite", 3) == [f"Describe a kite call {before + i + 1}" for i in range(3)]
        assert [r[2]["n"] for r in _Handler.requests[before:]] == [3, 2, 1]
        with pytest.raises(BackendError, match="unexpected response"):
            OpenAIHTTPBackend(base_url=base, model="no-content", retries=1).generate("x", 1)
        with pytest.raises(BackendError, match="HTTP 404"):
            OpenAIHTTPBackend(base_url=base, model="missing", retries=2, backoff=0).generate("x", 1)
        with pytest.raises(BackendError, match="failed"):
            OpenAIHTTPBackend(base_url="http://127.0.0.1:9/v1", model="m", retries=1, timeout=2).generate("x", 1)
        # the CLI drives the describer from a config
        cfg = tmp_path / "describe.py"
        cfg.write_text("custom_imports = dict(imports=['tagging'], allow_failed_imports=False)\n"
                       f"describer = dict(type='LLMTagDescriber', backend=dict(type='OpenAIHTTPBackend', "
                       f"base_url='{base}', model='tiny-llm'), samples_per_prompt=2, cache=None)\n")
        out = tmp_path / "tags.json"
        assert cli_main(["describe-tags", "red panda", "--out", str(out), "--config", str(cfg)]) == 0
        descs = read_descriptions(out)["red panda"]
        assert len(descs) == 11 and descs[0] == "a photo of a red panda."
    finally:
        httpd.shutdown()


def test_transformers_backend_with_tiny_local_model(tmp_path, bpe_files):
    from transformers import GPT2Config, GPT2LMHeadModel, GPT2Tokenizer

    tok = GPT2Tokenizer(bpe_files[0], bpe_files[1], unk_token="<|endoftext|>", bos_token="<|startoftext|>",
                        eos_token="<|endoftext|>")
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_positions=128, n_embd=16, n_layer=1, n_head=2))
    tok.save_pretrained(tmp_path / "lm")
    model.save_pretrained(tmp_path / "lm")
    b = DESCRIPTION_BACKENDS.build(dict(type="TransformersLMBackend", model=str(tmp_path / "lm"), max_tokens=5))
    outs = b.generate("What does a kite look like?", 3)
    assert len(outs) == 3 and all(isinstance(o, str) for o in outs)
    with pytest.raises(BackendError, match="nowhere"):
        TransformersLMBackend(model=str(tmp_path / "nowhere")).generate("x", 1)


def test_clip_encoder_matches_transformers_and_truncates_like_clip(encoder):
    texts = ["a photo of a kite.", "a red ball on the grass"]
    got = encoder.encode(texts)
    tok = encoder.tokenizer(texts, padding=True, return_tensors="pt")
    ref = encoder.model(**tok).text_embeds  # unpadded-length batch, HF's own pooling
    assert got.shape == (2, 512)
    torch.testing.assert_close(got, torch.nn.functional.normalize(ref, dim=-1), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got.norm(dim=-1), torch.ones(2))
    long = "word " * 200
    ids = encoder.tokenize([long])["input_ids"][0]
    assert len(ids) == 77 and ids[0] == encoder.tokenizer.bos_token_id and ids[-1] == encoder.tokenizer.eos_token_id
    # texts differing only after the cut embed identically
    a, b = encoder.encode([long + "cat", long + "dog"])
    torch.testing.assert_close(a, b)


def test_embed_file_layout_and_real_descriptions(encoder, shared_dir, tmp_path):
    real = read_descriptions(shared_dir / "data/ram_plus/openimages_rare_200_llm_tag_descriptions.json")
    assert len(real) == 200 and all(len(v) == 51 for v in real.values())
    first = next(iter(real))
    assert real[first][0] == f"a photo of a {first.lower()}."
    subset = dict(list(real.items())[:3])
    emb = TOOLS.build(dict(type="CLIPDescriptionEmbedder", encoder=encoder))
    out = tmp_path / "open.safetensors"
    emb.embed_to_file(subset, out)
    with safe_open(str(out), "pt") as f:
        meta = f.metadata()
        t = f.get_tensor("label_embed")
    assert meta["format"] == "openvocab-openset-v1" and json.loads(meta["tags"]) == list(subset)
    assert meta["descriptions_per_tag"] == "51" and t.shape == (153, 512)
    torch.testing.assert_close(t[51:102], encoder.encode(subset[list(subset)[1]]))  # class-major rows
    bad = dict(subset)
    bad["short"] = ["a photo of a short."]
    with pytest.raises(ValueError, match="fewer than 51"):
        emb.embed_to_file(bad, tmp_path / "bad.safetensors")


def test_read_descriptions_errors(tmp_path):
    p = tmp_path / "d.json"
    p.write_text('[{"kite": []}]')
    with pytest.raises(ValueError, match="kite"):
        read_descriptions(p)
    p.write_text("not json")
    with pytest.raises(ValueError, match="d.json"):
        read_descriptions(p)


def test_embed_tags_command(bpe_files, tmp_path):
    src = tmp_path / "tags.json"
    src.write_text(json.dumps([{"kite": ["a photo of a kite.", "a kite flies"]}, {"ball": ["a photo of a ball.", "round"]}]))
    cfg = tmp_path / "embed.py"
    cfg.write_text("custom_imports = dict(imports=['tagging'], allow_failed_imports=False)\n"
                   "embedder = dict(type='CLIPDescriptionEmbedder', encoder=dict(type='CLIPTextEncoder', "
                   f"variant='tiny', checkpoint=None, vocab={bpe_files[0]!r}, merges={bpe_files[1]!r}))\n")
    out = tmp_path / "tags.safetensors"
    assert cli_main(["embed-tags", str(src), "--out", str(out), "--config", str(cfg)]) == 0
    with safe_open(str(out), "pt") as f:
        assert f.get_tensor("label_embed").shape == (4, 512) and json.loads(f.metadata()["tags"]) == ["kite", "ball"]
    src.write_text("[1, 2]")
    assert cli_main(["embed-tags", str(src), "--out", str(out), "--config", str(cfg)]) == 2


def test_plain_prompt_and_recipe_match_the_official_file(shared_dir):
    from tagging.descriptions.prompts import SAMPLES_PER_PROMPT, plain_prompt

    real = read_descriptions(shared_dir / "data/ram_plus/openimages_rare_200_llm_tag_descriptions.json")
    assert all(descs[0] == plain_prompt(tag) for tag, descs in real.items())  # "a photo of a aerial ..."
    assert plain_prompt("Aerial photography") == "a photo of a aerial photography."
    assert {len(d) for d in real.values()} == {1 + len(DESCRIPTION_PROMPTS) * SAMPLES_PER_PROMPT} == {51}


def test_full_clip_checkpoint_converts_to_the_text_tower(bpe_files, tmp_path):
    """A ``CLIPModel`` state_dict (the layout of openai/clip-vit-base-patch16's file) loads strict
    into the text tower, and the encoder gives CLIP's own normalised text features."""
    from transformers import CLIPConfig, CLIPModel

    from tagging.descriptions.clip_text import WEIGHTS

    assert WEIGHTS["clip_vit_b_16"].hf_repo == "openai/clip-vit-base-patch16"
    tiny = CLIPTextEncoder(variant="tiny", checkpoint=None, vocab=bpe_files[0], merges=bpe_files[1]).setup()
    text_cfg = tiny.model.config.to_dict()
    full = CLIPModel(CLIPConfig(text_config=text_cfg, projection_dim=512,
                                vision_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                                   num_attention_heads=2, image_size=32, patch_size=16))).eval()
    sd = full.state_dict()
    assert any(k.startswith("vision_model.") for k in sd) and "logit_scale" in sd
    ckpt = tmp_path / "clip.bin"
    torch.save(sd, ckpt)
    enc = CLIPTextEncoder(variant="tiny", checkpoint=str(ckpt), vocab=bpe_files[0], merges=bpe_files[1]).setup()
    texts = ["a photo of a kite.", "a red ball"]
    tok = enc.tokenize(texts)
    with torch.no_grad():
        ref = full.get_text_features(input_ids=tok["input_ids"], attention_mask=tok["attention_mask"]).pooler_output
    torch.testing.assert_close(enc.encode(texts), torch.nn.functional.normalize(ref, dim=-1), atol=1e-5, rtol=1e-5)
    assert not torch.allclose(enc.encode(texts), tiny.encode(texts))  # the checkpoint was used


def test_described_and_embedded_tags_reach_the_tagger(encoder, tmp_path):
    """describe (fake LLM) -> embed (tiny CLIP) -> file -> RAM++ tagger open-set tags, both modes."""
    import numpy as np

    from openvocab.structures import TagSource
    from tagging.descriptions import OPENSET_FORMAT
    from tagging.ram_plus import RAMPlusTagger
    from tagging.recognize_anything.openset import FORMAT

    assert OPENSET_FORMAT == FORMAT
    descs = TOOLS.build(dict(type="LLMTagDescriber", backend=FakeBackend(), samples_per_prompt=2,
                             cache=None)).describe(["red panda", "kite", "fire escape"])
    path = tmp_path / "open.safetensors"
    TOOLS.build(dict(type="CLIPDescriptionEmbedder", encoder=encoder)).embed_to_file(descs, path)
    image = [np.random.default_rng(0).integers(0, 256, (50, 40, 3), dtype=np.uint8)]
    for mode in ("add", "replace"):
        tagger = RAMPlusTagger(variant="tiny", checkpoint=None, openset=str(path), openset_mode=mode,
                               openset_threshold=0.0, openset_thresholds={"kite": 1.0})
        tags = tagger.tag(image)[0]
        opened = [t.name for t in tags if t.source == TagSource.OPEN_SET]
        assert sorted(opened) == ["fire escape", "red panda"]  # kite's threshold 1.0 cannot be passed
        closed_logits, open_logits = tagger.logits(image)
        assert open_logits.shape == (1, 3)
        if mode == "add":
            assert closed_logits.shape == (1, 30)  # beside the closed set
        else:
            assert closed_logits is None and len(tags) == 2  # instead of it
