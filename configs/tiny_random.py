# The full pipeline wired from TINY, RANDOMLY INITIALISED versions of the real components.
# Nothing is downloaded. Its outputs are MEANINGLESS (random weights): it exists for tests and
# smoke runs of the whole toolchain (I/O, writers, resume, CLI), not for labeling.
_base_ = './_base_/runtime.py'
custom_imports = dict(imports=['tagging', 'grounding'], allow_failed_imports=False)

# class_thresholds=0.0: random weights score every tag low, so keep them all (smoke runs should
# reach the detector and mask head on any image; max_detections caps the boxes)
tagger = dict(type='RAMPlusTagger', variant='tiny', checkpoint=None, seed=0, class_thresholds=0.0)
boxable_filter = dict(type='ListBoxableFilter', not_boxable=['sky', 'sunset', 'running', 'red', 'indoor', 'outdoor'])
# resize: the tiny model sees 128 px (short side) images, as the tiny TAP does: smoke runs stay fast
detector = dict(type='GroundingDINODetector', variant='tiny', checkpoint=None, box_threshold=0.0,
                text_threshold=0.0, max_detections=5, seed=0, resize=(128, 213))
mask_head = dict(type='TAPMaskHead', variant='tiny', checkpoint=None, seed=0,
                 concepts=dict(names=['person', 'dog', 'cat', 'car', 'bicycle', 'tree', 'building', 'grass'],
                               text_encoder='random'))  # random concept vectors: exercises concepts end to end
