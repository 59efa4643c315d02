"""WordNetBoxableFilter: objects vs scenes/actions/attributes, overrides, RAM++ tag split."""
from __future__ import annotations

import json

import pytest

from openvocab.registry import BOXABLE_FILTERS
from tagging.text.boxable import WordNetBoxableFilter, read_override_file
from tagging.text.boxable_report import main as report_main
from tagging.text.resources import load_wordnet


@pytest.fixture(scope="module")
def filt():
    load_wordnet()  # fails with the clear "run openvocab-setup-wordnet" error when WordNet is missing
    return WordNetBoxableFilter()


@pytest.mark.parametrize("tag,category,pos", [
    ("sunset", "scene", "n"), ("running", "action", "n"), ("red", "attribute", "a"),
    ("walk", "action", "v"), ("water", "substance", "n"), ("crowd", "group", "n"),
    ("happiness", "abstract", "n"),
])
def test_not_boxable(filt, tag, category, pos):
    c = filt.classify(tag)
    assert (c.boxable, c.category, c.pos, c.source) == (False, category, pos, "wordnet")
    assert not filt.is_boxable(tag)


@pytest.mark.parametrize("tag,lexname", [
    ("dog", "noun.animal"), ("fire hydrant", "noun.artifact"), ("cup", "noun.artifact"),
    ("Fire Hydrant", "noun.artifact"), ("person", "noun.Tops"), ("man", "noun.person"),
    ("tree", "noun.plant"), ("glass", "noun.artifact"),  # the vessel: its sense is >= half as frequent
    ("building", "noun.artifact"),  # an inflected verb that is also a noun reads as the noun
    ("chihuahua", "noun.animal"),  # no sense counts: the first object sense, not the Mexican state
])
def test_boxable(filt, tag, lexname):
    c = filt.classify(tag)
    assert c.boxable and c.category == "object" and c.lexname == lexname and c.tag == tag


def test_multiword_without_entry_uses_head_noun(filt):
    c = filt.classify("3D glasses")
    assert (c.boxable, c.source, c.word, c.synset) == (True, "head_noun", "glasses", "spectacles.n.01")
    c = filt.classify("autumn forest")
    assert (c.boxable, c.source, c.word, c.category) == (False, "head_noun", "forest", "group")
    c = filt.classify("stop at")
    assert (c.boxable, c.word, c.category) == (False, "stop", "action")


def test_unknown_words(filt):
    c = filt.classify("iphone")
    assert (c.boxable, c.category, c.source) == (True, "unknown", "unknown")
    assert not WordNetBoxableFilter(unknown_boxable=False).is_boxable("iphone")


def test_overrides(tmp_path):
    f = WordNetBoxableFilter(boxable=["Sunset"], not_boxable=["dog"])
    assert f.is_boxable("sunset") and not f.is_boxable("Dog")
    assert f.classify("dog").source == "override"
    assert f.is_boxable("cup") and not f.is_boxable("running")
    txt = tmp_path / "overrides.txt"
    txt.write_text("# my overrides\n+ red   # a red light is boxable here\n- cup\n")
    f = WordNetBoxableFilter(override_file=str(txt), boxable=["sunset"])
    assert f.is_boxable("red") and not f.is_boxable("cup") and f.is_boxable("sunset")
    js = tmp_path / "overrides.json"
    js.write_text(json.dumps({"boxable": ["running"], "not_boxable": ["tree"]}))
    assert read_override_file(js) == (["running"], ["tree"])
    f = WordNetBoxableFilter(override_file=str(js))
    assert f.is_boxable("running") and not f.is_boxable("tree")


def test_bad_overrides(tmp_path):
    with pytest.raises(ValueError, match="both boxable and not boxable"):
        WordNetBoxableFilter(boxable=["dog"], not_boxable=["DOG"])
    bad = tmp_path / "bad.txt"
    bad.write_text("dog\n")
    with pytest.raises(ValueError, match="bad.txt:1"):
        WordNetBoxableFilter(override_file=str(bad))
    with pytest.raises(ValueError, match="cannot read"):
        WordNetBoxableFilter(override_file=str(tmp_path / "missing.txt"))
    with pytest.raises(ValueError):
        WordNetBoxableFilter().classify("  ")


def test_pipeline_sends_only_boxable_tags_to_the_detector(filt):
    from openvocab.pipeline import Pipeline
    from openvocab.structures import Tags, TagSource

    pipe = Pipeline(boxable_filter=dict(type="WordNetBoxableFilter", not_boxable=["cup"]))
    assert isinstance(pipe.boxable_filter, WordNetBoxableFilter)
    names = ["man", "bicycle", "fire hydrant", "sunset", "red", "ride", "cup"]
    pipe.tagger = type("FixedTagger", (), {"tag": lambda self, images: [Tags.from_names(
        names, source=TagSource.CLOSED_SET, score=0.9)]})()
    (tags,) = pipe.image_tags([None])
    assert [t.name for t in tags if t.boxable] == ["man", "bicycle", "fire hydrant"]
    assert isinstance(BOXABLE_FILTERS.build(dict(type="WordNetBoxableFilter")), WordNetBoxableFilter)


