"""``Sam3VideoTracker``: the video's tags as text prompts to SAM 3's video model, which finds, segments and tracks
every instance of each tag on every sampled frame (``Sam3VideoProcessor`` + ``Sam3VideoModel``, streaming).

The pipeline only tags (``keyframe_steps = "tag"``): the video labeler runs its ``tag`` step on the keyframes of a
first pass and hands the union of their boxable tags to :meth:`start_video` (with ``--vocab``: the vocabulary).
Each shot is a new session with those prompts; SAM 3's object ids become the video's track IDs, and a track's label
is the prompt that found it (SAM 3 ties an object to one prompt for its whole life, so an ID never changes class).
Scores are SAM 3's per-object detection scores. In streaming mode SAM 3 runs no "hotstart" clean-up (it needs
future frames), so its outputs are final as they come. The session is pruned to ``window`` frames (:mod:`.session`).
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from openvocab.masks import encode_mask
from openvocab.registry import TRACKERS
from openvocab.structures import Detections, ImageResult, Regions
from openvocab.video.structures import Tracks, VideoInfo
from openvocab.video.tracking import VideoTracker, check_interval

from ..hf.loading import check_dtype, check_model
from .session import new_session, load_video_model, needed_window, prune, remote_repo

FAMILIES = {"sam3_video": ("Sam3VideoModel", "Sam3VideoProcessor")}


@TRACKERS.register_module()
class Sam3VideoTracker(VideoTracker):
    """See the module docstring.

    Args:
        model: SAM 3's video checkpoint (hub id or folder).
        keyframe_interval: the tagger tags every N sampled frames of the first pass (its tags become prompts).
        window: frames of history the session keeps (``None``: what the model reads).
        min_score: SAM 3 objects scored below it are left out.
        dtype: the model's weights.
    """

    keyframe_steps = "tag"
    needs_video_tags = True

    def __init__(self, *, model: str = "facebook/sam3", revision: Optional[str] = None, keyframe_interval: int = 30,
                 window: Optional[int] = None, min_score: float = 0.0, dtype: str = "float32") -> None:
        super().__init__()
        check_model(model)
        self.model, self.revision = model, revision
        self.keyframe_interval = check_interval(keyframe_interval)
        if window is not None and (not isinstance(window, int) or window < 1):
            raise ValueError(f"window must be an int >= 1 or None, got {window!r}")
        if not 0.0 <= float(min_score) <= 1.0:
            raise ValueError(f"min_score must be in [0, 1], got {min_score!r}")
        self.window, self.min_score, self.dtype = window, float(min_score), check_dtype(dtype)
        self._net: Any = None
        self._proc: Any = None
        self._device = "cpu"
        self._prompts: list[str] = []
        self._session: Any = None
        self._ids: dict[int, tuple[int, str]] = {}
        self._frame = 0

    def required_files(self) -> list[str]:
        return [f"{self.model} (SAM 3 video model)"]

    def remote_repos(self) -> list:
        return remote_repo(self.model, self.revision, "SAM 3 video model")

    def setup(self, device: str = "cpu") -> None:
        if self._net is None:
            self._net, self._proc, _ = load_video_model(self.model, families=FAMILIES, device=device,
                                                        dtype=self.dtype, revision=self.revision,
                                                        description="SAM 3 video model")
            self._device = device
            self._window = max(self.window or needed_window(self._net.config),
                               int(getattr(self._net.config, "hotstart_delay", 0)))

    def start_video(self, info: VideoInfo, tags: Sequence[str] = ()) -> None:
        self._prompts = list(dict.fromkeys(str(t) for t in tags))
        super().start_video(info, tags)

    def start_shot(self) -> None:
        self._ids, self._frame = {}, 0
        self._session = None
        if self._proc is not None and self._prompts:
            self._session = new_session(self._proc, device=self._device, dtype=next(self._net.parameters()).dtype)
            self._proc.add_text_prompt(self._session, self._prompts)

    def end_video(self) -> None:
        self._session, self._ids = None, {}
        super().end_video()

    def track(self, frame, result: Optional[ImageResult]) -> Tracks:
        import torch

        if self._net is None:
            raise ValueError("Sam3VideoTracker.setup() must run before track()")
        if self._session is None:  # no tag to look for
            return Tracks()
        k = self._frame
        self._frame += 1
        inputs = self._proc(images=frame.image, device=self._device, return_tensors="pt")
        with torch.inference_mode():
            out = self._net(inference_session=self._session, frame=inputs.pixel_values[0], frame_idx=k,
                            reverse=False)
        post = self._proc.postprocess_outputs(self._session, out, original_sizes=inputs.original_sizes)
        prompt_of = {int(o): text for text, objs in post["prompt_to_obj_ids"].items() for o in objs}
        prune(self._session, k, self._window)
        keep, labels, boxes, scores, rles = [], [], [], [], []
        for i, obj in enumerate(post["object_ids"].tolist()):
            score = float(post["scores"][i])
            m = post["masks"][i].cpu().numpy().astype(bool)
            if score < self.min_score or not m.any() or obj not in prompt_of:
                continue
            label = prompt_of[obj]
            known = self._ids.get(obj)
            if known is None or known[1] != label:  # SAM 3 keeps an object's prompt; a new label is a new track
                known = self._ids[obj] = (self.new_id(), label)
            ys, xs = np.nonzero(m.any(axis=1))[0], np.nonzero(m.any(axis=0))[0]
            keep.append(known[0])
            labels.append(label)
            boxes.append([xs[0], ys[0], xs[-1] + 1, ys[-1] + 1])
            scores.append(score)
            rles.append(encode_mask(m))
        order = np.argsort(keep, kind="stable")
        dets = Detections(boxes=np.asarray(boxes, np.float32).reshape(-1, 4)[order],
                          scores=np.asarray(scores, np.float32)[order], labels=tuple(labels[i] for i in order))
        regions = Regions(masks=tuple(rles[i] for i in order), mask_scores=np.asarray(scores, np.float32)[order])
        return Tracks(dets, regions, np.asarray(keep, np.int64)[order])
