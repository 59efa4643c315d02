import hashlib
import http.server
import os
import threading
from functools import partial
from pathlib import Path

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


# --- sha256 of what was received, never of what a name or a server claims ---------------------------------

WEIGHTS = b"the published weights" * 100
WEIGHTS_SHA = hashlib.sha256(WEIGHTS).hexdigest()


class FakeHub(http.server.BaseHTTPRequestHandler):
    """A Hugging Face ``resolve`` endpoint: announces ``etag`` (as the hub does: the LFS sha256) and
    sends ``body``, whatever it is."""

    etag = WEIGHTS_SHA
    body = b""

    def _head(self):
        self.send_response(200)
        self.send_header("X-Repo-Commit", "0123456789abcdef0123456789abcdef01234567")
        self.send_header("ETag", f'"{self.etag}"')
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()

    def do_HEAD(self):
        self._head()

    def do_GET(self):
        self._head()
        self.wfile.write(self.body)

    def log_message(self, *a):
        pass


def _serve(handler):
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}"


def test_hf_download_is_hashed_not_trusted_by_etag_and_junk_is_removed(tmp_path):
    """huggingface_hub stores a download as ``blobs/<ETag>``: a server announcing the published sha256
    as ETag but sending junk must not get it accepted, and the junk must leave the cache."""
    import subprocess
    import sys

    FakeHub.body = b"junk, not the weights"
    httpd, url = _serve(FakeHub)
    env = dict(os.environ, HF_ENDPOINT=url, HF_HUB_OFFLINE="0", HF_HUB_CACHE=str(tmp_path / "hf"),
               OPENVOCAB_CACHE=str(tmp_path / "ov"), HF_HUB_DISABLE_TELEMETRY="1")
    env.pop(hub.ENV_CHECKPOINT_DIR, None)
    code = ("from openvocab import hub\n"
            f"spec = hub.RemoteFile('w.pth', hf_repo='org/model', sha256='{WEIGHTS_SHA}')\n"
            "try:\n    print('OK', hub.resolve(spec))\n"
            "except hub.MissingFileError as e:\n    print('REFUSED', e)\n")
    run = lambda: subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,  # noqa: E731
                                 cwd=Path(__file__).resolve().parents[1], timeout=120)
    try:
        out = run()
        assert out.stdout.startswith("REFUSED"), out.stdout + out.stderr
        msg = out.stdout
        assert "w.pth" in msg and f"sha256 {hashlib.sha256(FakeHub.body).hexdigest()}" in msg
        assert f"expected {WEIGHTS_SHA}" in msg and "removed from the Hugging Face cache" in msg
        repo = tmp_path / "hf" / "models--org--model"
        assert list((repo / "blobs").iterdir()) == []  # the junk blob is gone ...
        assert not [p for p in (repo / "snapshots").rglob("*") if p.is_symlink() or p.is_file()]  # ... and its link
        FakeHub.body = WEIGHTS  # the right file: accepted
        out = run()
        assert out.stdout.startswith("OK"), out.stdout + out.stderr
        assert Path(out.stdout.split(" ", 1)[1].strip()).read_bytes() == WEIGHTS
    finally:
        httpd.shutdown()


@pytest.fixture
def fake_hf(tmp_path, monkeypatch):
    """``hf_hub_download`` replaced by the HF cache layout: ``snapshots/<rev>/<file>`` -> ``blobs/<name>``."""
    import huggingface_hub

    state = {"blob": WEIGHTS_SHA, "content": WEIGHTS}
    blobs = tmp_path / "hf" / "blobs"

    def fake_download(repo, filename, local_files_only=False):
        blobs.mkdir(parents=True, exist_ok=True)
        blob = blobs / state["blob"]
        if not blob.exists():
            blob.write_bytes(state["content"])
        link = tmp_path / "hf" / "snapshots" / "rev" / filename
        link.parent.mkdir(parents=True, exist_ok=True)
        if not os.path.lexists(link):
            link.symlink_to(blob)
        return str(link)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    return state, blobs


@pytest.fixture
def hash_calls(monkeypatch):
    from openvocab import fileio

    calls = []
    real = fileio.sha256sum

    def counting(path, *a, **k):
        calls.append(os.path.realpath(path))
        return real(path, *a, **k)

    monkeypatch.setattr(fileio, "sha256sum", counting)
    return calls


def test_hf_cache_file_hashed_once_then_remembered(cache, fake_hf, hash_calls):
    state, blobs = fake_hf
    spec = hub.RemoteFile("w.pth", hf_repo="org/model", sha256=WEIGHTS_SHA)
    path = hub.resolve(spec)
    assert path.read_bytes() == WEIGHTS and hash_calls == [str(blobs / WEIGHTS_SHA)]
    assert hub.resolve(spec) == path and len(hash_calls) == 1  # remembered: (size, mtime_ns, inode) unchanged
    st = os.stat(blobs / WEIGHTS_SHA)
    os.utime(blobs / WEIGHTS_SHA, ns=(st.st_atime_ns, st.st_mtime_ns + 1000))
    assert hub.resolve(spec) == path and len(hash_calls) == 2  # touched: hashed again


