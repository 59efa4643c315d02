# Grounding DINO Swin-T through transformers (HFDetector) with a user vocabulary (--vocab, default COCO-80),
# boxes only. The same numbers as the native detector (detect_segment.py without masks) on the same weights.
_base_ = ['./_base_/runtime.py', './_base_/coco80.py']
custom_imports = dict(imports=['grounding'], allow_failed_imports=False)

detector = dict(type='HFDetector', model='IDEA-Research/grounding-dino-tiny', processor_backend='pil',
                box_threshold=0.35, text_threshold=0.25, nms_iou=0.5)
