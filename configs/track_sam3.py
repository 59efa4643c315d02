# Videos by text: RAM++ tags the keyframes, and the video's boxable tags are SAM 3's text prompts
# (Sam3VideoModel): it finds, segments and tracks every instance of each tag on every sampled frame. A track's label
# is the prompt that found it. With --vocab the vocabulary is the prompt list and nothing is tagged.
# facebook/sam3 is gated: accept its licence on the Hugging Face hub, then log in or use --checkpoint-dir.
_base_ = './_base_/runtime.py'
custom_imports = dict(imports=['tagging', 'grounding'], allow_failed_imports=False)

tagger = dict(type='RAMPlusTagger', variant='swin_l_384', checkpoint='ram_plus_swin_large_14m')
boxable_filter = dict(type='WordNetBoxableFilter')
tracker = dict(type='Sam3VideoTracker', model='facebook/sam3', keyframe_interval=30, window=16)
video = dict(fps=None, stride=None, scene_cut=0.5)
