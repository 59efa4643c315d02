"""What the SAM 2 / SAM 3 video trackers share: loading a transformers video model, and keeping its inference
session's memory flat over any number of frames.

transformers' video sessions (``Sam2VideoInferenceSession``, ``Sam3VideoInferenceSession``) keep every frame's
preprocessed pixels and every object's per-frame outputs for as long as the session lives: a long stream grows
without end. The model only ever reads back the current frame, the last ``num_maskmem`` frames' memories, the last
``max_object_pointers_in_encoder`` frames' object pointers, and each object's conditioning (prompted) frames.
:func:`prune` drops everything older than a ``window`` of frames that covers them, so a tracker's masks are the
same as with the full history (``tests/test_video_sam.py`` checks it against transformers' own streaming loop on a
tiny model) while its memory stays that of ``window`` frames.
"""
from __future__ import annotations

from typing import Any, Optional

from openvocab.hub import RemoteRepo


def load_video_model(model: str, *, families: dict[str, tuple[str, str]], device: str, dtype: str,
                     revision: Optional[str], description: str):
    """``(model, processor, model_type)``: the folder's ``model_type`` picks the classes among ``families``
    (``model_type -> (model class, processor class)`` names in ``transformers``)."""
    import transformers

    from openvocab.hub import resolve_repo

    from ..hf.loading import DTYPES, _quiet, model_type

    folder = resolve_repo(model, revision=revision, description=description)
    kind = model_type(folder)
    if kind not in families:
        raise ValueError(f"{folder}: model type {kind!r} is not a video model this tracker runs (supported: "
                         f"{', '.join(sorted(families))})")
    model_cls, proc_cls = (getattr(transformers, n) for n in families[kind])
    with _quiet():
        processor = proc_cls.from_pretrained(str(folder))
        net = model_cls.from_pretrained(str(folder), dtype=DTYPES[dtype])
    return net.eval().to(device), processor, kind


def remote_repo(model: str, revision: Optional[str], description: str) -> list[RemoteRepo]:
    from pathlib import Path

    if Path(model).expanduser().is_dir() or model.count("/") != 1 or model.startswith((".", "/", "~")):
        return []
    return [RemoteRepo(repo=model, revision=revision, description=description)]


def needed_window(config: Any) -> int:
    """The frames of history a video model reads: its memory bank and its object pointers (at least 1)."""
    cfg = getattr(config, "tracker_config", None) or config
    return max(1, int(getattr(cfg, "num_maskmem", 7)), int(getattr(cfg, "max_object_pointers_in_encoder", 16)))


class FrameWindow(dict):
    """A session's ``processed_frames`` that holds only the frames not yet pruned while ``len()`` still counts every
    frame streamed so far: transformers reads the count (``session.num_frames``; SAM 3's tracker caps its object
    pointers by it), never the pixels of past frames."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __setitem__(self, key: int, value: Any) -> None:
        self.count = max(self.count, int(key) + 1)
        super().__setitem__(key, value)

    def __len__(self) -> int:
        return self.count


def new_session(processor: Any, *, device: str, dtype: Any) -> Any:
    """A streaming inference session whose frames :func:`prune` can drop without changing the model's results."""
    session = processor.init_video_session(inference_device=device, dtype=dtype)
    session.processed_frames = FrameWindow()
    return session


def prune(session: Any, frame_idx: int, window: int) -> None:
    """Drop from ``session`` what no later frame reads (see the module docstring): frames before
    ``frame_idx - window``; the current frame's pixels are kept only until the next frame comes."""
    oldest = frame_idx - window
    frames = session.processed_frames or {}
    for k in [k for k in frames if k < frame_idx]:
        del frames[k]
    for per_obj in session.output_dict_per_obj.values():
        outs = per_obj["non_cond_frame_outputs"]
        for k in [k for k in outs if k < oldest]:
            del outs[k]
    for tracked in session.frames_tracked_per_obj.values():
        for k in [k for k in tracked if k < oldest]:
            del tracked[k]
    for name in ("obj_id_to_tracker_score_frame_wise", "suppressed_obj_ids"):  # SAM 3: per-frame bookkeeping
        table = getattr(session, name, None)
        if table is not None:
            for k in [k for k in table if k < oldest]:
                del table[k]
    for name in ("unmatched_frame_inds", "overlap_pair_to_frame_inds"):  # SAM 3: read only by offline hotstart
        table = getattr(session, name, None)
        if table is not None:
            for key, inds in table.items():
                table[key] = [i for i in inds if i >= oldest]


def drop_objects(session: Any, obj_ids: set[int]) -> None:
    """Remove ended objects from a SAM 2 session (ids re-indexed, as ``Sam3VideoInferenceSession.remove_object``
    does for SAM 3): their memories are freed and no later frame computes them."""
    if not obj_ids:
        return
    keep = [o for o in session.obj_ids if o not in obj_ids]
    old_idx = {o: session._obj_id_to_idx[o] for o in session.obj_ids}
    for name in ("point_inputs_per_obj", "mask_inputs_per_obj", "output_dict_per_obj", "frames_tracked_per_obj"):
        table = getattr(session, name)
        kept = {new: table[old_idx[o]] for new, o in enumerate(keep)}
        table.clear()
        table.update(kept)
    session._obj_id_to_idx.clear()
    session._obj_idx_to_id.clear()
    for new, o in enumerate(keep):
        session._obj_id_to_idx[o] = new
        session._obj_idx_to_id[new] = o
    session.obj_ids = list(keep)
    session.obj_with_new_inputs = [o for o in session.obj_with_new_inputs if o not in obj_ids]
