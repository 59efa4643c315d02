# MM-Grounding-DINO Swin-T through transformers (HFDetector) with a user vocabulary (--vocab, default COCO-80),
# boxes only. LLMDet weights are the same model type: detector.model='iSEE-Laboratory/llmdet_tiny'.
_base_ = ['./_base_/runtime.py', './_base_/coco80.py']
custom_imports = dict(imports=['grounding'], allow_failed_imports=False)

detector = dict(type='HFDetector', model='openmmlab-community/mm_grounding_dino_tiny_o365v1_goldg_v3det',
                box_threshold=0.3, text_threshold=0.25, nms_iou=0.5)
