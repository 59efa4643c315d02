"""Parity check of this project's RAM++, RAM and Tag2Text against an official-code fixture.

``python -m tagging.verify FIXTURE.pt --save OUT.pt [--tol 1e-4]``

Recognises the fixture's model by its own metadata (``config.model`` ``'ram'`` / ``'tag2text'``, else a RAM++
``meta_json``), rebuilds the model from the official configuration stored in it, loads its weights through
the loader users run on the real checkpoints (the model's ``convert_state_dict``, the official
relative-position-table resizing and the strict load) and reruns everything the fixture describes
(:mod:`tagging.parity`). ``--save`` writes what was computed under the fixture's own names, also for a fixture
that holds only inputs. Prints the max abs difference to every stored output and intermediate present (token
ids and strings: 0 or inf) and exits 1 if one exceeds the tolerance, or if the fixture stores nothing of the
model to compare with (a check that compared nothing has not passed).
"""
from __future__ import annotations

import argparse
import sys
from typing import Optional

import torch

from .parity import ram, ram_plus, tag2text
from .parity.common import config_of, contiguous
from .parity.ram_plus import PREPROCESS_CHECK

#: fixture kind -> its rerun module (``run``, ``compare``, ``saved``)
KINDS = {"ram_plus": ram_plus, "ram": ram, "tag2text": tag2text}


def fixture_kind(fixture: dict) -> str:
    """``'ram'``, ``'tag2text'`` or ``'ram_plus'``, from the fixture's own metadata; ``ValueError`` else."""
    try:
        cfg = config_of(fixture)
    except (KeyError, ValueError, TypeError):
        cfg = {}
    model = str(cfg.get("model", "")).lower() if isinstance(cfg, dict) else ""
    if model in ("ram", "tag2text"):
        return model
    if model in ("ram_plus", "ram++") or "des_per_class" in cfg \
            or "reweight_scale" in (fixture.get("state_dict") or {}):
        return "ram_plus"
    raise ValueError("not a RAM, RAM++ or Tag2Text parity fixture (no config.model, no RAM++ meta_json)")


def run(fixture: dict) -> tuple[dict, dict]:
    """``(results, captured intermediates)`` of the fixture's model."""
    return KINDS[fixture_kind(fixture)].run(fixture)


def compare(fixture: dict, res: dict, got: dict) -> list[tuple[str, float]]:
    """``(name, max abs diff)`` for every stored reference present in the fixture."""
    return KINDS[fixture_kind(fixture)].compare(fixture, res, got)


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tagging.verify", description=__doc__.split("\n\n")[0])
    ap.add_argument("fixture", help="RAM++, RAM or Tag2Text parity fixture (.pt)")
    ap.add_argument("--save", help="write the computed outputs here (.pt)")
    ap.add_argument("--tol", type=float, default=1e-4, help="max allowed abs difference (default 1e-4)")
    args = ap.parse_args(argv)
    fixture = torch.load(args.fixture, map_location="cpu", weights_only=True)
    kind = fixture_kind(fixture)
    res, got = KINDS[kind].run(fixture)
    if args.save:
        torch.save(contiguous(KINDS[kind].saved(res, got)), args.save)
        print(f"saved {sorted(res)} to {args.save}")
    diffs = KINDS[kind].compare(fixture, res, got)
    worst = 0.0
    for name, d in diffs:
        flag = "" if d <= args.tol else "   <-- FAIL"
        print(f"max abs diff {name:<50s} {d:.3e}{flag}")
        worst = max(worst, d)
    if not any(name != PREPROCESS_CHECK for name, _ in diffs):
        print(f"FAIL: nothing compared: {args.fixture} stores no model outputs or intermediates")
        return 1
    ok = worst <= args.tol
    print(f"{'OK' if ok else 'FAIL'}: worst {worst:.3e} (tolerance {args.tol:g}; {kind} fixture)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
