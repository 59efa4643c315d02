# OWLv2 B/16 (ensemble) through transformers (HFDetector) with a user vocabulary (--vocab, default COCO-80), boxes
# only; one text query per class. OWL-ViT: detector.model='google/owlvit-base-patch32'.
_base_ = ['./_base_/runtime.py', './_base_/coco80.py']
custom_imports = dict(imports=['grounding'], allow_failed_imports=False)

detector = dict(type='HFDetector', model='google/owlv2-base-patch16-ensemble', text_template='a photo of a {}',
                box_threshold=0.2, nms_iou=0.5)
