"""VocabularyNormaliser: plurals and synonyms merged with a report; class -> tags ontology."""
from __future__ import annotations

import pytest

from tagging.text.resources import load_wordnet
from tagging.text.vocabulary import Merge, VocabularyNormaliser, definition_genus


@pytest.fixture(scope="module")
def norm():
    load_wordnet()  # fails with the clear "run openvocab-setup-wordnet" error when WordNet is missing
    return VocabularyNormaliser()


def test_singular_forms(norm):
    assert norm.singular("cars") == "car"
    assert norm.singular("Fire Hydrants") == "fire hydrant"
    assert norm.singular("mice") == "mouse"
    assert norm.singular("buses") == "bus"
    assert norm.singular("glasses") == "glasses"  # a noun of its own (spectacles)
    assert norm.singular("the dogs") == "dog"
    with pytest.raises(ValueError):
        norm.singular("  ")


def test_normalise_merges_plurals_duplicates_and_synonyms(norm):
    names = ["car", "cars", "Automobile", "dog", "Dogs", "dog ", "fire hydrants", "fire hydrant",
             "glasses", "glass", "couch", "sofa", "mice"]
    v = norm.normalise(names)
    assert v.classes == ("car", "dog", "fire hydrant", "glasses", "glass", "couch", "mouse")
    assert v.mapping == {
        "car": "car", "cars": "car", "Automobile": "car", "dog": "dog", "Dogs": "dog", "dog ": "dog",
        "fire hydrants": "fire hydrant", "fire hydrant": "fire hydrant", "glasses": "glasses",
        "glass": "glass", "couch": "couch", "sofa": "couch", "mice": "mouse"}
    assert v.merges == (
        Merge("car", ("cars", "Automobile"), ("plural", "synonym"), "car.n.01"),
        Merge("dog", ("Dogs", "dog "), ("plural", "duplicate")),
        Merge("fire hydrant", ("fire hydrants",), ("plural",)),  # the name spelled like the class is kept
        Merge("couch", ("sofa",), ("synonym",), "sofa.n.01"),
    )
    assert v.synsets["car"] == "car.n.01" and v.synsets["fire hydrant"] == "fireplug.n.01"
    report = v.report()
    assert report.splitlines()[0] == "13 names -> 7 classes"
    assert "'car' <- 'cars' (plural), 'Automobile' (synonym) [car.n.01]" in report


def test_normalise_irregular_plurals_and_report_order(norm):
    v = norm.normalise(["women", "woman", "people", "persons", "person", "People", "geese", "goose"])
    assert v.classes == ("woman", "people", "goose")
    assert v.mapping["person"] == v.mapping["persons"] == v.mapping["People"] == "people"
    assert v.merges == (
        Merge("woman", ("women",), ("plural",)),
        Merge("people", ("persons", "person", "People"), ("plural", "plural", "duplicate")),
        Merge("goose", ("geese",), ("plural",)),
    )
    assert v.report().splitlines()[1:] == ["'woman' <- 'women' (plural)",
                                           "'people' <- 'persons' (plural), 'person' (plural), 'People' (duplicate)",
                                           "'goose' <- 'geese' (plural)"]


def test_normalise_without_synonyms(norm):
    v = VocabularyNormaliser(merge_synonyms=False).normalise(["car", "automobile", "cars"])
    assert v.classes == ("car", "automobile")
    assert v.merges == (Merge("car", ("cars",), ("plural",)),)
    assert norm.normalise(["cat", "dog"]).report() == "2 classes, nothing merged"


def test_normalise_rejects_bad_input(norm):
    with pytest.raises(ValueError):
        norm.normalise("car")
    with pytest.raises(ValueError):
        norm.normalise(["car", 3])


TAGS = ["car", "truck", "bus", "bicycle", "police car", "dog", "cat", "horse", "man", "woman",
        "tree", "chair", "sofa", "sunset", "cup"]


def test_ontology_by_hyponyms(norm):
    onto = norm.ontology(["vehicle", "animal", "person", "furniture", "dog"], TAGS)
    assert onto == {
        "vehicle": ["car", "truck", "bus", "bicycle", "police car"],
        "animal": ["dog", "cat", "horse"],
        "person": ["man", "woman"],
        "furniture": ["chair", "sofa"],
        "dog": ["dog"],
    }


def test_ontology_gloss_link_is_what_brings_bus(norm):
    # WordNet files bus under "public transport"/"conveyance", not under vehicle; its definition
    # says "a vehicle carrying many passengers"
    onto = VocabularyNormaliser(use_glosses=False).ontology(["vehicle"], ["car", "truck", "bus"])
    assert onto == {"vehicle": ["car", "truck"]}
    # only the class's own words count in a definition: aquarium is "a tank ..." (tank, an armoured
    # vehicle, is a hyponym of vehicle) but is not a vehicle
    assert norm.ontology(["vehicle"], ["aquarium", "tank"]) == {"vehicle": ["tank"]}
    with pytest.raises(ValueError):
        norm.ontology("vehicle", TAGS)


def test_definition_genus():
    assert definition_genus("a vehicle carrying many passengers; used for public transport") == "vehicle"
    assert definition_genus("a motor vehicle with four wheels; usually propelled by an engine") == "motor vehicle"
    assert definition_genus("an automotive vehicle suitable for hauling") == "automotive vehicle suitable"
    assert definition_genus("a member of the genus Canis (probably descended from the wolf)") == ""
