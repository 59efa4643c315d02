"""Install WordNet 3.0 for NLTK from Debian's packages, fully offline.

No PyPI package ships WordNet and ``nltk.download`` needs the network, so the data comes from
Debian's ``wordnet-base`` (the database, in ``/usr/share/wordnet``) and ``wordnet-sense-index``
(``index.sense``). NLTK's reader also needs a ``lexnames`` file, which Debian does not ship: it is
written here from :data:`LEXNAMES`, the table of WordNet's ``lexnames(5WN)`` documentation.

Usage::

    python -m tagging.text.setup_wordnet [--target NLTK_DATA_DIR] [--source WORDNET_DICT] [--no-apt]
    openvocab-setup-wordnet ...            # the same, as a console script

The files are copied (NLTK does not follow the package's layout through links) into
``TARGET/corpora/wordnet``; TARGET defaults to the first entry of ``$NLTK_DATA`` or else
``~/nltk_data``. Running it again is a no-op when the files are already in place. When the Debian
files are missing, this runs ``apt-get update && apt-get install -y --no-install-recommends
wordnet-base wordnet-sense-index`` if ``apt-get`` exists and we are root (``--no-apt`` turns that
off); otherwise it stops with a message saying what to install.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Optional, Sequence

#: Debian packages that hold the WordNet 3.0 database files.
APT_PACKAGES = ("wordnet-base", "wordnet-sense-index")
#: Where Debian puts the database.
DEFAULT_SOURCE = Path("/usr/share/wordnet")

#: The database files NLTK's WordNet reader opens (``lexnames`` is written, not copied).
WORDNET_FILES = (
    "data.noun", "data.verb", "data.adj", "data.adv",
    "index.noun", "index.verb", "index.adj", "index.adv",
    "noun.exc", "verb.exc", "adj.exc", "adv.exc",
    "index.sense", "cntlist.rev",
)
#: Copied too when present (not needed by NLTK, but part of the database).
OPTIONAL_FILES = ("cntlist", "frames.vrb", "sents.vrb", "sentidx.vrb")

#: WordNet's 45 lexicographer files: (number, name, syntactic category), where the category is
#: 1 noun, 2 verb, 3 adjective, 4 adverb (from the ``lexnames(5WN)`` manual page).
LEXNAMES: tuple[tuple[int, str, int], ...] = (
    (0, "adj.all", 3), (1, "adj.pert", 3), (2, "adv.all", 4),
    (3, "noun.Tops", 1), (4, "noun.act", 1), (5, "noun.animal", 1), (6, "noun.artifact", 1),
    (7, "noun.attribute", 1), (8, "noun.body", 1), (9, "noun.cognition", 1),
    (10, "noun.communication", 1), (11, "noun.event", 1), (12, "noun.feeling", 1),
    (13, "noun.food", 1), (14, "noun.group", 1), (15, "noun.location", 1), (16, "noun.motive", 1),
    (17, "noun.object", 1), (18, "noun.person", 1), (19, "noun.phenomenon", 1),
    (20, "noun.plant", 1), (21, "noun.possession", 1), (22, "noun.process", 1),
    (23, "noun.quantity", 1), (24, "noun.relation", 1), (25, "noun.shape", 1),
    (26, "noun.state", 1), (27, "noun.substance", 1), (28, "noun.time", 1),
    (29, "verb.body", 2), (30, "verb.change", 2), (31, "verb.cognition", 2),
    (32, "verb.communication", 2), (33, "verb.competition", 2), (34, "verb.consumption", 2),
    (35, "verb.contact", 2), (36, "verb.creation", 2), (37, "verb.emotion", 2),
    (38, "verb.motion", 2), (39, "verb.perception", 2), (40, "verb.possession", 2),
    (41, "verb.social", 2), (42, "verb.stative", 2), (43, "verb.weather", 2), (44, "adj.ppl", 3),
)


class WordNetSetupError(RuntimeError):
    """The WordNet files cannot be found or installed."""


def lexnames_text() -> str:
    """The ``lexnames`` file: ``NN<TAB>name<TAB>category`` lines, numbered from 00."""
    return "".join(f"{num:02d}\t{name}\t{cat}\n" for num, name, cat in LEXNAMES)


def default_target() -> Path:
    """``$NLTK_DATA``'s first entry, else ``~/nltk_data``."""
    env = os.environ.get("NLTK_DATA", "")
    first = next((p for p in env.split(os.pathsep) if p), None)
    return Path(first).expanduser() if first else Path.home() / "nltk_data"


