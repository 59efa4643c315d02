# Tags only: RAM++ Swin-L 384 (no detector, no masks). Used by `openvocab tag`.
_base_ = './_base_/runtime.py'
custom_imports = dict(imports=['tagging'], allow_failed_imports=False)

tagger = dict(type='RAMPlusTagger', variant='swin_l_384', checkpoint='ram_plus_swin_large_14m')
boxable_filter = dict(type='WordNetBoxableFilter')
