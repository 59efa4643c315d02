# Label by example with CLIPSeg visual prompts (masks): each class's example crops are CLIPSeg's prompt images (their
# CLIP embeddings averaged), and it predicts the class's mask in every image; each connected region is one
# instance. Classes named in --vocab are boxed by Grounding DINO and segmented by TAP, which also gives every
# instance (CLIPSeg's too, its masks kept) region concepts and a caption.
#   openvocab label photos/ --out runs/ex --config examples_clipseg --examples crops/ [--vocab "cat, dog"]
_base_ = './_base_/runtime.py'
custom_imports = dict(imports=['grounding'], allow_failed_imports=False)

detector = dict(type='GroundingDINODetector', variant='swint_ogc', checkpoint='groundingdino_swint_ogc',
                box_threshold=0.35, text_threshold=0.25, nms_iou=0.5)
mask_head = dict(type='TAPMaskHead', variant='vit_l', checkpoint='tap_vit_l_v1_1', concepts='merged_2560')
exemplar_detector = dict(type='CLIPSegExemplarSegmenter', model='CIDAS/clipseg-rd64-refined', threshold=0.5,
                         min_area=0.001, split='components')
