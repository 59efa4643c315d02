# `openvocab eval ... --normaliser tools/eval_synonyms`: predicted tags are matched to ground-truth
# class/tag names through the text tools' synonym normaliser (plural forms and WordNet synonyms, e.g.
# "automobile" and "cars" count as "car"). Two ground-truth names are never merged. WordNet installs
# with ./install.sh.
custom_imports = dict(imports=['tagging.text'], allow_failed_imports=False)

normaliser = dict(
    type='VocabularyNormaliser',
    merge_synonyms=True,   # also merge names whose main WordNet noun sense is the same
)
