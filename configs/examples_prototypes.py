# Label by example with prototype matching, on any mask head: SAM's automatic mode proposes every region of an
# image (a 16 x 16 grid of point prompts), DINOv2 embeds each region, and a region goes to the nearest example
# prototype when its similarity reaches the class's threshold, calibrated from the examples by leave-one-out (the
# job prints the thresholds). Classes named in --vocab are boxed by Grounding DINO; TAP segments every box (its
# concepts and captions), the matched proposals keeping their SAM masks.
#   openvocab label photos/ --out runs/ex --config examples_prototypes --examples examples.json [--vocab "cat, dog"]
# Boxes from OWLv2's objectness instead of a mask head:
#   --cfg-options "exemplar_detector.proposer=dict(kind=objectness,model=google/owlv2-base-patch16-ensemble)"
_base_ = './_base_/runtime.py'
custom_imports = dict(imports=['grounding'], allow_failed_imports=False)

detector = dict(type='GroundingDINODetector', variant='swint_ogc', checkpoint='groundingdino_swint_ogc',
                box_threshold=0.35, text_threshold=0.25, nms_iou=0.5)
mask_head = dict(type='TAPMaskHead', variant='vit_l', checkpoint='tap_vit_l_v1_1', concepts='merged_2560')
exemplar_detector = dict(
    type='PrototypeMatcher', threshold=None, default_threshold=0.7, nms_iou=0.5, max_detections=100,
    encoder=dict(model='facebook/dinov2-small', context=0.1, mask_background=True),
    proposer=dict(kind='mask_head', mask_head=dict(type='HFSamMaskHead', model='facebook/sam-vit-huge'),
                  points_per_side=16, min_score=0.8, nms_iou=0.7, max_proposals=200))
