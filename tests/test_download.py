"""openvocab download: every file of a config into one folder (sha256, manifest), then offline runs with
--checkpoint-dir; the offline error names a URL for every file the pipeline needs."""
from __future__ import annotations

import dataclasses
import hashlib
import http.server
import json
import threading
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from openvocab import hub
from openvocab.cli import main

PLUGINS = Path(__file__).parent / "plugins"
WEIGHTS = b"toy weights " * 5000


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def env(tmp_path, monkeypatch):
    """Empty caches, the toy plugin importable, a local 'hub' serving the toy tagger's weights."""
    monkeypatch.syspath_prepend(str(PLUGINS))
    monkeypatch.setenv(hub.ENV_CACHE, str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv(hub.ENV_CHECKPOINT_DIR, raising=False)
    hub.set_checkpoint_dirs([])
    www = tmp_path / "www"
    (www / "toy-org" / "toy-tagger" / "resolve" / "main").mkdir(parents=True)
    (www / "toy-org" / "toy-tagger" / "resolve" / "main" / "toy_tagger_weights.pth").write_bytes(WEIGHTS)
    handler = partial(_QuietHandler, directory=str(www))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{httpd.server_address[1]}")
    cfg = tmp_path / "toy_weights.py"
    cfg.write_text((PLUGINS / "toy_pipeline.py").read_text().replace(
        "threshold=127.0", "threshold=127.0, checkpoint='toy_weights'"))
    img = tmp_path / "imgs"
    img.mkdir()
    Image.fromarray(np.full((16, 16, 3), 200, np.uint8)).save(img / "a.png")
    yield tmp_path, str(cfg), img, httpd
    httpd.shutdown()
    hub.set_checkpoint_dirs([])


def test_download_then_run_offline(env, monkeypatch, capsys):
    tmp_path, cfg, img, httpd = env
    import toy_plugin

    digest = hashlib.sha256(WEIGHTS).hexdigest()
    monkeypatch.setitem(toy_plugin.WEIGHTS, "toy_weights",
                        dataclasses.replace(toy_plugin.WEIGHTS["toy_weights"], sha256=digest))
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    dest = tmp_path / "carry"
    assert main(["download", "--config", cfg, "--to", str(dest), "--no-progress"]) == 0
    assert (dest / "toy_tagger_weights.pth").read_bytes() == WEIGHTS
    manifest = json.loads((dest / "manifest.json").read_text())
    (entry,) = manifest["files"]
    assert entry["file"] == "toy_tagger_weights.pth" and entry["sha256"] == digest and entry["sha256_published"]
    assert entry["bytes"] == len(WEIGHTS) and entry["urls"][0].endswith("/toy-org/toy-tagger/resolve/main/"
                                                                         "toy_tagger_weights.pth")
    assert (dest / "SHA256SUMS").read_text() == f"{digest}  toy_tagger_weights.pth\n"
    # the air-gapped machine: no network, the carried folder
    httpd.shutdown()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    capsys.readouterr()
    assert main(["label", str(img), "--config", cfg, "--out", str(tmp_path / "o1"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "toy_tagger_weights.pth" in err and "/toy-org/toy-tagger/resolve/main/toy_tagger_weights.pth" in err
    assert main(["label", str(img), "--config", cfg, "--out", str(tmp_path / "o2"), "--no-progress",
                 "--checkpoint-dir", str(dest)]) == 0
    # downloading again needs no network: the file is there and checks out
    assert main(["download", "--config", cfg, "--to", str(dest), "--no-progress"]) == 0


def test_download_refuses_a_file_with_another_sha256(env, monkeypatch, capsys):
    tmp_path, cfg, img, _ = env
    import toy_plugin

    monkeypatch.setitem(toy_plugin.WEIGHTS, "toy_weights",
                        dataclasses.replace(toy_plugin.WEIGHTS["toy_weights"], sha256="0" * 64))
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    assert main(["download", "--config", cfg, "--to", str(tmp_path / "carry"), "--no-progress"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and "sha256" in err[0] and "discarded" in err[0]  # the file's failure, then the summary
    assert "1 of 1 files/repositories could not be fetched" in err[1] and "toy_tagger_weights.pth" in err[1]
    assert not (tmp_path / "carry" / "toy_tagger_weights.pth").exists()
    assert not list((tmp_path / "carry").glob(".*part"))


def test_offline_error_names_a_url_for_every_file_of_the_default_pipeline(env, monkeypatch, capsys):
    tmp_path, _, img, _ = env
    from openvocab.cli import load_config
    from openvocab.build import build_pipeline

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    files = build_pipeline(load_config("full_pipeline")).remote_files()
    assert len(files) == 9 and all(f.urls for f in files)
    assert main(["label", str(img), "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    needs = err.split("This pipeline needs:")[1]
    for f in files:
        assert f"{f.filename}: {f.urls[0]}" in needs
    assert "openvocab download --config" in needs and "Traceback" not in err
    # and download says what it cannot get, offline
    assert main(["download", "--to", str(tmp_path / "carry"), "--no-progress"]) == 2
    assert "ram_plus_swin_large_14m.pth" in capsys.readouterr().err


def test_download_carries_whole_model_repositories(env, hf_models, monkeypatch, capsys):
    """A transformers backend (OWLv2) needs a whole hub repository: download puts it in DEST/org/name (the
    hub itself is out of reach here: ``snapshot_download`` hands out a tiny model folder as the 'hub'),
    lists its files in the manifest, and the offline run finds it with --checkpoint-dir."""
    import shutil

    import huggingface_hub

    tmp_path, _, img, _ = env
    calls = []

    def hub_snapshot(repo, *, revision=None, allow_patterns=None, local_files_only=False, local_dir=None, **kw):
        calls.append((repo, local_files_only, local_dir))
        if local_files_only:  # nothing in this test's (empty) Hugging Face cache
            raise huggingface_hub.errors.LocalEntryNotFoundError("not cached")
        shutil.copytree(hf_models["owlv2"], local_dir, dirs_exist_ok=True)
        return local_dir

    monkeypatch.setattr(huggingface_hub, "snapshot_download", hub_snapshot)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    dest = tmp_path / "carry"
    assert main(["download", "--config", "detect_owlv2", "--to", str(dest), "--no-progress"]) == 0
    folder = dest / "google" / "owlv2-base-patch16-ensemble"
    assert [c[0] for c in calls] == ["google/owlv2-base-patch16-ensemble"] * 2 and calls[1][2] == str(folder)
    manifest = json.loads((dest / "manifest.json").read_text())
    listed = {e["file"] for e in manifest["files"]}
    on_disk = {p.relative_to(dest).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert listed == on_disk and "google/owlv2-base-patch16-ensemble/config.json" in listed
    sums = (dest / "SHA256SUMS").read_text().splitlines()
    assert len(sums) == len(listed) and all(
        hashlib.sha256((dest / line.split("  ", 1)[1]).read_bytes()).hexdigest() == line.split("  ", 1)[0]
        for line in sums)
    assert all(e["urls"][0].endswith("/google/owlv2-base-patch16-ensemble") for e in manifest["files"])

    # offline: without the folder the job names the repository; with --checkpoint-dir it labels
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    small = tmp_path / "small"
    small.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(small / "s.png")
    capsys.readouterr()
    assert main(["label", str(small), "--config", "detect_owlv2", "--vocab", "cat, dog", "--out",
                 str(tmp_path / "o1"), "--no-progress"]) == 2
    assert "google/owlv2-base-patch16-ensemble" in capsys.readouterr().err
    assert main(["label", str(small), "--config", "detect_owlv2", "--vocab", "cat, dog", "--out",
                 str(tmp_path / "o2"), "--no-progress", "--checkpoint-dir", str(dest)]) == 0
    assert json.loads((tmp_path / "o2" / "coco.json").read_text())["images"][0]["file_name"] == "s.png"
    # a second download finds everything in place (no hub call at all)
    calls.clear()
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    assert main(["download", "--config", "detect_owlv2", "--to", str(dest), "--no-progress"]) == 0
    assert calls == []


def test_download_fetches_every_file_it_can_and_lists_the_failures(env, monkeypatch, capsys):
    from openvocab.download import IncompleteDownload, download_files

    tmp_path, _, _, httpd = env
    base = f"http://127.0.0.1:{httpd.server_address[1]}/toy-org/toy-tagger/resolve/main/"
    www = tmp_path / "www" / "toy-org" / "toy-tagger" / "resolve" / "main"
    (www / "second.bin").write_bytes(b"second")
    specs = [hub.RemoteFile("gone.bin", url=base + "gone.bin"), hub.RemoteFile("toy_tagger_weights.pth", url=base +
             "toy_tagger_weights.pth"), hub.RemoteFile("bad.bin", url=base + "second.bin", sha256="0" * 64),
             hub.RemoteFile("second.bin", url=base + "second.bin")]
    dest = tmp_path / "carry"
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    with pytest.raises(IncompleteDownload) as e:
        download_files(specs, dest, progress=False, config="x")
    assert "2 of 4 files/repositories could not be fetched" in str(e.value) and "gone.bin, bad.bin" in str(e.value)
    err = capsys.readouterr().err
    assert "gone.bin: download failed" in err and "bad.bin: sha256" in err  # each failure named as it happens
    assert (dest / "toy_tagger_weights.pth").read_bytes() == WEIGHTS and (dest / "second.bin").read_bytes() == b"second"
    assert not (dest / "gone.bin").exists() and not (dest / "bad.bin").exists()
    manifest = json.loads((dest / "manifest.json").read_text())
    assert [f["file"] for f in manifest["files"]] == ["toy_tagger_weights.pth", "second.bin"]
