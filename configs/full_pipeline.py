# The default pipeline: RAM++ tags -> Grounding DINO boxes per boxable tag -> TAP masks,
# region concepts and captions. Official checkpoints, downloaded and cached on first use
# (or found in --checkpoint-dir / $OPENVOCAB_CHECKPOINT_DIR).
_base_ = './_base_/runtime.py'
custom_imports = dict(imports=['tagging', 'grounding'], allow_failed_imports=False)

# 1. tagger: RAM++ Swin-L 384, the 4585 official tags (+ optional open-set tags file)
tagger = dict(type='RAMPlusTagger', variant='swin_l_384', checkpoint='ram_plus_swin_large_14m',
              openset=None)
# 2. boxable filter: only object-like tags reach the detector; all tags stay image tags
boxable_filter = dict(type='WordNetBoxableFilter')
# 3. detector: Grounding DINO Swin-T OGC
detector = dict(type='GroundingDINODetector', variant='swint_ogc', checkpoint='groundingdino_swint_ogc',
                box_threshold=0.35, text_threshold=0.25, nms_iou=0.5)
# 4. mask head: TAP ViT-L with the 2560-concept vocabulary
mask_head = dict(type='TAPMaskHead', variant='vit_l', checkpoint='tap_vit_l_v1_1', concepts='merged_2560')
