"""WordNet set-up (Debian files -> NLTK) and the clear errors for missing language resources."""
from __future__ import annotations

from pathlib import Path

import pytest

from tagging.text import setup_wordnet
from tagging.text.resources import TextResourceError, find_wordnet, load_spacy, load_wordnet


def test_lexnames_table_matches_wordnet_documentation():
    lines = setup_wordnet.lexnames_text().splitlines()
    assert len(lines) == 45
    assert lines[0] == "00\tadj.all\t3"
    assert lines[2] == "02\tadv.all\t4"
    assert lines[3] == "03\tnoun.Tops\t1"
    assert lines[6] == "06\tnoun.artifact\t1"
    assert lines[28] == "28\tnoun.time\t1"
    assert lines[29] == "29\tverb.body\t2"
    assert lines[43] == "43\tverb.weather\t2"
    assert lines[44] == "44\tadj.ppl\t3"


def test_missing_wordnet_names_what_to_install(tmp_path):
    with pytest.raises(TextResourceError) as err:
        find_wordnet([str(tmp_path)])
    msg = str(err.value)
    assert "WordNet data not found" in msg and str(tmp_path) in msg
    assert "openvocab-setup-wordnet" in msg and "apt-get install wordnet-base wordnet-sense-index" in msg


def test_incomplete_wordnet_folder_is_reported(tmp_path):
    folder = tmp_path / "corpora" / "wordnet"
    folder.mkdir(parents=True)
    (folder / "lexnames").write_text(setup_wordnet.lexnames_text())
    with pytest.raises(TextResourceError, match=r"lacks \['index.sense'"):
        find_wordnet([str(tmp_path)])


def test_missing_spacy_model_names_the_package():
    with pytest.raises(TextResourceError, match="not installed"):
        load_spacy("no_such_spacy_model_xyz")


def test_setup_without_debian_files_says_what_to_install(tmp_path):
    with pytest.raises(setup_wordnet.WordNetSetupError, match="apt-get install wordnet-base wordnet-sense-index"):
        setup_wordnet.install_wordnet(tmp_path / "nltk", source=tmp_path / "empty", allow_apt=False, verbose=False)
    assert setup_wordnet.main(["--target", str(tmp_path / "nltk"), "--source", str(tmp_path / "empty"),
                               "--no-apt"]) == 1


def test_setup_copies_debian_files_idempotently(tmp_path, capsys, monkeypatch):
    import nltk.data

    monkeypatch.setattr(nltk.data, "path", list(nltk.data.path))  # load_wordnet adds tmp_path to it
    load_wordnet()  # the machine's own set-up must work first (clear error otherwise)
    source = setup_wordnet.DEFAULT_SOURCE
    dest = setup_wordnet.install_wordnet(tmp_path, source=source, allow_apt=False)
    assert dest == tmp_path / "corpora" / "wordnet"
    assert "files written" in capsys.readouterr().err
    for name in setup_wordnet.WORDNET_FILES:
        copied = dest / name
        assert copied.is_file() and not copied.is_symlink()
        assert copied.stat().st_size == (source / name).stat().st_size
    assert (dest / "lexnames").read_text() == setup_wordnet.lexnames_text()
    before = {p.name: p.stat().st_mtime_ns for p in dest.iterdir()}
    setup_wordnet.install_wordnet(tmp_path, source=source, allow_apt=False)
    assert "already up to date" in capsys.readouterr().err
    assert {p.name: p.stat().st_mtime_ns for p in dest.iterdir()} == before
    assert find_wordnet([str(tmp_path)]) == dest
    wn = load_wordnet([str(tmp_path)])
    assert wn.synset("dog.n.01").lexname() == "noun.animal"
    assert wn.synsets("sunset")[0].lexname() == "noun.time"


def test_default_target_follows_nltk_data(monkeypatch, tmp_path):
    monkeypatch.setenv("NLTK_DATA", str(tmp_path / "a") + ":" + str(tmp_path / "b"))
    assert setup_wordnet.default_target() == tmp_path / "a"
    monkeypatch.delenv("NLTK_DATA")
    assert setup_wordnet.default_target() == Path.home() / "nltk_data"


def test_tools_and_cli_report_a_missing_resource_in_one_message(tmp_path, monkeypatch, capsys):
    import nltk.data

    from openvocab.cli import main as cli_main
    from tagging.text import SpacyCaptionParser, VocabularyNormaliser, WordNetBoxableFilter

    tags = tmp_path / "tags.txt"
    tags.write_text("dog\n")
    captions = tmp_path / "captions.txt"
    captions.write_text("A dog\n")
    out = tmp_path / "out.jsonl"
    # no spaCy model of that name
    assert cli_main(["parse-captions", str(captions), "--tags", str(tags), "--out", str(out),
                     "--cfg-options", "parser.model=no_such_spacy_model_xyz"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "spaCy model 'no_such_spacy_model_xyz' is not installed" in err
    # no WordNet anywhere NLTK looks
    monkeypatch.setattr(nltk.data, "path", [str(tmp_path / "empty")])
    for use in (lambda: WordNetBoxableFilter().classify("dog"), lambda: VocabularyNormaliser().singular("dogs"),
                lambda: SpacyCaptionParser(tag_list=["dog"]).parse(["A dog"])):
        with pytest.raises(TextResourceError, match="openvocab-setup-wordnet"):
            use()
    assert cli_main(["parse-captions", str(captions), "--tags", str(tags), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("openvocab parse-captions: WordNet data not found") and "apt-get install" in err
    assert not out.exists()
