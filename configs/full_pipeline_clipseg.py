# The default pipeline (full_pipeline.py) plus CLIPSeg masks for stuff: the tags kept away from the detector that
# name stuff (sky, grass, water, snow...) get text-prompted masks, written like any other mask (COCO segmentation
# with the tag's name; the box is the mask's bounding box). WordNet calls some stuff an object (sky, grass,
# road...): the boxable filter's not_boxable list sends those to CLIPSeg instead of the detector.
_base_ = './_base_/runtime.py'
custom_imports = dict(imports=['tagging', 'grounding'], allow_failed_imports=False)

# stuff tags of the RAM++ tag list (COCO-Stuff's kinds of region); only these get CLIPSeg masks
stuff = ['sky', 'blue sky', 'night sky', 'cloud', 'grass', 'lawn', 'grassland', 'field', 'road', 'pavement', 'sea',
         'lake', 'river', 'wave', 'water', 'beach', 'sand', 'desert', 'snow', 'snowfield', 'ice', 'dirt', 'mud',
         'gravel', 'mountain', 'hill', 'forest', 'wall', 'floor', 'ceiling', 'fog', 'smoke']

tagger = dict(type='RAMPlusTagger', variant='swin_l_384', checkpoint='ram_plus_swin_large_14m', openset=None)
boxable_filter = dict(type='WordNetBoxableFilter', not_boxable=stuff)
detector = dict(type='GroundingDINODetector', variant='swint_ogc', checkpoint='groundingdino_swint_ogc',
                box_threshold=0.35, text_threshold=0.25, nms_iou=0.5)
mask_head = dict(type='TAPMaskHead', variant='vit_l', checkpoint='tap_vit_l_v1_1', concepts='merged_2560')
# stuff masks: CLIPSeg on the stuff tags among the tags that are not boxable
stuff_segmenter = dict(type='CLIPSegSegmenter', model='CIDAS/clipseg-rd64-refined', tags=stuff, threshold=0.5,
                       min_area=0.001)
