"""Overrides set values, never code: a ``type`` names a registered component only, ``--cfg-options`` cannot import,
and a misspelled key fails with one line naming the closest known ones. A child config's ``custom_imports`` add to
its base's."""
from __future__ import annotations

from pathlib import Path

import pytest

from openvocab.cli import main
from openvocab.config import load_config
from openvocab.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
IMG = str(ROOT / "demo" / "images" / "shapes_1.jpg")
PLUGINS = Path(__file__).parent / "plugins"


@pytest.fixture(autouse=True)
def _plugin_path(monkeypatch):
    monkeypatch.syspath_prepend(str(PLUGINS))


def _run(argv, capsys) -> tuple[int, str]:
    try:
        rc = main(argv)
    except SystemExit as e:
        rc = e.code
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return rc, lines[0]


@pytest.mark.parametrize("stage", ["boxable_filter", "tagger", "detector"])
def test_a_type_naming_a_python_callable_is_refused_and_never_runs(tmp_path, capsys, stage):
    marker = tmp_path / "PWNED"
    rc, line = _run(["label", IMG, "--config", "tiny_random", "--out", str(tmp_path / "out"), "--no-progress",
                     "--cfg-options", f"{stage}._delete_=True", f"{stage}.type=os.system",
                     f"{stage}.command=touch {marker}"], capsys)
    assert rc == 2 and f"{stage}.type=os.system: not a registered component" in line
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_the_registries_never_import_what_a_name_points_to(tmp_path):
    import tagging  # noqa: F401  (registers the taggers)
    from openvocab.registry import DETECTORS, TAGGERS, UnknownTypeError

    marker = tmp_path / "PWNED"
    for name in ("os.system", "subprocess.getoutput", "builtins.exec", "mmengine.registry"):
        assert TAGGERS.get(name) is None
        with pytest.raises(UnknownTypeError):
            DETECTORS.build({"type": name, "command": f"touch {marker}"})
    with pytest.raises(UnknownTypeError, match="_scope_"):  # another registry tree would import again
        DETECTORS.build({"type": "GroundingDINODetector", "_scope_": "mmengine"})
    assert TAGGERS.get("RAMPlusTagger").__name__ == "RAMPlusTagger"
    assert TAGGERS.get("openvocab.RAMPlusTagger").__name__ == "RAMPlusTagger"
    with pytest.raises(UnknownTypeError, match="did you mean GroundingDINODetector"):
        DETECTORS.build({"type": "GroundingDinoDetector"})
    assert not marker.exists()


@pytest.mark.parametrize("argv,part", [
    (["label", IMG, "--config", "tiny_random", "--out", "{out}", "--cfg-options", "detectr.box_threshold=0.9"],
     "has no entry 'detectr'; closest: detector"),
    (["label", IMG, "--config", "tiny_random", "--out", "{out}", "--cfg-options", "detector.box_treshold=0.9"],
     "GroundingDINODetector takes no argument 'box_treshold'; closest: box_threshold"),
    (["label", IMG, "--config", "tiny_random", "--out", "{out}", "--cfg-options", "custom_imports.imports=[os]"],
     "custom_imports cannot be set by an override"),
    (["label", IMG, "--config", "tiny_random", "--out", "{out}", "--cfg-options", "_base_=x.py"],
     "_base_ cannot be set by an override"),
    (["label", IMG, "--config", "tiny_random", "--out", "{out}", "--cfg-options", "mask_head.concepts.text_encoder=x",
      "mask_head.variantt=tiny"], "TAPMaskHead takes no argument 'variantt'; closest: variant"),
    (["tag", IMG, "--config", "tiny_random", "--cfg-options", "taggr.threshold=0.5"], "closest: tagger"),
    (["train", "train/tagger_tiny", "--cfg-options", "optim_wrapper.optimizer._scope_=mmengine"],
     "_scope_ cannot be set by an override"),
    (["train", "train/tagger_tiny", "--cfg-options", "optim_wrapper.optimizer.type=os.system"],
     "not a registered component"),
    (["download", "--config", "tiny_random", "--cfg-options", "detector.type=builtins.exec"],
     "not a registered component"),
])
def test_overrides_that_import_or_are_misspelled_are_one_line(tmp_path, capsys, argv, part):
    rc, line = _run([a.replace("{out}", str(tmp_path / "out")) for a in argv], capsys)
    assert rc == 2 and part in line, line
    assert not (tmp_path / "out").exists()


def test_the_python_api_and_the_demo_options_go_through_the_same_checks():
    from openvocab import Labeler

    with pytest.raises(UserError, match="has no entry 'detectr'"):
        Labeler.from_config("tiny_random", options={"detectr.box_threshold": 0.3})
    with pytest.raises(UserError, match="not a registered component"):
        Labeler.from_config("tiny_random", options={"tagger.type": "os.system"})
    labeler = Labeler.from_config("tiny_random", options={"detector.box_threshold": 0.3})
    assert labeler.pipeline.detector.box_threshold == 0.3


def test_known_overrides_still_work():
    cfg = load_config("tiny_random", ["detector.box_threshold=0.2", "writers.labelme.epsilon=2.0",
                                      "stuff_segmenter.type=CLIPSegSegmenter", "vocabulary=[cat,dog]"])
    assert cfg.detector.box_threshold == 0.2 and cfg.writers.labelme.epsilon == 2.0
    assert cfg.stuff_segmenter.type == "CLIPSegSegmenter" and list(cfg.vocabulary) == ["cat", "dog"]


def test_a_child_configs_custom_imports_add_to_its_bases(tmp_path):
    """A plugin config that lists only its own package still gets the base's tagger (mmengine would replace
    the list, and RAMPlusTagger would not be registered in a fresh process)."""
    import subprocess
    import sys

    child = tmp_path / "mine.py"
    child.write_text(f"_base_ = '{ROOT / 'configs' / 'tiny_random.py'}'\n"
                     "custom_imports = dict(imports=['toy_plugin'], allow_failed_imports=False)\n"
                     "detector = dict(type='CentreBoxDetector')\n")
    code = ("from openvocab.config import load_config\nfrom openvocab.build import build_pipeline\n"
            f"cfg = load_config({str(child)!r})\n"
            "print(sorted(cfg.custom_imports['imports']))\n"
            "p = build_pipeline(cfg)\nprint(type(p.tagger).__name__, type(p.detector).__name__)\n")
    env = {"PYTHONPATH": f"{PLUGINS}:{ROOT}", "PATH": "/usr/bin:/bin"}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split("\n")[:2] == ["['grounding', 'tagging', 'toy_plugin']", "RAMPlusTagger CentreBoxDetector"]
