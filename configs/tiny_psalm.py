# PSALM's faces wired from TINY, RANDOMLY INITIALISED models: nothing is downloaded, outputs are MEANINGLESS; for
# tests and smoke runs. RAM++ (tiny) tags -> PSALM detector (category list; `openvocab detect "text"`: referring)
# -> PSALM mask head on its boxes; segmenter face: tiny_tag_psalm.py. Both PSALM stages share one loaded model.
_base_ = './_base_/runtime.py'
custom_imports = dict(imports=['tagging', 'grounding'], allow_failed_imports=False)

tagger = dict(type='RAMPlusTagger', variant='tiny', checkpoint=None, seed=0, class_thresholds=0.0)
boxable_filter = dict(type='ListBoxableFilter', not_boxable=['sky', 'sunset', 'running', 'red', 'indoor', 'outdoor'])
detector = dict(type='PSALMDetector', checkpoint=None, variant='tiny', seed=0, threshold=0.0, max_detections=5)
mask_head = dict(type='PSALMMaskHead', checkpoint=None, variant='tiny', seed=0)
