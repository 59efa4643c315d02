"""How a tag list splits into boxable and not: ``python -m tagging.text.boxable_report TAGLIST``.

Prints counts per category, per deciding WordNet lexicographer file and per source (the tag's
own WordNet entry, its head noun, or unknown), then the tags classified by head noun or unknown
to WordNet. ``--json`` prints :meth:`WordNetBoxableFilter.split_report` as JSON instead;
``--list CATEGORY`` prints that category's tags.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Optional, Sequence

from .boxable import WordNetBoxableFilter
from .caption_parser import read_tag_list
from .resources import TextResourceError


def format_report(report: dict) -> str:
    """The text form of a :meth:`WordNetBoxableFilter.split_report` result."""
    total = max(report["total"], 1)
    lines = [f"tags: {report['total']}",
             f"boxable: {report['boxable']} ({100 * report['boxable'] / total:.1f}%)",
             f"not boxable: {report['not_boxable']} ({100 * report['not_boxable'] / total:.1f}%)",
             "", "by category (boxable: object, unknown):"]
    lines += [f"  {k:<12} {v}" for k, v in report["categories"].items()]
    lines += ["", "by source:"] + [f"  {k:<12} {v}" for k, v in report["sources"].items()]
    lines += ["", "by deciding WordNet lexicographer file:"]
    lines += [f"  {k:<20} {v}" for k, v in report["lexnames"].items()]
    heads = report["head_noun"]
    lines += ["", f"no WordNet entry, classified by head noun ({len(heads)}):",
              "  " + "; ".join(f"{t} -> {h}" for t, h in heads.items())]
    lines += ["", f"unknown to WordNet ({len(report['unknown'])}):", "  " + "; ".join(report["unknown"])]
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tagging.text.boxable_report", description=__doc__.split("\n\n")[0])
    ap.add_argument("taglist", help="tag list file, one tag per line")
    ap.add_argument("--override-file", default=None, help="boxable overrides ('+ tag' / '- tag' lines, or JSON)")
    ap.add_argument("--json", action="store_true", help="print the report as JSON")
    ap.add_argument("--list", metavar="CATEGORY", default=None, help="print the tags of one category")
    args = ap.parse_args(argv)
    try:
        tags = read_tag_list(args.taglist)
        filt = WordNetBoxableFilter(override_file=args.override_file)
        if args.list:
            print("\n".join(t for t in tags if filt.classify(t).category == args.list))
            return 0
        report = filt.split_report(tags)
    except (ValueError, TextResourceError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(json.dumps(report, indent=1, ensure_ascii=False) if args.json else format_report(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
