# A pipeline made only of components from the stand-alone test plugin package.
custom_imports = dict(imports=['toy_plugin'], allow_failed_imports=False)
tagger = dict(type='BrightnessTagger', threshold=127.0)
boxable_filter = dict(type='ListBoxableFilter', not_boxable=['bright', 'dark'])
detector = dict(type='CentreBoxDetector')
mask_head = dict(type='BoxMaskHead')
