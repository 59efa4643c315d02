"""The SAM 2 and SAM 3 video trackers (grounding.video) on tiny random transformers models: their masks equal
transformers' own streaming loop (processor + model + session, as its documentation runs it) on the same model and
prompts, although the trackers prune the session to a window of frames; and both modes run end to end through
``openvocab label``."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

import av  # noqa: E402,F401  (a test dependency: never skipped)

import hf_tiny_video  # noqa: E402
import video_synth  # noqa: E402
from openvocab.cli import main  # noqa: E402
from openvocab.masks import decode_mask  # noqa: E402
from openvocab.structures import Detections, ImageInfo, ImageResult  # noqa: E402
from openvocab.video.source import Frame  # noqa: E402
from openvocab.video.structures import VideoInfo  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = Path(__file__).parent / "plugins"
N = 12


@pytest.fixture(autouse=True)
def _plugin_path(monkeypatch):
    monkeypatch.syspath_prepend(str(PLUGINS))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(PLUGINS), str(ROOT)]))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, bpe_files):
    root = tmp_path_factory.mktemp("video_models")
    return {"sam2": hf_tiny_video.sam2_video(root / "sam2"), "sam3": hf_tiny_video.sam3_video(root / "sam3", bpe_files)}


def _frames() -> list[np.ndarray]:
    objs = [video_synth.Obj(1, "circle", video_synth.PALETTE["circle"][0], 10, lambda f: (20 + 4 * f, 30)),
            video_synth.Obj(2, "square", video_synth.PALETTE["square"][0], 8, lambda f: (70, 20 + 3 * f)),
            video_synth.Obj(3, "triangle", video_synth.PALETTE["triangle"][0], 9, lambda f: (110 - 3 * f, 60))]
    return [video_synth.render(objs, f, (128, 80), (128, 128, 128))[0] for f in range(N)]


#: keyframe -> its detections (boxes xyxy, labels): two objects first, a third on frame 5, none on frame 10
PROMPTS = {0: ([[10, 20, 30, 40], [62, 12, 78, 28]], ["circle", "square"]), 5: ([[88, 51, 107, 69]], ["triangle"]),
           10: ([], [])}


def _result(k: int) -> ImageResult:
    boxes, labels = PROMPTS[k]
    return ImageResult(image=ImageInfo("v.mp4", 128, 80), detections=Detections(
        boxes=np.asarray(boxes, np.float32).reshape(-1, 4), scores=np.full(len(boxes), 0.9, np.float32),
        labels=tuple(labels)))


def _sam2_reference(folder: Path, frames, family: str = "Sam2Video") -> list[dict[int, np.ndarray]]:
    """transformers' streaming loop, no pruning: per frame, object id -> mask (objects present only)."""
    import transformers as hf

    model = getattr(hf, f"{family}Model").from_pretrained(str(folder)).eval()
    proc = getattr(hf, f"{family}Processor").from_pretrained(str(folder))
    session = proc.init_video_session(inference_device="cpu", dtype=torch.float32)
    out, next_id = [], 1
    for k, image in enumerate(frames):
        inputs = proc(images=image, device="cpu", return_tensors="pt")
        if k in PROMPTS and PROMPTS[k][0]:
            ids = list(range(next_id, next_id + len(PROMPTS[k][0])))
            next_id += len(ids)
            proc.add_inputs_to_inference_session(session, frame_idx=k, obj_ids=ids, input_boxes=[PROMPTS[k][0]],
                                                 original_size=inputs.original_sizes[0])
        with torch.inference_mode():
            o = model(inference_session=session, frame=inputs.pixel_values[0])
        masks = proc.post_process_masks([o.pred_masks], original_sizes=inputs.original_sizes, binarize=True)[0]
        logits = o.object_score_logits.reshape(-1)
        out.append({int(i): masks[j, 0].numpy() for j, i in enumerate(o.object_ids)
                    if logits[j] > 0 and masks[j, 0].any()})
    return out


