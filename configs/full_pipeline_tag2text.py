# The default chain (RAM++ -> WordNet boxable filter -> Grounding DINO -> TAP) plus an image caption per image by
# Tag2Text (Swin-B 384, 3 beams), guided by the RAM++ tags (--caption-tags: your own tags instead).
_base_ = './full_pipeline.py'

captioner = dict(type='Tag2TextCaptioner', variant='swin_b_384', checkpoint='tag2text_swin_14m')
