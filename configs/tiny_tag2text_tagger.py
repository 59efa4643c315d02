# Tag2Text TINY and RANDOMLY INITIALISED, with its own small vocabulary, as tagger and captioner (one model):
# nothing is downloaded. Its tags and captions are MEANINGLESS (random weights); for tests and smoke runs.
_base_ = './_base_/runtime.py'
custom_imports = dict(imports=['tagging'], allow_failed_imports=False)

tagger = dict(type='Tag2TextTagger', variant='tiny', checkpoint=None, seed=0)
captioner = dict(type='Tag2TextCaptioner', variant='tiny', checkpoint=None, seed=0)  # the same model
boxable_filter = dict(type='ListBoxableFilter', not_boxable=['sky', 'sunset', 'running', 'red', 'blue', 'night'])
