"""Videos through ``openvocab label`` with ByteTrack and the deterministic palette detector (tests/plugins/video_shapes),
scored against the synthetic video's known tracks by the trackers library's own TrackEval-parity evaluation
(motmetrics 1.4, the last release, calls ``np.asfarray``, gone in NumPy 2); the outputs read back by their consumers
(the trackers library's MOT reader, pycocotools, Datumaro, PyAV)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

import av  # noqa: E402,F401  (test dependencies: ./install.sh --test installs them; never skipped)
import trackers  # noqa: E402,F401

import video_synth  # noqa: E402
from openvocab.cli import main  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = Path(__file__).parent / "plugins"
CUT, TOTAL = 50, 80


@pytest.fixture(autouse=True)
def _plugin_path(monkeypatch):
    monkeypatch.syspath_prepend(str(PLUGINS))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(PLUGINS), str(ROOT)]))


def shapes_config(tmp_path: Path, *, mask_head: bool = False, **detector) -> str:
    """A child of configs/track_bytetrack.py with the palette detector swapped in (one line, as a user would)."""
    args = "".join(f", {k}={v!r}" for k, v in detector.items())
    text = (f"_base_ = {str(ROOT / 'configs' / 'track_bytetrack.py')!r}\n"
            "custom_imports = dict(imports=['video_shapes'], allow_failed_imports=False)\n"
            f"detector = dict(type='PaletteShapeDetector'{args})\n")
    if mask_head:
        text += "mask_head = dict(type='PaletteMaskHead')\n"
    path = tmp_path / f"shapes_{len(list(tmp_path.glob('shapes_*.py')))}.py"
    path.write_text(text)
    return str(path)


@pytest.fixture(scope="module")
def labeled(tmp_path_factory):
    """The tracking video labeled once with every video format (masks from the palette mask head)."""
    import sys

    sys.path.insert(0, str(PLUGINS))
    tmp = tmp_path_factory.mktemp("tracking")
    video = tmp / "clip.mp4"
    gt = video_synth.tracking_video(video, cut=CUT, total=TOTAL)
    out = tmp / "out"
    rc = main(["label", str(video), "--config", shapes_config(tmp, mask_head=True), "--vocab",
               "circle, square, triangle", "--out", str(out), "--formats", "mot,coco,cvat,yolo-seg", "--vis",
               "--no-progress"])
    assert rc == 0
    return out, gt


def _mot_rows(path: Path) -> np.ndarray:
    """``int/float [N, 9]`` rows of a MOT file."""
    return np.loadtxt(path, delimiter=",", ndmin=2)


def _score(gt, mot_file: Path, tmp: Path):
    """The trackers library's CLEAR and Identity metrics of ``mot_file`` against the ground truth ``gt``."""
    from trackers.eval import evaluate_mot_sequence

    truth = tmp / "truth.txt"  # MOT ground truth: 1-based frames and pixels, class 1 (pedestrian: scored), conf 1
    truth.write_text("".join(f"{g.frame + 1},{g.gt_id},{g.box[0] + 1},{g.box[1] + 1},{g.box[2] - g.box[0]},"
                             f"{g.box[3] - g.box[1]},1,1,1\n" for g in gt))
    return evaluate_mot_sequence(truth, mot_file, metrics=["CLEAR", "Identity"])


def _classes_per_id(rows: np.ndarray) -> dict[int, set]:
    out: dict[int, set] = {}
    for row in rows:
        out.setdefault(int(row[1]), set()).add(int(row[7]))
    return out


def test_bytetrack_tracks_the_synthetic_shapes(labeled, tmp_path):
    out, gt = labeled
    mot = out / "mot" / "clip" / "gt" / "gt.txt"
    result = _score(gt, mot, tmp_path)
    assert result.Identity.IDF1 >= 0.9, result.table()
    # the square leaves and comes back: at most that one new ID, and no other switch (the crossing circles keep theirs)
    assert result.CLEAR.IDSW <= 1, result.table()
    assert result.CLEAR.CLR_FP == 0, result.table()
    rows = _mot_rows(mot)
    assert all(len(c) == 1 for c in _classes_per_id(rows).values())  # no ID on two classes
    first = {int(t): rows[rows[:, 1] == t, 0].min() for t in np.unique(rows[:, 1])}
    last = {int(t): rows[rows[:, 1] == t, 0].max() for t in np.unique(rows[:, 1])}
    assert all(last[t] <= CUT or first[t] > CUT for t in first)  # every ID lives on one side of the cut only
    assert sum(first[t] > CUT for t in first) == 3  # the three objects of shot 2


def test_the_scoring_catches_swapped_ids(labeled, tmp_path):
    """The checks above can fail: the two circles' IDs swapped half-way (what a tracker that loses them at the
    crossing does) is counted as ID switches and lowers IDF1."""
    out, gt = labeled
    rows = _mot_rows(out / "mot" / "clip" / "gt" / "gt.txt")
    swapped = rows.copy()
    late = swapped[:, 0] > CUT // 2
    one, two = late & (rows[:, 1] == 1), late & (rows[:, 1] == 2)
    swapped[one, 1], swapped[two, 1] = 2, 1
    path = tmp_path / "swapped.txt"
    np.savetxt(path, swapped, delimiter=",", fmt="%g")
    result = _score(gt, path, tmp_path)
    assert result.CLEAR.IDSW >= 2 and result.Identity.IDF1 < _score(gt, out / "mot" / "clip" / "gt" / "gt.txt",
                                                                       tmp_path).Identity.IDF1


