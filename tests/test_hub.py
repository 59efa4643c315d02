import hashlib
import http.server
import threading
from functools import partial

import pytest
import torch

from openvocab import hub
from openvocab.checkpoint import CheckpointError, load_strict, read_state_dict


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(hub.ENV_CACHE, str(tmp_path / "cache"))
    monkeypatch.delenv(hub.ENV_CHECKPOINT_DIR, raising=False)
    hub.set_checkpoint_dirs([])
    yield tmp_path / "cache"
    hub.set_checkpoint_dirs([])


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    (root / "w.bin").write_bytes(b"weights" * 1000)
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", hashlib.sha256(b"weights" * 1000).hexdigest()
    httpd.shutdown()


def test_download_checks_sha256_and_caches(cache, server, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    url, digest = server
    spec = hub.RemoteFile("w.bin", url=f"{url}/w.bin", sha256=digest)
    path = hub.resolve(spec)
    assert path == cache / "w.bin" and path.read_bytes() == b"weights" * 1000
    bad = hub.RemoteFile("w2.bin", url=f"{url}/w.bin", sha256="0" * 64)
    with pytest.raises(hub.MissingFileError, match="sha256"):
        hub.resolve(bad)
    assert not (cache / "w2.bin").exists() and not list(cache.glob(".w2.bin*"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # cached now: no network needed
    assert hub.resolve(spec) == path


def test_missing_file_message_names_file_source_and_fix(cache, tmp_path):
    spec = hub.RemoteFile("ram_plus_swin_large_14m.pth", hf_repo="xinyu1205/recognize-anything-plus-model",
                          description="RAM++ Swin-L")
    with pytest.raises(hub.MissingFileError) as e:
        hub.resolve(spec)
    msg = str(e.value)
    for part in ("ram_plus_swin_large_14m.pth", "huggingface.co/xinyu1205/recognize-anything-plus-model",
                 "--checkpoint-dir", hub.ENV_CHECKPOINT_DIR):
        assert part in msg


def test_checkpoint_dirs_come_first(cache, tmp_path, monkeypatch):
    d1, d2 = tmp_path / "a", tmp_path / "b"
    d1.mkdir(), d2.mkdir()
    (d2 / "m.pth").write_bytes(b"x")
    monkeypatch.setenv(hub.ENV_CHECKPOINT_DIR, str(d2))
    spec = hub.RemoteFile("m.pth", url="http://127.0.0.1:9/never")
    assert hub.resolve(spec) == d2 / "m.pth"
    (d1 / "m.pth").write_bytes(b"y")
    hub.set_checkpoint_dirs([d1])
    assert hub.resolve(spec) == d1 / "m.pth"
    assert hub.resolve(str(d1 / "m.pth")) == d1 / "m.pth"
    with pytest.raises(hub.MissingFileError, match="nope.pth"):
        hub.resolve(str(tmp_path / "nope.pth"))


def test_read_state_dict_weights_only_and_strict_message(tmp_path):
    model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1))
    torch.save({"model": model.state_dict()}, tmp_path / "ok.pth")
    sd = read_state_dict(tmp_path / "ok.pth", key="model")
    load_strict(model, sd)
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp_path / "ok.safetensors"))
    assert set(read_state_dict(tmp_path / "ok.safetensors")) == set(sd)
    bad = dict(sd)
    bad.pop("0.bias")
    bad["extra.weight"] = torch.zeros(1)
    bad["2.weight"] = torch.zeros(5, 5)
    with pytest.raises(CheckpointError) as e:
        load_strict(model, bad, source="bad.pth")
    msg = str(e.value)
    assert "bad.pth" in msg and "0.bias" in msg and "extra.weight" in msg and "2.weight" in msg

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"model": Evil()}, tmp_path / "evil.pth")
    with pytest.raises(CheckpointError, match="evil.pth"):
        read_state_dict(tmp_path / "evil.pth")


def test_read_state_dict_official_training_checkpoint_layout(tmp_path):
    """DETR/DINO-style releases save optimizer state and ``args`` (argparse.Namespace) beside the
    weights: safe loading reads them; any other Python object is refused with its type named."""
    import argparse

    model = torch.nn.Linear(2, 3)
    opt = torch.optim.AdamW(model.parameters())
    model(torch.ones(1, 2)).sum().backward()
    opt.step()
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 11,
                "args": argparse.Namespace(lr=1e-4, backbone="swin_T_224_1k", dn_labelbook_size=2000)},
               tmp_path / "release.pth")
    sd = read_state_dict(tmp_path / "release.pth", key="model")
    assert set(sd) == {"weight", "bias"} and torch.equal(sd["weight"], model.weight.detach())

    torch.save({"model": model.state_dict(), "cfg": TrainConfig()}, tmp_path / "odd.pth")
    with pytest.raises(CheckpointError, match=r"odd\.pth.*Config.*weights_only=True"):
        read_state_dict(tmp_path / "odd.pth", key="model")


class TrainConfig:
    """A class torch's safe loader does not know (as a training script's config object)."""
