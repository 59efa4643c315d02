# Grounding DINO boxes -> PSALM masks: PSALM's interactive segmentation as the mask head (a box prompt per box,
# all boxes of an image in one forward pass), in place of TAP/SAM. User vocabulary (--vocab, default COCO-80).
_base_ = ['./_base_/runtime.py', './_base_/coco80.py']
custom_imports = dict(imports=['grounding'], allow_failed_imports=False)

detector = dict(type='GroundingDINODetector', variant='swint_ogc', checkpoint='groundingdino_swint_ogc',
                box_threshold=0.35, text_threshold=0.25, nms_iou=0.5)
mask_head = dict(type='PSALMMaskHead', checkpoint='EnmingZhang/PSALM')
