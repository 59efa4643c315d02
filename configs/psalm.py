# PSALM as a detector. Free-text grounding (referring segmentation: the referred mask and its box):
#   openvocab detect "the man on the left holding a cup" photo.jpg --config psalm
# and `openvocab label --config psalm` with a user vocabulary (--vocab, default COCO-80): PSALM's category-list
# prompt, the box of each instance mask (boxes only: tag_psalm.py keeps the masks).
_base_ = ['./_base_/runtime.py', './_base_/coco80.py']
custom_imports = dict(imports=['grounding'], allow_failed_imports=False)

detector = dict(type='PSALMDetector', checkpoint='EnmingZhang/PSALM', threshold=0.3, text_top_k=1)