def test_mot_layout(labeled):
    out, _ = labeled
    seq = out / "mot" / "clip"
    info = dict(line.split("=", 1) for line in (seq / "seqinfo.ini").read_text().splitlines() if "=" in line)
    assert info["seqLength"] == str(TOTAL) and info["frameRate"] == "25"
    assert (info["imWidth"], info["imHeight"]) == ("192", "128")
    first = min(int(line.split(",")[0]) for line in (seq / "gt" / "gt.txt").read_text().splitlines())
    assert first >= 1  # 1-based frames
    assert [line for line in (out / "classes.txt").read_text().splitlines()] == ["circle", "square", "triangle"]


def test_coco_video_reads_back_with_pycocotools(labeled):
    from pycocotools import mask as mask_utils
    from pycocotools.coco import COCO

    out, gt = labeled
    coco = COCO(str(out / "coco_video.json"))
    data = json.loads((out / "coco_video.json").read_text())
    assert [v["length"] for v in data["videos"]] == [TOTAL]
    assert sorted(i["frame_id"] for i in data["images"]) == list(range(TOTAL))
    assert {c["name"] for c in coco.loadCats(coco.getCatIds())} == {"circle", "square", "triangle"}
    tracks = {t["id"]: t["category_id"] for t in data["tracks"]}
    for ann in coco.loadAnns(coco.getAnnIds()):
        assert tracks[ann["track_id"]] == ann["category_id"]
        m = coco.annToMask(ann)
        assert m.shape == (128, 192) and m.sum() == ann["area"] > 0
        x, y, w, h = mask_utils.toBbox(ann["segmentation"])
        bx, by, bw, bh = ann["bbox"]
        assert bx - 1 <= x and by - 1 <= y and x + w <= bx + bw + 1 and y + h <= by + bh + 1  # inside its box


def test_cvat_video_reads_back_with_datumaro_as_tracks(labeled):
    import datumaro as dm
    out, _ = labeled
    dataset = dm.Dataset.import_from(str(out / "cvat_video" / "clip"), "cvat")
    labels = dataset.categories()[dm.AnnotationType.label]
    visible, closing = {}, 0
    for item in dataset:
        for ann in item.annotations:
            tid = ann.attributes["track_id"]
            if ann.attributes.get("outside"):
                closing += 1
                continue
            visible.setdefault(tid, set()).add(labels[ann.label].name)
    assert all(len(v) == 1 for v in visible.values())
    mot = (out / "mot" / "clip" / "gt" / "gt.txt").read_text().splitlines()
    assert len(visible) == len({line.split(",")[1] for line in mot})
    assert sum(1 for item in dataset for a in item.annotations if not a.attributes.get("outside")) == len(mot)
    assert closing >= len(visible) - 3  # tracks that end before the last frame are closed (outside="1")


def test_overlay_mp4_decodes_to_every_sampled_frame(labeled):
    import av

    out, _ = labeled
    with av.open(str(out / "vis_video" / "clip.mp4")) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(c.streams.video[0])]
    assert len(frames) == TOTAL
    assert frames[0].shape == (128, 192, 3)
    assert not list((out / "vis_video").glob(".*.part"))


def test_yolo_seg_frames_and_labels(labeled):
    out, _ = labeled
    root = out / "yolo_seg_video"
    images = sorted(root.glob("images/*/*.jpg"))
    labels = sorted(root.glob("labels/*/*.txt"))
    assert len(images) == len(labels) == TOTAL
    assert {p.parent.name for p in images} == {images[0].parent.name}  # one video: one split
    names = [line for line in (root / "data.yaml").read_text().splitlines() if line.startswith("  ")]
    assert names == ['  0: "circle"', '  1: "square"', '  2: "triangle"']
    mot_boxes = sum(1 for _ in (out / "mot" / "clip" / "gt" / "gt.txt").open())
    rows = [line.split() for p in labels for line in p.read_text().splitlines()]
    assert len(rows) == mot_boxes and all(len(r) >= 7 and len(r) % 2 == 1 for r in rows)
    coords = np.asarray([float(v) for r in rows for v in r[1:]])
    assert ((coords >= 0) & (coords <= 1)).all()
    assert not (out / "coco.json").exists()  # a job of videos writes no empty image datasets


def test_python_api_label_video_yields_tracked_frames_lazily(tmp_path):
    import openvocab

    video = tmp_path / "clip.mp4"
    gt = video_synth.tracking_video(video, cut=CUT, total=TOTAL)
    labeler = openvocab.Labeler.from_config(shapes_config(tmp_path), vocabulary="circle, square, triangle")
    frames = labeler.label_video(video, stride=2)
    first = next(frames)  # nothing is labeled before it is asked for
    assert first.index == 0 and first.source_index == 0
    rest = list(frames)
    assert [f.source_index for f in rest] == list(range(2, TOTAL, 2))
    ids_by_label = {}
    for f in [first] + rest:
        for tid, label in zip(f.track_ids.tolist(), f.result.detections.labels):
            ids_by_label.setdefault(tid, set()).add(label)
    assert all(len(v) == 1 for v in ids_by_label.values()) and len(ids_by_label) >= len({g.gt_id for g in gt})
    pairs = labeler.label_video(video, fps=5, images=True)
    frame, image = next(pairs)
    assert image.shape == (128, 192, 3) and frame.time == 0.0
    assert [round(f.time, 2) for f, _ in pairs][:3] == [0.2, 0.4, 0.6]
    from openvocab.video.source import VideoLoadError

    with pytest.raises(VideoLoadError, match="empty file"):
        (tmp_path / "bad.mp4").write_bytes(b"")
        labeler.label_video(tmp_path / "bad.mp4")
