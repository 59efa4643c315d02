# tag_psalm.py with TINY, RANDOMLY INITIALISED models: nothing is downloaded, outputs are MEANINGLESS; for tests
# and smoke runs of PSALM as a segmenter (tags -> instance masks).
_base_ = './_base_/runtime.py'
custom_imports = dict(imports=['tagging', 'grounding'], allow_failed_imports=False)

tagger = dict(type='RAMPlusTagger', variant='tiny', checkpoint=None, seed=0, class_thresholds=0.0)
boxable_filter = dict(type='ListBoxableFilter', not_boxable=['sky', 'sunset', 'running', 'red', 'indoor', 'outdoor'])
segmenter = dict(type='PSALMSegmenter', checkpoint=None, variant='tiny', seed=0, threshold=0.0, max_detections=5)
