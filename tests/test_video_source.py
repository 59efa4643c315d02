"""Reading videos (openvocab.video.source): what is a video (by content), rotation, sampling by timestamps or
stride, bad files, and scene cuts."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import av  # noqa: E402,F401  (a test dependency: never skipped)

import video_synth  # noqa: E402
from openvocab.inputs import collect_inputs  # noqa: E402
from openvocab.video.scenes import SceneCutDetector  # noqa: E402
from openvocab.video.source import Sampling, VideoLoadError, VideoSource, is_video_file, sniff  # noqa: E402


def _numbered(n: int, size=(48, 32)) -> list[np.ndarray]:
    """Frames whose grey level says their number (10 * i), so a decoded frame tells which one it was."""
    w, h = size
    return [np.full((h, w, 3), 10 * i, np.uint8) for i in range(n)]


def _which(frame: np.ndarray) -> int:
    return int(round(float(frame.mean()) / 10))


def test_videos_are_recognised_by_content_and_folders_give_them(tmp_path):
    video_synth.write_video(tmp_path / "a.mp4", _numbered(3))
    (tmp_path / "disguised.dat").write_bytes((tmp_path / "a.mp4").read_bytes())
    (tmp_path / "notes.mp4").write_bytes(b"")  # empty, named as a video: read (and failed) as one
    video_synth.write_video(tmp_path / "b.webm", _numbered(3), codec="libvpx-vp9")
    assert sniff(str(tmp_path / "disguised.dat")) == "mp4" and sniff(str(tmp_path / "b.webm")) == "matroska"
    assert is_video_file(str(tmp_path / "disguised.dat")) and is_video_file(str(tmp_path / "notes.mp4"))
    items, problems = collect_inputs([str(tmp_path)], videos=True)
    assert sorted(Path(i.file).name for i in items) == ["a.mp4", "b.webm", "notes.mp4"] and not problems
    assert collect_inputs([str(tmp_path)])[0] == []  # tools without videos see none (tag, detect)


def test_rotation_metadata_is_applied(tmp_path):
    frame = np.zeros((32, 48, 3), np.uint8)
    frame[:8, :8] = 255  # a white corner, top left as stored
    video_synth.write_video(tmp_path / "r.mp4", [frame] * 3, rotation=90)
    with VideoSource(str(tmp_path / "r.mp4")) as src:
        info = src.open()
        first = next(iter(src.frames())).image
    assert (info.width, info.height, info.rotation) == (32, 48, 90)
    assert first.shape == (48, 32, 3)
    ys, xs = np.nonzero(first[..., 0] > 128)
    assert ys.mean() > 36 and xs.mean() < 8  # turned counter-clockwise: the corner is now bottom left


def test_fps_sampling_follows_timestamps_of_a_variable_frame_rate(tmp_path):
    times = [0.0, 0.1, 0.15, 0.5, 0.55, 0.6, 1.2, 1.25, 2.0]
    video_synth.write_video(tmp_path / "vfr.mp4", _numbered(len(times)), times=times)
    with VideoSource(str(tmp_path / "vfr.mp4"), sampling=Sampling(fps=2)) as src:
        got = [(f.index, f.source_index, round(f.time, 2), _which(f.image)) for f in src.frames()]
    # the first frame of every half second: t=0, 0.5, 1.2 (1.0-1.5), 2.0
    assert got == [(0, 0, 0.0, 0), (1, 3, 0.5, 3), (2, 6, 1.2, 6), (3, 8, 2.0, 8)]


def test_stride_and_max_frames(tmp_path):
    video_synth.write_video(tmp_path / "s.mp4", _numbered(10))
    with VideoSource(str(tmp_path / "s.mp4"), sampling=Sampling(stride=3), prefetch=0) as src:
        assert [(f.source_index, _which(f.image)) for f in src.frames()] == [(0, 0), (3, 3), (6, 6), (9, 9)]
    with VideoSource(str(tmp_path / "s.mp4"), sampling=Sampling(max_frames=4)) as src:
        assert [f.index for f in src.frames()] == [0, 1, 2, 3]
        assert src.expected_frames() == 4
    with pytest.raises(ValueError, match="either fps or stride"):
        Sampling(fps=2, stride=3)


def _audio_only(path: Path) -> None:
    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream("aac", rate=16000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 16000
        for i in range(8):
            frame.pts = i * 1024
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def bad_videos(folder: Path) -> dict[str, str]:
    """Bad files named as videos -> the words their failure must hold."""
    folder.mkdir(parents=True, exist_ok=True)
    video_synth.write_video(folder / "whole.mp4", _numbered(6))
    data = (folder / "whole.mp4").read_bytes()
    (folder / "truncated.mp4").write_bytes(data[: len(data) // 2])
    (folder / "empty.mp4").write_bytes(b"")
    (folder / "garbage.mkv").write_bytes(np.random.default_rng(0).integers(0, 256, 5000, np.uint8).tobytes())
    _audio_only(folder / "audio.mp4")
    (folder / "whole.mp4").unlink()
    return {"truncated.mp4": "truncated or corrupt", "empty.mp4": "empty file (0 bytes)",
            "garbage.mkv": "not a readable video", "audio.mp4": "no video stream (audio only)"}


def test_bad_files_fail_with_one_line_naming_the_problem(tmp_path):
    for name, words in bad_videos(tmp_path).items():
        with pytest.raises(VideoLoadError) as e:
            with VideoSource(str(tmp_path / name)) as src:
                list(src.frames())
        assert words in e.value.message and str(e.value).startswith(str(tmp_path / name))
        assert "\n" not in str(e.value)


def test_scene_cuts_from_histograms():
    grey = np.full((40, 60, 3), 128, np.uint8)
    moved = grey.copy()
    moved[5:15, 10:20] = (220, 30, 30)  # a small object moving in: no cut
    other = np.full((40, 60, 3), (20, 60, 70), np.uint8)  # another scene
    cuts = SceneCutDetector(threshold=0.5)
    assert [cuts.is_cut(f) for f in (grey, moved, moved, other, other)] == [False, False, False, True, False]
    assert [SceneCutDetector(threshold=None).is_cut(f) for f in (grey, other)] == [False, False]
