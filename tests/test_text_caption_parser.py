"""SpacyCaptionParser: captions -> tags of a tag list (spaCy + WordNet), built from its config."""
from __future__ import annotations

from pathlib import Path

import pytest
from mmengine.config import Config

from openvocab.registry import TOOLS
from tagging.text.caption_parser import SpacyCaptionParser, read_tag_list
from tagging.text.resources import load_wordnet

ROOT = Path(__file__).resolve().parents[1]
TAGS = ["man", "bicycle", "fire hydrant", "sunset", "red", "ride", "car", "couch", "park", "dog",
        "cat", "horse", "beach", "tennis racket", "child"]


@pytest.fixture(scope="module")
def parser():
    load_wordnet()  # fails with the clear "run openvocab-setup-wordnet" error when WordNet is missing
    return SpacyCaptionParser(tag_list=TAGS)


def test_issue_sentence(parser):
    # objects, compound noun, scene, attribute and action, in caption order; "riding" -> ride
    # although spaCy's small model lemmatises it as "rid" and parses "hydrant" as a modifier
    assert parser.parse(["A man riding a red bicycle past a fire hydrant at sunset"]) == [
        ["man", "ride", "red", "bicycle", "fire hydrant", "sunset"]]


def test_plurals_synonyms_and_unmatched_words(parser):
    out = parser.parse([
        "Three dogs and two cats",
        "An automobile parked next to a sofa",  # WordNet synonyms: car, couch; "parked" -> park
        "Two kids holding tennis rackets",  # kid -> child (synonym), plural compound
        "A photo of a yellow submarine",  # nothing of the tag list
        "",
    ])
    assert out == [["dog", "cat"], ["car", "park", "couch"], ["child", "tennis racket"], [], []]


def test_without_tag_list_returns_normalised_phrases():
    p = SpacyCaptionParser(tag_list=None)
    assert p.parse(["A man riding a red bicycle past a fire hydrant at sunset",
                    "Two kids holding tennis rackets near the fire hydrants",
                    "A photo of the dogs"]) == [
        ["man", "ride", "red", "bicycle", "fire hydrant", "sunset"],
        ["kid", "hold", "tennis racket", "fire hydrant"],
        ["dog"],  # "photo" is a framing word, ignored by default
    ]


def test_without_wordnet_only_exact_and_spacy_lemmas():
    p = SpacyCaptionParser(tag_list=TAGS, use_wordnet=False)
    assert p._wn is None
    assert p.parse(["An automobile parked next to a sofa", "Three dogs and two cats"]) == [
        ["park"], ["dog", "cat"]]


def test_real_ram_tag_list(shared_dir):
    p = SpacyCaptionParser(tag_list=str(shared_dir / "data/ram_plus/ram_tag_list.txt"))
    assert len(p.tags) == 4585
    assert p.parse(["A little girl eating an ice cream cone on the beach",
                    "A man riding a red bicycle past a fire hydrant at sunset"]) == [
        ["girl", "eat", "ice cream cone", "beach"],
        ["man", "ride", "red", "bicycle", "hydrant", "sunset"],  # the list has "hydrant" only
    ]


def test_batches_give_the_same_tags(parser):
    captions = ["Three dogs and two cats", "A man riding a horse on the beach",
                "An automobile parked next to a sofa", "A dog", "Sunset"]
    one_batch = parser.parse(captions)
    small = SpacyCaptionParser(tag_list=TAGS, batch_size=2).parse(captions)
    assert small == one_batch == [["dog", "cat"], ["man", "ride", "horse", "beach"],
                                  ["car", "park", "couch"], ["dog"], ["sunset"]]


def test_config_builds_the_parser(tmp_path):
    tags = tmp_path / "tags.txt"
    tags.write_text("dog\n\ncat\n fire hydrant \n")
    cfg = Config.fromfile(str(ROOT / "configs/tools/parse_captions.py"))
    assert cfg.parser.type == "SpacyCaptionParser" and cfg.parser.tag_list is None
    cfg.parser.tag_list = str(tags)
    p = TOOLS.build(cfg.parser)
    assert isinstance(p, SpacyCaptionParser) and p.tags == ["dog", "cat", "fire hydrant"]
    assert p.parse(["Dogs sniffing a fire hydrant"]) == [["dog", "fire hydrant"]]


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="not found"):
        SpacyCaptionParser(tag_list=str(tmp_path / "missing.txt"))
    with pytest.raises(ValueError, match="empty"):
        SpacyCaptionParser(tag_list=["", " "])
    with pytest.raises(ValueError):
        SpacyCaptionParser(tag_list=["dog"], batch_size=0)
    with pytest.raises(ValueError):
        SpacyCaptionParser(tag_list=5)
    p = SpacyCaptionParser(tag_list=["dog"])
    with pytest.raises(ValueError, match="list of strings"):
        p.parse("a dog")
    with pytest.raises(ValueError):
        p.parse([None])
    assert read_tag_list(["dog ", "", "cat"]) == ["dog", "cat"]


