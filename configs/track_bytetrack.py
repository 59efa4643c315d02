# Videos, boxes only: RAM++ tags -> Grounding DINO boxes on every sampled frame -> ByteTrack IDs (Roboflow's
# trackers library), one tracker per class so an ID never changes class, every track ended at a scene cut.
# Images labeled with this config get tags and boxes. Any detector works on video frames unchanged: a child
# config swaps it with one line, e.g. _base_ = 'track_bytetrack.py'; detector = dict(type='HFDetector', ...).
# pip install 'openvocab[video]'; openvocab label clip.mp4 --config track_bytetrack --fps 5 --formats mot,coco --vis
_base_ = './_base_/runtime.py'
custom_imports = dict(imports=['tagging', 'grounding'], allow_failed_imports=False)

tagger = dict(type='RAMPlusTagger', variant='swin_l_384', checkpoint='ram_plus_swin_large_14m')
boxable_filter = dict(type='WordNetBoxableFilter')
detector = dict(type='GroundingDINODetector', variant='swint_ogc', checkpoint='groundingdino_swint_ogc',
                box_threshold=0.35, text_threshold=0.25, nms_iou=0.5)
# lost_track_buffer: frames at 30 fps a lost track waits (ByteTrack's unit; timestamps make it seconds * 30)
tracker = dict(type='ByteTrackTracker', lost_track_buffer=30, track_activation_threshold=0.35,
               minimum_consecutive_frames=1, minimum_iou_threshold=0.1, high_conf_det_threshold=0.45)
# fps / stride: which frames are labeled (--fps / --stride win); scene_cut: histogram distance of a cut (None: off)
video = dict(fps=None, stride=None, scene_cut=0.5)
