# RAM++ tags -> SAM 3 concept segmentation: every boxable tag is a concept prompt, and SAM 3 finds each of its
# instances with a box and a mask (a segmenter in place of detector + mask head). facebook/sam3 is gated: accept
# its licence on the Hugging Face hub, then log in (hf auth login) or download it into --checkpoint-dir.
_base_ = './_base_/runtime.py'
custom_imports = dict(imports=['tagging', 'grounding'], allow_failed_imports=False)

tagger = dict(type='RAMPlusTagger', variant='swin_l_384', checkpoint='ram_plus_swin_large_14m')
boxable_filter = dict(type='WordNetBoxableFilter')
segmenter = dict(type='Sam3Segmenter', model='facebook/sam3', threshold=0.5, mask_threshold=0.5,
                 agnostic_nms_iou=0.7)
