"""``Sam2VideoTracker``: the pipeline's detections on keyframes, their masks propagated by a SAM 2 video model.

transformers' streaming API does the model work (``Sam2VideoProcessor`` + ``Sam2VideoModel`` with an inference
session, or SAM 3's tracker, ``Sam3TrackerVideoProcessor`` + ``Sam3TrackerVideoModel``, by the checkpoint's
``model_type``); this tracker decides which objects it follows:

* on a keyframe, each detection is matched (box IoU >= ``match_iou``, Hungarian, only within its own class) to the
  live tracks' boxes on the frame before; a matched track takes the detection's score, phrase, region concepts and
  caption (its label never changes); an unmatched detection starts a track: its box is the object's prompt on this
  frame; a track matched by no detection for ``lost_after`` keyframes in a row ends;
* every frame, the model propagates every live track's mask; a track whose object score is below 0 (or whose mask
  is empty) is not on that frame (it may come back);
* a scene cut ends every track (a new session);
* memory: the session is pruned to ``window`` frames of history (:mod:`.session`; by default exactly what the
  model reads), and ended tracks are dropped from it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from openvocab.masks import encode_mask
from openvocab.registry import TRACKERS
from openvocab.structures import Detections, ImageResult, Regions
from openvocab.video.structures import Tracks
from openvocab.video.tracking import VideoTracker, box_iou, check_interval, match

from ..hf.loading import check_dtype, check_model
from .session import new_session, drop_objects, load_video_model, needed_window, prune, remote_repo

FAMILIES = {
    "sam2_video": ("Sam2VideoModel", "Sam2VideoProcessor"),
    "sam2": ("Sam2VideoModel", "Sam2VideoProcessor"),
    "sam3_tracker_video": ("Sam3TrackerVideoModel", "Sam3TrackerVideoProcessor"),
    "sam3_video": ("Sam3TrackerVideoModel", "Sam3TrackerVideoProcessor"),
}


@dataclass
class _Track:
    label: str
    phrase: str
    score: float
    concepts: Optional[tuple] = None
    caption: Optional[str] = None
    box: Optional[np.ndarray] = None
    missed: int = 0


@TRACKERS.register_module()
class Sam2VideoTracker(VideoTracker):
    """See the module docstring.

    Args:
        model: a SAM 2 / SAM 2.1 video checkpoint (hub id or folder) or SAM 3's (its tracker).
        keyframe_interval: the pipeline (tagger, detector) runs every N sampled frames (and after each scene cut).
        match_iou: the least box IoU of a detection with a track's last box to continue it.
        lost_after: keyframes in a row without a matching detection after which a track ends.
        window: frames of history the session keeps (``None``: what the model reads; smaller changes the masks).
        dtype: the model's weights (``float32``, ``bfloat16``, ``float16``).
    """

    keyframe_steps = "run"

    def __init__(self, *, model: str = "facebook/sam2.1-hiera-large", revision: Optional[str] = None,
                 keyframe_interval: int = 10, match_iou: float = 0.3, lost_after: int = 2,
                 window: Optional[int] = None, dtype: str = "float32") -> None:
        super().__init__()
        check_model(model)
        self.model, self.revision = model, revision
        self.keyframe_interval = check_interval(keyframe_interval)
        if not 0.0 < float(match_iou) <= 1.0:
            raise ValueError(f"match_iou must be in (0, 1], got {match_iou!r}")
        if not isinstance(lost_after, int) or lost_after < 1:
            raise ValueError(f"lost_after must be an int >= 1, got {lost_after!r}")
        if window is not None and (not isinstance(window, int) or window < 1):
            raise ValueError(f"window must be an int >= 1 or None, got {window!r}")
        self.match_iou, self.lost_after, self.window = float(match_iou), lost_after, window
        self.dtype = check_dtype(dtype)
        self._net: Any = None
        self._proc: Any = None
        self._device = "cpu"
        self._session: Any = None
        self._tracks: dict[int, _Track] = {}
        self._frame = 0

    def required_files(self) -> list[str]:
        return [f"{self.model} (SAM 2 video model)"]

    def remote_repos(self) -> list:
        return remote_repo(self.model, self.revision, "SAM 2 video model")

    def setup(self, device: str = "cpu") -> None:
        if self._net is None:
            self._net, self._proc, _ = load_video_model(self.model, families=FAMILIES, device=device,
                                                        dtype=self.dtype, revision=self.revision,
                                                        description="SAM 2 video model")
            self._device = device
            need = needed_window(self._net.config)
            self._window = self.window or need

    def start_shot(self) -> None:
        self._tracks = {}
        self._frame = 0
        self._session = None if self._proc is None else new_session(
            self._proc, device=self._device, dtype=next(self._net.parameters()).dtype)

    def end_video(self) -> None:
        self._session, self._tracks = None, {}
        super().end_video()

    def track(self, frame, result: Optional[ImageResult]) -> Tracks:
        import torch

        if self._net is None:
            raise ValueError("Sam2VideoTracker.setup() must run before track()")
        k = self._frame
        self._frame += 1
        inputs = self._proc(images=frame.image, device=self._device, return_tensors="pt")
        size = inputs.original_sizes[0]
        if result is not None:
            self._keyframe(k, result, size)
        if not self._tracks:
            return Tracks()
        with torch.inference_mode():
            out = self._net(inference_session=self._session, frame=inputs.pixel_values[0].to(self._net.dtype),
                            frame_idx=k)
        masks = self._proc.post_process_masks([out.pred_masks], original_sizes=inputs.original_sizes,
                                              binarize=True)[0][:, 0].cpu().numpy()
        scores = out.object_score_logits.float().reshape(-1).cpu().numpy()
        prune(self._session, k, self._window)
        return self._tracks_on_frame(list(out.object_ids), masks, scores)

    def _keyframe(self, k: int, result: ImageResult, size) -> None:
        dets, regions = result.detections, result.regions
        ids = list(self._tracks)
        boxes = np.asarray([self._tracks[t].box if self._tracks[t].box is not None else [0, 0, 0, 0] for t in ids],
                           np.float64).reshape(-1, 4)
        pairs = match(box_iou(boxes, dets.boxes), [self._tracks[t].label for t in ids], list(dets.labels),
                      self.match_iou)
        matched_tracks = {ids[r]: c for r, c in pairs}
        for tid in ids:
            t = self._tracks[tid]
            if tid in matched_tracks:
                self._update(t, dets, regions, matched_tracks[tid])
                t.missed = 0
            else:
                t.missed += 1
        ended = {tid for tid in ids if self._tracks[tid].missed >= self.lost_after}
        for tid in ended:
            del self._tracks[tid]
        drop_objects(self._session, ended)
        new = [j for j in range(len(dets)) if j not in set(matched_tracks.values())]
        if not new:
            return
        new_ids = []
        for j in new:
            tid = self.new_id()
            t = self._tracks[tid] = _Track(label=dets.labels[j], phrase=dets.phrases[j], score=float(dets.scores[j]))
            self._update(t, dets, regions, j)
            new_ids.append(tid)
        self._proc.add_inputs_to_inference_session(
            self._session, frame_idx=k, obj_ids=new_ids, original_size=size,
            input_boxes=[[[float(v) for v in dets.boxes[j]] for j in new]])

    @staticmethod
    def _update(t: _Track, dets: Detections, regions: Optional[Regions], j: int) -> None:
        t.score, t.phrase, t.box = float(dets.scores[j]), dets.phrases[j], dets.boxes[j].astype(np.float64)
        if regions is not None and regions.concepts is not None:
            t.concepts = regions.concepts[j]
        if regions is not None and regions.captions is not None:
            t.caption = regions.captions[j]

    def _tracks_on_frame(self, obj_ids: list[int], masks: np.ndarray, logits: np.ndarray) -> Tracks:
        keep, boxes, rles, mask_scores = [], [], [], []
        for i, tid in enumerate(obj_ids):
            t = self._tracks.get(int(tid))
            m = masks[i].astype(bool)
            if t is None or logits[i] <= 0 or not m.any():
                continue
            ys, xs = np.nonzero(m.any(axis=1))[0], np.nonzero(m.any(axis=0))[0]
            box = np.asarray([xs[0], ys[0], xs[-1] + 1, ys[-1] + 1], np.float32)
            t.box = box.astype(np.float64)
            keep.append(int(tid))
            boxes.append(box)
            rles.append(encode_mask(m))
            mask_scores.append(float(1.0 / (1.0 + np.exp(-logits[i]))))
        tracks = [self._tracks[t] for t in keep]
        dets = Detections(boxes=np.asarray(boxes, np.float32).reshape(-1, 4),
                          scores=np.asarray([t.score for t in tracks], np.float32),
                          labels=tuple(t.label for t in tracks), phrases=tuple(t.phrase for t in tracks))
        concepts = tuple(t.concepts or () for t in tracks) if any(t.concepts is not None for t in tracks) else None
        captions = tuple(t.caption or "" for t in tracks) if any(t.caption is not None for t in tracks) else None
        regions = Regions(masks=tuple(rles), mask_scores=np.asarray(mask_scores, np.float32), concepts=concepts,
                          captions=captions)
        return Tracks(dets, regions, np.asarray(keep, np.int64))
