# Videos with masks: RAM++ tags -> Grounding DINO boxes -> TAP masks, concepts and captions on keyframes (every
# keyframe_interval sampled frames, and the first frame after a scene cut); each new object is handed to SAM 2.1's
# video model as a box prompt and its mask propagated to every sampled frame. At each keyframe the detections are
# matched to the live tracks of their own class (mask IoU), unmatched ones start tracks, tracks lost for
# lost_after keyframes end. A track keeps the tag, concepts and caption of its detections.
# This is also what a job does for videos with any config that has a mask head and no tracker of its own.
_base_ = './_base_/runtime.py'
custom_imports = dict(imports=['tagging', 'grounding'], allow_failed_imports=False)

tagger = dict(type='RAMPlusTagger', variant='swin_l_384', checkpoint='ram_plus_swin_large_14m')
boxable_filter = dict(type='WordNetBoxableFilter')
detector = dict(type='GroundingDINODetector', variant='swint_ogc', checkpoint='groundingdino_swint_ogc',
                box_threshold=0.35, text_threshold=0.25, nms_iou=0.5)
mask_head = dict(type='TAPMaskHead', variant='vit_l', checkpoint='tap_vit_l_v1_1', concepts='merged_2560')
# model: a SAM 2 / SAM 2.1 video checkpoint (Sam2VideoModel) or SAM 3's tracker (Sam3TrackerVideoModel, facebook/sam3)
tracker = dict(type='Sam2VideoTracker', model='facebook/sam2.1-hiera-large', keyframe_interval=10, match_iou=0.3,
               lost_after=2, window=16)
video = dict(fps=None, stride=None, scene_cut=0.5)
