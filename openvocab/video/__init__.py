"""Videos: decoding and sampling (:mod:`.source`), scene cuts (:mod:`.scenes`), tracking (:mod:`.tracking`, the
``TRACKERS`` registry; ByteTrack in :mod:`.bytetrack`, SAM 2 / SAM 3 registered by ``grounding.video``), one video
through the pipeline's steps (:mod:`.label`), the durable per-frame record (:mod:`.record`) and the job's video side
(:mod:`.job`).

A video is one input of ``openvocab label``: its sampled frames go through the same pipeline steps as images
(``Pipeline.run`` on keyframes, or on every frame for box trackers), a tracker gives each object an ID that never
changes class and never crosses a scene cut, and the video's frames are recorded as they finish so memory stays
flat however long the video. Nothing here is imported by ``import openvocab``; PyAV is imported on first use.
"""
