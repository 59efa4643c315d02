import pytest

from openvocab.prompt import ListBoxableFilter, TagPromptBuilder, normalise_tag
from openvocab.registry import PROMPT_BUILDERS


def words(text: str) -> int:  # a stand-in tokenizer: one token per word or dot, + [CLS]/[SEP]
    return len(text.replace(".", " . ").split()) + 2


def test_caption_and_spans_official_convention():
    (p,) = TagPromptBuilder().build(["cat", "Fire  Hydrant", "cat", "St. Bernard"], words, 256)
    assert p.caption == "cat . fire hydrant . st bernard ."
    assert [(s.name, p.caption[s.start:s.end]) for s in p.spans] == [
        ("cat", "cat"), ("fire hydrant", "fire hydrant"), ("st bernard", "st bernard")]
    assert normalise_tag(" A.B  c ") == "a b c"


def test_long_vocabulary_is_chunked_under_the_limit_and_keeps_every_tag():
    names = [f"thing{i} part" for i in range(1000)]
    prompts = TagPromptBuilder().build(names, words, 256)
    assert len(prompts) > 1
    assert all(words(p.caption) <= 256 for p in prompts)
    assert [n for p in prompts for n in p.names] == names
    # chunks are full: adding the next tag would have crossed the limit
    for p, nxt in zip(prompts, prompts[1:]):
        assert words(p.caption + " " + nxt.names[0] + " .") > 256


def test_max_tags_per_prompt_and_oversized_tag():
    prompts = TagPromptBuilder(max_tags_per_prompt=2).build(list("abcde"), words, 256)
    assert [p.names for p in prompts] == [["a", "b"], ["c", "d"], ["e"]]
    with pytest.raises(ValueError, match="alone is longer"):
        TagPromptBuilder().build(["a " * 300], words, 256)


def test_boxable_filter_from_config():
    b = PROMPT_BUILDERS.build(dict(type="TagPromptBuilder",
                                   boxable_filter=dict(type="ListBoxableFilter", not_boxable=["Sky"])))
    assert not b.is_boxable("sky") and b.is_boxable("dog")
    assert ListBoxableFilter(not_boxable=["sky"], boxable=["sky"]).is_boxable("sky")