def test_tags_keep_the_lists_spelling_and_ignore_words_are_configurable(parser):
    p = SpacyCaptionParser(tag_list=["3D glasses", "man", "Wii", "photo", "couple", "dog", "wear"])
    assert p.parse(["A man wearing 3D glasses", "A photo of a couple of dogs", "Kids playing the Wii"]) == [
        ["man", "wear", "3D glasses"], ["dog"], ["Wii"]]
    p = SpacyCaptionParser(tag_list=["photo", "couple", "dog"], ignore=())
    assert p.parse(["A photo of a couple of dogs"]) == [["photo", "couple", "dog"]]


@pytest.fixture(scope="module")
def ram_parser(shared_dir):
    return SpacyCaptionParser(tag_list=str(shared_dir / "data/ram_plus/ram_tag_list.txt"))


def test_coco_style_captions_on_the_ram_list(ram_parser):
    # expected tags written by hand from the RAM++ list (which has "person" not "people",
    # "teddy" not "teddy bear", "decker bus", "laptop keyboard", "city street"; no "hold")
    captions = {
        "People skiing down a snowy mountain slope.": ["person", "ski", "snowy", "mountain", "slope"],
        "A cat sleeping on a laptop keyboard.": ["cat", "sleep", "laptop keyboard"],
        "Several teddy bears sitting on a shelf.": ["teddy", "sit", "shelf"],
        "A red double decker bus driving down a city street at night.":
            ["red", "decker bus", "drive", "city street", "night"],
        "A woman is holding an umbrella while walking in the rain.": ["woman", "umbrella", "walk", "rain"],
        "A fire truck parked next to a fire hydrant": ["fire truck", "park", "hydrant"],
    }
    assert ram_parser.parse(list(captions)) == list(captions.values())


def test_free_compounds_split_but_wordnet_compounds_do_not():
    p = SpacyCaptionParser(tag_list=["truck", "fire", "hydrant", "mountain", "slope", "person"])
    assert p.parse(["A fire truck parked next to a fire hydrant", "People skiing down a snowy mountain slope."]) == [
        ["truck", "hydrant"],  # WordNet compounds are one thing each: no "fire"
        ["person", "mountain", "slope"],  # "mountain slope" is no compound of WordNet's: both nouns
    ]
    q = SpacyCaptionParser(tag_list=None)
    assert q.parse(["Several teddy bears sitting on a shelf.", "A cat sleeping on a laptop keyboard.",
                    "Two giraffes standing next to each other in a grassy field."]) == [
        ["teddy bear", "sit", "shelf"],  # spaCy parses "bears" as a verb; WordNet knows "teddy bear"
        ["cat", "sleep", "laptop keyboard"],  # not "cat sleep" (WordNet's catnap) from the verb lemma
        ["giraffe", "stand", "grassy", "field"],  # "other" is a quantity word
    ]


def test_parse_captions_command_writes_image_tags_jsonl(tmp_path):
    import json

    from openvocab.cli import main as cli_main

    tags = tmp_path / "tags.txt"
    tags.write_text("\n".join(TAGS) + "\n")
    captions = tmp_path / "captions.jsonl"
    captions.write_text(json.dumps({"file": "img1.jpg", "caption": "Three dogs and two cats"}) + "\n"
                        + "img2.jpg\tA man riding a horse on the beach\n"
                        + "\n"
                        + "An automobile parked next to a sofa\n")
    out = tmp_path / "labels.jsonl"
    assert cli_main(["parse-captions", str(captions), "--tags", str(tags), "--out", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows == [
        {"file": "img1.jpg", "caption": "Three dogs and two cats", "tags": ["dog", "cat"]},
        {"file": "img2.jpg", "caption": "A man riding a horse on the beach", "tags": ["man", "ride", "horse", "beach"]},
        {"file": "4", "caption": "An automobile parked next to a sofa", "tags": ["car", "park", "couch"]},
    ]
    assert cli_main(["parse-captions", str(captions), "--tags", str(tmp_path / "none.txt"), "--out", str(out)]) == 2
