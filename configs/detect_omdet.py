# OmDet-Turbo Swin-T through transformers (HFDetector) with a user vocabulary (--vocab, default COCO-80), boxes only.
# Its released checkpoint builds the Swin backbone with timm: pip install timm.
_base_ = ['./_base_/runtime.py', './_base_/coco80.py']
custom_imports = dict(imports=['grounding'], allow_failed_imports=False)

detector = dict(type='HFDetector', model='omlab/omdet-turbo-swin-tiny-hf', box_threshold=0.3, nms_iou=0.5)
