"""``python -m grounding.verify FIXTURE.pt --save OUT.pt``: parity check of a grounding model.

Dispatches on the fixture's kind: a TAP fixture (``format`` starting with ``tap``), a
Grounding DINO fixture (``meta_json`` + ``vocab_txt``) or a PSALM fixture (``reference.repo`` zamling/PSALM).
"""
from __future__ import annotations

import sys

import torch


def fixture_kind(path: str) -> str:
    obj = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(obj, dict) and str(obj.get("format", "")).startswith("tap"):
        return "tap"
    if isinstance(obj, dict) and "meta_json" in obj and "vocab_txt" in obj:
        return "grounding_dino"
    from grounding.psalm.fixture import is_psalm_fixture

    if is_psalm_fixture(obj):
        return "psalm"
    raise SystemExit(f"{path}: not a TAP, Grounding DINO or PSALM parity fixture")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0].startswith("-"):
        print(__doc__)
        return 2
    kind = fixture_kind(argv[0])
    if kind == "tap":
        from grounding.tap.verify import main as run
    elif kind == "psalm":
        from grounding.psalm.verify import main as run
    else:
        from grounding.groundingdino.verify import main as run
    return run(argv)


if __name__ == "__main__":
    sys.exit(main())
