# RAM++ tags -> PSALM with the boxable tags as its category list: an instance mask (and its box) for each object
# PSALM finds of those classes, in one forward pass per image (a segmenter in place of detector + mask head).
# EnmingZhang/PSALM (Phi-1.5 + Swin-B, ~6 GB) is downloaded on first use; mode='panoptic' gives non-overlapping
# masks instead.
_base_ = './_base_/runtime.py'
custom_imports = dict(imports=['tagging', 'grounding'], allow_failed_imports=False)

tagger = dict(type='RAMPlusTagger', variant='swin_l_384', checkpoint='ram_plus_swin_large_14m')
boxable_filter = dict(type='WordNetBoxableFilter')
segmenter = dict(type='PSALMSegmenter', checkpoint='EnmingZhang/PSALM', mode='instance', threshold=0.3,
                 max_detections=100)
