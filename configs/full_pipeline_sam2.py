# As full_pipeline.py, with SAM 2.1 masks through transformers (HFSamMaskHead: masks and predicted IoU, no region
# concepts or captions). SAM or SAM-HQ instead: mask_head.model='facebook/sam-vit-huge' or
# 'syscv-community/sam-hq-vit-huge'.
_base_ = './_base_/runtime.py'
custom_imports = dict(imports=['tagging', 'grounding'], allow_failed_imports=False)

tagger = dict(type='RAMPlusTagger', variant='swin_l_384', checkpoint='ram_plus_swin_large_14m')
boxable_filter = dict(type='WordNetBoxableFilter')
detector = dict(type='GroundingDINODetector', variant='swint_ogc', checkpoint='groundingdino_swint_ogc',
                box_threshold=0.35, text_threshold=0.25, nms_iou=0.5)
mask_head = dict(type='HFSamMaskHead', model='facebook/sam2.1-hiera-large')
