"""``python -m grounding.verify FIXTURE.pt --save OUT.pt``: parity check of a grounding model.

Dispatches on the fixture's kind: a TAP fixture (``format`` starting with ``tap``) or a
Grounding DINO fixture (``meta_json`` + ``vocab_txt``).
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
    raise SystemExit(f"{path}: not a TAP or Grounding DINO parity fixture")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0].startswith("-"):
        print(__doc__)
        return 2
    kind = fixture_kind(argv[0])
    if kind == "tap":
        from grounding.tap.verify import main as run
    else:
        from grounding.groundingdino.verify import main as run
    return run(argv)


if __name__ == "__main__":
    sys.exit(main())
