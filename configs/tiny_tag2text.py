# The whole toolchain with captions, from TINY, RANDOMLY INITIALISED models: tiny_random's RAM++ -> Grounding
# DINO -> TAP chain plus a tiny Tag2Text captioner guided by the tiny RAM++ tags. Nothing is downloaded; tags,
# boxes, masks and captions are MEANINGLESS (random weights). For tests and smoke runs of full_pipeline_tag2text.
_base_ = './tiny_random.py'

captioner = dict(type='Tag2TextCaptioner', variant='tiny', checkpoint=None, seed=0)