def _run_tracker(tracker, frames, *, results) -> list[dict[int, np.ndarray]]:
    tracker.setup("cpu")
    tracker.start_video(VideoInfo(file="v.mp4", name="v", width=128, height=80, fps=10), ["circle", "square"])
    got = []
    for k, image in enumerate(frames):
        t = tracker.track(Frame(k, k, k / 10, image), results(k))
        got.append({int(i): decode_mask(m) for i, m in zip(t.ids, t.regions.masks)} if len(t) else {})
    return got


@pytest.mark.parametrize("checkpoint, family", [("sam2", "Sam2Video"), ("sam3", "Sam3TrackerVideo")])
def test_sam2_tracker_equals_transformers_streaming_with_a_pruned_session(tiny, checkpoint, family):
    """SAM 2's video model, and SAM 3's tracker (Sam3TrackerVideoModel) read from a SAM 3 video checkpoint."""
    from grounding.video.sam2 import Sam2VideoTracker

    frames = _frames()
    ref = _sam2_reference(tiny[checkpoint], frames, family)
    assert sum(len(r) for r in ref) > N  # the tiny model keeps objects on screen: there is something to compare
    tracker = Sam2VideoTracker(model=str(tiny[checkpoint]), keyframe_interval=5, lost_after=3)
    got = _run_tracker(tracker, frames, results=lambda k: _result(k) if k % 5 == 0 else None)
    assert [sorted(g) for g in got] == [sorted(r) for r in ref]
    for g, r in zip(got, ref):
        for i in r:
            np.testing.assert_array_equal(g[i], r[i])
    window = max(hf_tiny_video.NUM_MASKMEM, hf_tiny_video.MAX_POINTERS)
    session = tracker._session
    assert list(session.processed_frames) == [N - 1]  # memory: the current frame's pixels only ...
    assert all(len(o["non_cond_frame_outputs"]) <= window + 1 for o in session.output_dict_per_obj.values())
    # ... and a window too small to hold what the model reads changes the masks: the comparison can fail
    short = _run_tracker(Sam2VideoTracker(model=str(tiny[checkpoint]), keyframe_interval=5, lost_after=3, window=1),
                         frames, results=lambda k: _result(k) if k % 5 == 0 else None)
    assert any(not np.array_equal(s.get(i, 0), r[i]) for s, r in zip(short, ref) for i in r)


def test_sam2_tracker_keeps_classes_and_ends_lost_tracks(tiny):
    from grounding.video.sam2 import Sam2VideoTracker

    frames = _frames()
    tracker = Sam2VideoTracker(model=str(tiny["sam2"]), keyframe_interval=5, lost_after=1, match_iou=0.01)
    tracker.setup("cpu")
    tracker.start_video(VideoInfo(file="v.mp4", name="v", width=128, height=80, fps=10))
    labels: dict[int, set] = {}
    for k, image in enumerate(frames):
        t = tracker.track(Frame(k, k, k / 10, image), _result(k) if k in (0, 5) else None)
        for i, label in zip(t.ids.tolist(), t.detections.labels):
            labels.setdefault(i, set()).add(label)
        if k == 5:  # frame 5's detections hold no circle or square: those tracks were lost (lost_after=1) and ended
            assert set(t.detections.labels) <= {"triangle"}
    assert all(len(v) == 1 for v in labels.values())
    assert len(tracker._session.obj_ids) == 1  # ended tracks are gone from the model's session


def _sam3_reference(folder: Path, frames, prompts) -> list[list[tuple[str, bytes]]]:
    import transformers as hf

    model = hf.Sam3VideoModel.from_pretrained(str(folder)).eval()
    proc = hf.Sam3VideoProcessor.from_pretrained(str(folder))
    session = proc.init_video_session(inference_device="cpu", dtype=torch.float32)
    proc.add_text_prompt(session, prompts)
    out = []
    for image in frames:
        inputs = proc(images=image, device="cpu", return_tensors="pt")
        o = model(inference_session=session, frame=inputs.pixel_values[0], reverse=False)
        post = proc.postprocess_outputs(session, o, original_sizes=inputs.original_sizes)
        prompt_of = {obj: text for text, objs in post["prompt_to_obj_ids"].items() for obj in objs}
        out.append(sorted((prompt_of[int(obj)], post["masks"][j].numpy().tobytes())
                          for j, obj in enumerate(post["object_ids"].tolist()) if post["masks"][j].any()))
    return out


