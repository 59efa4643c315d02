# Label by example with SAM 3 exemplars ("find all like this"): boxes drawn on an image make SAM 3 find every
# similar instance in that image, with masks. SAM 3 takes exemplars on the image it segments, so a job labels each
# example class in the images that hold its examples (list those images among the inputs). Classes named in --vocab
# are SAM 3 concept prompts on every image, in the same job. facebook/sam3 is gated: accept its licence on the
# Hugging Face hub first.
#   openvocab label photos/ --out runs/ex --config examples_sam3 --examples examples.json [--vocab "cat, dog"]
_base_ = './_base_/runtime.py'
custom_imports = dict(imports=['grounding'], allow_failed_imports=False)

segmenter = dict(type='Sam3Segmenter', model='facebook/sam3', threshold=0.5, mask_threshold=0.5, agnostic_nms_iou=0.7)
exemplar_detector = dict(type='Sam3ExemplarSegmenter', model='facebook/sam3', threshold=0.5, mask_threshold=0.5,
                         agnostic_nms_iou=0.7)