def _missing(source: Path) -> list[str]:
    return [f for f in WORDNET_FILES if not (source / f).is_file()]


def _apt_install(packages: Sequence[str]) -> None:
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages]
    for cmd in (["apt-get", "update", "-q"], install):
        print("+ " + " ".join(cmd), file=sys.stderr)
        if subprocess.run(cmd, env=env).returncode != 0:
            raise WordNetSetupError(f"`{' '.join(cmd)}` failed")


def _same(src: Path, dst: Path) -> bool:
    return dst.is_file() and dst.stat().st_size == src.stat().st_size


def _write_atomic(dst: Path, write) -> None:
    """Write through a temporary file in ``dst``'s folder and rename (safe for parallel runs)."""
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.")
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o644)
        os.replace(tmp, dst)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def install_wordnet(target: Optional[os.PathLike | str] = None, *,
                    source: os.PathLike | str = DEFAULT_SOURCE, allow_apt: bool = True,
                    verbose: bool = True) -> Path:
    """Copy WordNet into ``target/corpora/wordnet`` and write ``lexnames``; returns that folder.

    Idempotent: files already there with the right size are kept. Raises
    :class:`WordNetSetupError` when the source files are missing and cannot be installed.
    """
    source = Path(source)
    target = Path(target).expanduser() if target is not None else default_target()
    missing = _missing(source)
    if missing and allow_apt and shutil.which("apt-get") and hasattr(os, "geteuid") and os.geteuid() == 0:
        _apt_install(APT_PACKAGES)
        missing = _missing(source)
    if missing:
        raise WordNetSetupError(
            f"WordNet files {missing} not found in {source}: install them with "
            f"`apt-get install {' '.join(APT_PACKAGES)}` (as root) or pass --source DIR "
            f"(a WordNet 3.0 dict folder), then run this again")
    dest = target / "corpora" / "wordnet"
    dest.mkdir(parents=True, exist_ok=True)
    copied = 0
    for name in WORDNET_FILES + OPTIONAL_FILES:
        src = source / name
        if not src.is_file() or _same(src, dest / name):
            continue
        _write_atomic(dest / name, lambda tmp, src=src: shutil.copyfile(src, tmp))
        copied += 1
    text = lexnames_text()
    lex = dest / "lexnames"
    if not lex.is_file() or lex.read_text(encoding="utf-8") != text:
        _write_atomic(lex, lambda tmp: tmp.write_text(text, encoding="utf-8"))
        copied += 1
    if verbose:
        state = f"{copied} files written" if copied else "already up to date"
        print(f"WordNet for NLTK in {dest}: {state}", file=sys.stderr)
    return dest


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="openvocab-setup-wordnet", description=__doc__.split("\n\n")[0])
    ap.add_argument("--target", default=None,
                    help="NLTK data folder (default: first of $NLTK_DATA, else ~/nltk_data)")
    ap.add_argument("--source", default=str(DEFAULT_SOURCE), help="WordNet 3.0 dict folder to copy from")
    ap.add_argument("--no-apt", action="store_true", help="never run apt-get")
    args = ap.parse_args(argv)
    try:
        install_wordnet(args.target, source=args.source, allow_apt=not args.no_apt)
    except (WordNetSetupError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
