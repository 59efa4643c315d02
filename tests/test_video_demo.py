"""The demo's Video tab without the page (demo/video.py): a clip labeled by the job, the overlay MP4 and the MOT /
COCO video downloads; modes and frame rates only from the page's own choices."""
from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import pytest

import av  # noqa: E402,F401  (test dependencies: ./install.sh --test installs them; never skipped)
import trackers  # noqa: E402,F401

import video_synth  # noqa: E402
from openvocab.demo import logic, video  # noqa: E402
from test_video_tracking import shapes_config  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = Path(__file__).parent / "plugins"


@pytest.fixture(autouse=True)
def _plugin_path(monkeypatch):
    monkeypatch.syspath_prepend(str(PLUGINS))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(PLUGINS), str(ROOT)]))


def test_video_tab_labels_a_clip_and_offers_mot_and_coco(tmp_path):
    import av

    clip = tmp_path / "clip.mp4"
    video_synth.tracking_video(clip, cut=10, total=16)
    cache = logic.LabelerCache()
    settings = logic.Settings(config=shapes_config(tmp_path), stages=())
    out = video.run_video(cache, str(clip), settings, "bytetrack", 0, "circle, square, triangle", out_root=tmp_path)
    assert out.status.startswith("clip.mp4: 16 frames"), out.status
    with av.open(out.overlay) as c:
        assert sum(1 for _ in c.decode(c.streams.video[0])) == 16
    mot, coco = out.files
    with zipfile.ZipFile(mot) as z:
        assert "clip/gt/gt.txt" in z.namelist() and "clip/seqinfo.ini" in z.namelist()
    assert len(json.loads(Path(coco).read_text())["videos"]) == 1
    labeler = cache.get(settings)
    assert labeler.pipeline.vocabulary == ["object"]  # the run's vocabulary did not stay in the cached labeler
    again = video.run_video(cache, str(clip), settings, "bytetrack", 5, "circle", out_root=tmp_path)
    assert again.status.startswith("clip.mp4: 4 frames"), again.status  # 16 frames at 25 fps, 5 per second


@pytest.mark.parametrize("mode, fps, words", [("os.system", 0, "mode must be one of"), ("sam2", "1e9", "frames per "
                                              "second"), ("bytetrack", "nan", "frames per second")])
def test_video_tab_takes_only_its_own_choices(tmp_path, mode, fps, words):
    clip = tmp_path / "clip.mp4"
    video_synth.tracking_video(clip, cut=2, total=4)
    out = video.run_video(logic.LabelerCache(), str(clip), logic.Settings(config=shapes_config(tmp_path), stages=()),
                          mode, fps, "circle", out_root=tmp_path)
    assert out.status.startswith("**Error:**") and words in out.status and out.overlay is None


def test_video_tab_says_what_is_wrong_with_a_clip(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all")
    out = video.run_video(logic.LabelerCache(), str(bad), logic.Settings(config=shapes_config(tmp_path), stages=()),
                          "bytetrack", 0, "circle", out_root=tmp_path)
    assert out.status.startswith("**Error:** bad.mp4: not a readable video"), out.status


def test_the_page_has_the_video_tab():
    import gradio  # noqa: F401
    from openvocab.demo.app import VIDEO_TYPES, build_app

    app = build_app("tiny_random")
    ids = {getattr(b, "elem_id", None) for b in app.blocks.values()}
    assert {"ov-tab-video", "ov-v-upload", "ov-v-mode", "ov-v-result", "ov-dl-mot", "ov-dl-coco-video"} <= ids
    upload = next(b for b in app.blocks.values() if getattr(b, "elem_id", None) == "ov-v-upload")
    assert upload.file_types == VIDEO_TYPES == ["video"]
    mode = next(b for b in app.blocks.values() if getattr(b, "elem_id", None) == "ov-v-mode")
    assert [c[0] for c in mode.choices] == list(video.MODES)
