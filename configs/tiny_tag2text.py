# Tag2Text TINY and RANDOMLY INITIALISED, with its own small vocabulary: nothing is downloaded. Its tags and
# captions are MEANINGLESS (random weights); it exists for tests and smoke runs of the toolchain.
_base_ = './_base_/runtime.py'
custom_imports = dict(imports=['tagging'], allow_failed_imports=False)

tagger = dict(type='Tag2TextTagger', variant='tiny', checkpoint=None, seed=0)
boxable_filter = dict(type='ListBoxableFilter', not_boxable=['sky', 'sunset', 'running', 'red', 'blue', 'night'])
