import pytest

from grounding.prompt import PromptChunker, TagPromptBuilder, normalise_tag
from openvocab.boxable import ListBoxableFilter
from openvocab.registry import BOXABLE_FILTERS


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


def test_boxable_filter_is_its_own_registered_stage():
    f = BOXABLE_FILTERS.build(dict(type="ListBoxableFilter", not_boxable=["Sky"]))
    assert not f.is_boxable("sky") and f.is_boxable("dog")
    assert ListBoxableFilter(not_boxable=["sky"], boxable=["sky"]).is_boxable("sky")


def test_spans_keep_the_callers_tag_names():
    (p,) = TagPromptBuilder().build(["St. Bernard", "cat", "ST  bernard"], words, 256)
    assert p.names == ["st bernard", "cat"] and p.labels == ["St. Bernard", "cat"]


def test_chunker_builds_each_vocabulary_once_and_counts_tokens_only_then():
    counted = []

    def count(text):
        counted.append(text)
        return words(text)

    chunker = PromptChunker(count_tokens=count, max_tokens=12, cache_size=2)
    vocab = [f"tag{i}" for i in range(10)]
    first = chunker(vocab)
    n = len(counted)
    assert len(first) > 1 and [l for p in first for l in p.labels] == vocab
    for _ in range(5):
        assert chunker(vocab) is first
    assert len(counted) == n and chunker.builds == 1
    chunker(["a"]), chunker(["b"])  # evicts the least recently used vocabulary
    assert chunker(vocab) == first and chunker.builds == 4
    assert chunker([]) == ()
    built = PromptChunker(count_tokens=words, max_tokens=256,
                          builder=dict(type="TagPromptBuilder", max_tags_per_prompt=1))(["a", "b"])
    assert [p.caption for p in built] == ["a .", "b ."]
