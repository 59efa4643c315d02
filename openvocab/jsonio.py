"""JSON text that every file name survives.

A POSIX file name is bytes; Python shows bytes that are not UTF-8 as lone surrogates
(``os.fsdecode``, "surrogateescape"), which no UTF-8 file can hold. :func:`dumps` writes such
characters as JSON ``\\udcXX`` escapes and everything else as readable UTF-8, so

    os.fsencode(json.loads(text)["file"]) == the original bytes

holds for every name the filesystem allows (Python's ``json``, JavaScript's ``JSON.parse`` and
pycocotools read these escapes; a few strict parsers reject lone surrogates).
"""
from __future__ import annotations

import json
import re
from typing import Any, Optional

_SURROGATE = re.compile("[\ud800-\udfff]")


def _escape(m: re.Match) -> str:
    return "\\u%04x" % ord(m.group())


def dumps(obj: Any, *, indent: Optional[int] = None) -> str:
    """``json.dumps(obj, ensure_ascii=False)`` with lone surrogates written as ``\\uXXXX`` escapes."""
    return _SURROGATE.sub(_escape, json.dumps(obj, ensure_ascii=False, indent=indent))


def encode_line(obj: Any) -> bytes:
    """One JSON Lines record as UTF-8 bytes (``dumps`` + newline)."""
    return (dumps(obj) + "\n").encode("utf-8")
