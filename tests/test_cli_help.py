"""The command line's own help: --version, no raw markup in --help, every positional explained."""
from __future__ import annotations

import pytest

from openvocab import __version__
from openvocab.cli import build_parser, main


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"openvocab {__version__}"


def test_help_is_plain_text_and_every_positional_has_help():
    parser = build_parser()
    text = parser.format_help()
    assert "``" not in text and ":mod:" not in text and "openvocab download" in text
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, p in sub.choices.items():
        if name == "eval":
            continue
        for action in p._actions:
            if not action.option_strings:  # a positional argument
                assert action.help, f"openvocab {name}: positional {action.dest!r} has no help"
        assert "``" not in p.format_help()
