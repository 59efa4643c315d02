# Tag2Text Swin-B 384: its 3429 official tags and a caption per image (no detector, no masks). Used by
# `openvocab tag` and `openvocab caption`.
# The same stage captions images (registered as Tag2TextCaptioner too): 3 beams, at most 50 tokens with the
# prompt, as the official inference.
_base_ = './_base_/runtime.py'
custom_imports = dict(imports=['tagging'], allow_failed_imports=False)

tagger = dict(type='Tag2TextTagger', variant='swin_b_384', checkpoint='tag2text_swin_14m')
captioner = dict(type='Tag2TextCaptioner', variant='swin_b_384', checkpoint='tag2text_swin_14m')  # the same model
boxable_filter = dict(type='WordNetBoxableFilter')