def test_hf_cache_junk_under_the_published_name_is_refused_and_removed(cache, fake_hf):
    state, blobs = fake_hf
    state["content"] = b"junk"  # stored as blobs/<published sha256>, as a lying ETag would have it
    spec = hub.RemoteFile("w.pth", hf_repo="org/model", sha256=WEIGHTS_SHA)
    with pytest.raises(hub.MissingFileError, match=f"expected {WEIGHTS_SHA}: refused, and removed") as e:
        hub.resolve(spec)
    assert "\n" not in str(e.value)
    assert not (blobs / WEIGHTS_SHA).exists() and not os.path.lexists(blobs.parent / "snapshots" / "rev" / "w.pth")
    state["content"] = WEIGHTS  # a later, honest download is accepted
    assert hub.resolve(spec).read_bytes() == WEIGHTS


def test_own_cache_hit_is_checked_and_a_bad_copy_replaced(cache, server, monkeypatch, hash_calls):
    url, digest = server
    spec = hub.RemoteFile("w.bin", url=f"{url}/w.bin", sha256=digest)
    cache.mkdir(parents=True)
    (cache / "w.bin").write_bytes(b"damaged")  # e.g. left by an interrupted copy of an older version
    with pytest.raises(hub.MissingFileError, match=r"cached copy .*w\.bin had sha256 .* and was removed"):
        hub.resolve(spec)  # offline (conftest): cannot download again
    assert not (cache / "w.bin").exists()
    (cache / "w.bin").write_bytes(b"damaged")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    path = hub.resolve(spec)  # removed and downloaded again
    assert path.read_bytes() == b"weights" * 1000
    n = len(hash_calls)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hub.resolve(spec) == path and len(hash_calls) == n  # the download's own hash was remembered


def test_checkpoint_dir_file_with_wrong_sha256_is_refused_not_deleted(cache, tmp_path):
    d = tmp_path / "ckpts"
    d.mkdir()
    (d / "w.pth").write_bytes(b"truncated")
    spec = hub.RemoteFile("w.pth", url="http://127.0.0.1:9/w.pth", sha256=WEIGHTS_SHA)
    hub.set_checkpoint_dirs([d])
    with pytest.raises(hub.MissingFileError, match=r"ckpts/w\.pth' has sha256 .* published 'w\.pth'"):
        hub.resolve(spec)
    assert (d / "w.pth").read_bytes() == b"truncated"
    (d / "w.pth").write_bytes(WEIGHTS)
    assert hub.resolve(spec) == d / "w.pth"


def test_copy_into_cache_is_atomic_and_checked(cache, tmp_path, hash_calls):
    spec = hub.RemoteFile("w.pth", url="http://127.0.0.1:9/w.pth", sha256=WEIGHTS_SHA)
    good, bad = tmp_path / "good.pth", tmp_path / "bad.pth"
    good.write_bytes(WEIGHTS)
    bad.write_bytes(b"x" * len(WEIGHTS))
    dest = hub.copy_into_cache(good, spec)
    assert dest == cache / "w.pth" and dest.read_bytes() == WEIGHTS
    with pytest.raises(hub.MissingFileError, match="not copied"):
        hub.copy_into_cache(bad, spec)
    assert dest.read_bytes() == WEIGHTS  # the cached file was never touched
    assert sorted(p.name for p in cache.iterdir()) == ["verified-sha256.json", "w.pth"]  # no temp left
    assert hub.resolve(spec) == dest and hash_calls == []  # hashed while copying, remembered


def test_atomic_open_leaves_the_old_file_when_interrupted(tmp_path):
    from openvocab.fileio import atomic_open

    dest = tmp_path / "f.bin"
    dest.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_open(dest) as f:
            f.write(b"new, half")
            raise RuntimeError("killed")
    assert dest.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["f.bin"]
    with atomic_open(dest) as f:
        f.write(b"new")
    assert dest.read_bytes() == b"new"


class _Truncating(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        self.wfile.write(b"only a part")

    def log_message(self, *a):
        pass


def test_truncated_download_is_discarded(cache, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    httpd, url = _serve(_Truncating)
    try:
        with pytest.raises(hub.MissingFileError, match="stopped after 11 of 1000 bytes"):
            hub.resolve(hub.RemoteFile("t.bin", url=f"{url}/t.bin"))  # no sha256 published: the size decides
    finally:
        httpd.shutdown()
    assert not (cache / "t.bin").exists() and not list(cache.glob(".t.bin*"))
