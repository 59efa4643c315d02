# Tags only: RAM (v1) Swin-L 384, the 4585 official tags with English and Chinese names (no detector, no
# masks). Used by `openvocab tag`. tag_language='zh' writes the Chinese names as the tags' names.
_base_ = './_base_/runtime.py'
custom_imports = dict(imports=['tagging'], allow_failed_imports=False)

tagger = dict(type='RAMTagger', variant='swin_l_384', checkpoint='ram_swin_large_14m', tag_language='en')
boxable_filter = dict(type='WordNetBoxableFilter')
