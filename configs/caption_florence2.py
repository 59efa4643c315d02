# Captions only: Florence-2 base through transformers (Florence2Captioner), one caption per image.
# task='<DETAILED_CAPTION>' or '<MORE_DETAILED_CAPTION>' for a paragraph; model='florence-community/Florence-2-large'
# for the large model. Beam search as the model card's example (3 beams, at most 1024 new tokens).
_base_ = './_base_/runtime.py'
custom_imports = dict(imports=['grounding'], allow_failed_imports=False)

captioner = dict(type='Florence2Captioner', model='florence-community/Florence-2-base', task='<CAPTION>',
                 num_beams=3, max_new_tokens=1024)