# a sample of the official RAM++ tag list (../shared/data/ram_plus/ram_tag_list.txt), classified by hand
RAM_SAMPLE = {
    "abacus": "object", "accordion": "object", "acorn": "object", "actor": "object",
    "adhesive tape": "object", "belly": "object", "3D glasses": "object", "hydrant": "object",
    "sunset": "scene", "city": "scene", "night": "scene",
    "swim": "action", "add": "action", "adjust": "action", "agriculture": "action",
    "red": "attribute", "blue": "attribute",
    "fog": "substance", "academy": "group", "advertisement": "abstract",
}


def test_split_report_on_ram_sample(filt, shared_dir):
    ram = set(shared_dir.joinpath("data/ram_plus/ram_tag_list.txt").read_text().splitlines())
    assert set(RAM_SAMPLE) <= ram
    for tag, category in RAM_SAMPLE.items():
        assert filt.classify(tag).category == category, tag
    report = filt.split_report(list(RAM_SAMPLE))
    assert report["total"] == 20 and report["boxable"] == 8 and report["not_boxable"] == 12
    assert report["categories"] == {"object": 8, "action": 4, "scene": 3, "attribute": 2,
                                    "substance": 1, "group": 1, "abstract": 1}
    assert report["head_noun"] == {"3D glasses": "glasses"}
    assert report["unknown"] == []


def test_full_ram_split_matches_docs(filt, shared_dir):
    """Every number of docs/boxable_split.md, recomputed from the official 4585-tag list."""
    import re
    from collections import Counter
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "boxable_split.md").read_text()
    tags = shared_dir.joinpath("data/ram_plus/ram_tag_list.txt").read_text().splitlines()
    report = filt.split_report(tags)
    classes = [filt.classify(t) for t in tags]
    assert (report["total"], report["boxable"], report["not_boxable"]) == (4585, 3273, 1312)

    def num(pattern: str) -> int:
        found = re.search(pattern, doc, flags=re.S)
        assert found, pattern
        return int(found.group(1))

    assert num(r"\*\*boxable\*\* \| \*\*(\d+)\*\*") == report["boxable"]
    assert num(r"\| not boxable \| (\d+) \|") == report["not_boxable"]
    assert f"{100 * report['boxable'] / 4585:.1f}%" in doc and f"{100 * report['not_boxable'] / 4585:.1f}%" in doc
    rows = dict(re.findall(r"^\| (object|unknown|action|abstract|attribute|scene|substance|group)\b[^|]*\| (\d+) \|",
                           doc, flags=re.M))
    assert {k: int(v) for k, v in rows.items()} == report["categories"]
    object_row = re.search(r"^\| object \|.*$", doc, flags=re.M).group(0)
    assert {k: int(v) for k, v in re.findall(r"`(noun\.\w+)` (\d+)", object_row)} == dict(
        Counter(c.lexname for c in classes if c.category == "object"))
    pos = Counter(c.pos for c in classes)
    assert num(r"verbs \((\d+) tags read as verbs\)") == pos["v"]
    assert num(r"adjectives \((\d+)\)") == pos["a"] and num(r"adverbs \((\d+)\)") == pos["r"]
    assert num(r"By source: (\d+) tags have a WordNet entry") == report["sources"]["wordnet"]
    assert num(r"(\d+) are classified by their head noun") == report["sources"]["head_noun"]
    assert num(r"(\d+) are unknown to WordNet") == report["sources"]["unknown"]
    assert num(r"\*\*(\d+) multi-word tags classified by their head noun\*\*") == len(report["head_noun"])
    assert num(r"head noun\*\* \((\d+) boxable\)") == sum(c.boxable for c in classes if c.source == "head_noun")
    unknown = re.search(r"\*\*(\d+) tags unknown to WordNet\*\* \(all boxable by default\): (.*?)\.\n", doc, flags=re.S)
    assert int(unknown.group(1)) == len(report["unknown"])
    assert [t.strip() for t in unknown.group(2).split(";")] == report["unknown"]
    # the examples the page names
    for tag, head in [("3D glasses", "glasses"), ("bathroom sink", "sink"), ("city street", "street"),
                      ("autumn forest", "forest"), ("horror film", "film"), ("play tennis", "tennis"),
                      ("stop at", "stop")]:
        assert report["head_noun"][tag] == head


def test_report_script(tmp_path, capsys, filt):
    tags = tmp_path / "tags.txt"
    tags.write_text("dog\ncup\nsunset\nred\nrunning\niphone\n")
    assert report_main([str(tags)]) == 0
    out = capsys.readouterr().out
    assert "tags: 6" in out and "boxable: 3 (50.0%)" in out and "not boxable: 3 (50.0%)" in out
    assert "unknown to WordNet (1):\n  iphone" in out
    assert report_main([str(tags), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["categories"]["object"] == 2
    assert report_main([str(tags), "--list", "action"]) == 0
    assert capsys.readouterr().out.split() == ["running"]
    assert report_main([str(tmp_path / "nope.txt")]) == 1