def test_sam3_tracker_equals_transformers_streaming_with_a_pruned_session(tiny):
    from grounding.video.sam3 import Sam3VideoTracker

    frames = _frames()
    ref = _sam3_reference(tiny["sam3"], frames, ["circle", "square"])
    assert sum(len(r) for r in ref) > 0
    tracker = Sam3VideoTracker(model=str(tiny["sam3"]))
    got = _run_tracker(tracker, frames, results=lambda k: None)
    assert list(tracker._session.processed_frames) == [N - 1]

    def by_label(tracker, got):
        labels = {i: lab for i, lab in tracker._ids.values()}
        return [sorted((labels[i], m.tobytes()) for i, m in g.items()) for g in got]

    assert by_label(tracker, got) == ref
    assert len({tuple(r) for r in ref}) > 1  # the masks change along the video: frames are really compared


def _config(tmp_path: Path, tracker: str, detector: bool = True) -> str:
    text = ("custom_imports = dict(imports=['grounding', 'video_shapes'], allow_failed_imports=False)\n"
            + ("detector = dict(type='PaletteShapeDetector')\n" if detector else "") + f"tracker = {tracker}\n")
    path = tmp_path / f"cfg_{len(list(tmp_path.glob('cfg_*.py')))}.py"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("mode", ["sam2", "sam3"])
def test_sam_modes_label_a_video_end_to_end(tiny, tmp_path, mode):
    video = tmp_path / "clip.mp4"
    video_synth.tracking_video(video, cut=12, total=20)
    tracker = (f"dict(type='Sam2VideoTracker', model={str(tiny['sam2'])!r}, keyframe_interval=4)" if mode == "sam2"
               else f"dict(type='Sam3VideoTracker', model={str(tiny['sam3'])!r}, keyframe_interval=4)")
    out = tmp_path / "out"
    assert main(["label", str(video), "--config", _config(tmp_path, tracker, detector=mode == "sam2"), "--vocab",
                 "circle, square, triangle", "--out", str(out), "--formats", "mot,coco", "--vis", "--no-progress"]) == 0
    rows = np.loadtxt(out / "mot" / "clip" / "gt" / "gt.txt", delimiter=",", ndmin=2)
    assert len(rows)  # the tiny trackers keep their objects: there are tracks
    for tid in np.unique(rows[:, 1]):
        mine = rows[rows[:, 1] == tid]
        assert len(np.unique(mine[:, 7])) == 1  # one class per ID
        assert mine[:, 0].max() <= 12 or mine[:, 0].min() > 12  # one side of the scene cut
    coco = json.loads((out / "coco_video.json").read_text())
    assert all("segmentation" in a for a in coco["annotations"]) and len(coco["images"]) == 20
    import av

    with av.open(str(out / "vis_video" / "clip.mp4")) as c:
        assert sum(1 for _ in c.decode(c.streams.video[0])) == 20


def test_a_mask_head_without_a_tracker_means_sam2(tmp_path, capsys):
    video = tmp_path / "clip.mp4"
    video_synth.tracking_video(video, cut=3, total=5)
    cfg = tmp_path / "masks.py"
    cfg.write_text("custom_imports = dict(imports=['grounding', 'video_shapes'], allow_failed_imports=False)\n"
                   "detector = dict(type='PaletteShapeDetector')\nmask_head = dict(type='PaletteMaskHead')\n")
    assert main(["label", str(video), "--config", str(cfg), "--vocab", "circle", "--out", str(tmp_path / "o"),
                 "--no-progress"]) == 2  # offline: the default SAM 2.1 video model is not there
    assert "facebook/sam2.1-hiera-large" in capsys.readouterr().err
