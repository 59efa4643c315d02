"""Model repositories (transformers models) are found like single checkpoints: a folder, the checkpoint dirs, the
Hugging Face cache; offline, a missing one is one message naming the repository and the fix."""
from __future__ import annotations

import pytest

from openvocab import hub


@pytest.fixture
def dirs(tmp_path, monkeypatch):
    monkeypatch.setenv(hub.ENV_CACHE, str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))  # an empty Hugging Face cache
    monkeypatch.delenv(hub.ENV_CHECKPOINT_DIR, raising=False)
    hub.set_checkpoint_dirs([])
    yield tmp_path
    hub.set_checkpoint_dirs([])


def _model(folder):
    folder.mkdir(parents=True)
    (folder / "config.json").write_text('{"model_type": "owlv2"}')
    (folder / "model.safetensors").write_bytes(b"w" * 10)
    (folder / "preprocessor_config.json").write_text("{}")
    return folder


def test_a_folder_is_used_as_is_and_its_weights_are_recorded(dirs):
    folder = _model(dirs / "my_owl")
    with hub.recording() as found:
        assert hub.resolve_repo(str(folder)) == folder
    assert sorted(p.name for _, p in found) == ["config.json", "model.safetensors"]


@pytest.mark.parametrize("layout", ["org/name", "org--name", "name"])
def test_checkpoint_dirs_hold_repositories(dirs, layout):
    folder = _model(dirs / "ckpt" / layout)
    hub.set_checkpoint_dirs([dirs / "ckpt"])
    assert hub.resolve_repo("org/name") == folder


def test_missing_repository_offline_names_it_and_the_fix(dirs):
    with pytest.raises(hub.MissingFileError) as e:
        hub.resolve_repo("google/owlv2-base-patch16-ensemble", description="OWLv2")
    msg = str(e.value)
    for part in ("google/owlv2-base-patch16-ensemble", "OWLv2", "HF_HUB_OFFLINE",
                 "https://huggingface.co/google/owlv2-base-patch16-ensemble", "--checkpoint-dir",
                 hub.ENV_CHECKPOINT_DIR, "FOLDER/google/owlv2-base-patch16-ensemble"):
        assert part in msg


def test_a_path_that_is_not_a_model_folder_is_named(dirs):
    (dirs / "empty").mkdir()
    with pytest.raises(hub.MissingFileError, match="no config.json"):
        hub.resolve_repo(str(dirs / "empty"))
