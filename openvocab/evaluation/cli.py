"""``openvocab eval``: evaluate one labelling run, or compare evaluated runs.

    openvocab eval --pred OUT/coco.json --gt GT.json [--ontology F] [--fixed-ap]
                   [--tags-pred OUT/labels.jsonl --tags-gt GT.jsonl] [--synonyms F]
                   [--normaliser tools/eval_synonyms] [--tag-threshold T] --out RUN_DIR
    openvocab eval --compare RUN_A RUN_B [...] [--per-class]

The first form needs ``--pred/--gt`` (box/mask AP) or ``--tags-pred/--tags-gt`` (tag AP, P/R/F1) or both,
prints the results table and writes ``RUN_DIR/metrics.json``, ``summary.txt`` and per-class AP plots.
The second prints the runs' headline numbers side by side. Exit status 2 on a user error.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

from ..errors import ArgumentParser
from .detection_metrics import evaluate_detections, prediction_tag_names
from .readers import NameMapper, normaliser_synonyms, read_json, read_ontology, read_synonyms
from .report import compare, load_run, run_table, write_run
from .tag_io import read_tag_ground_truth, read_tag_predictions
from .tagging_metrics import evaluate_tags


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="openvocab eval", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pred", help="the pipeline's coco.json (or a COCO results list)")
    p.add_argument("--gt", help="COCO ground truth JSON (boxes, masks)")
    p.add_argument("--ontology", help="JSON/YAML {gt_class_name: [tag, ...]} (default: match by name)")
    p.add_argument("--fixed-ap", action="store_true",
                   help="LVIS-style fixed AP: top --max-dets-per-class detections per class, no per-image cap")
    p.add_argument("--max-dets-per-class", type=int, default=10000)
    p.add_argument("--tags-pred", help="the pipeline's labels.jsonl (or coco.json) with image tags")
    p.add_argument("--tags-gt", help="tag ground truth: JSONL ({file, tags, negative_tags?}) or COCO JSON")
    p.add_argument("--synonyms", help="JSON {alias: canonical} applied to tag names on both sides")
    p.add_argument("--normaliser", metavar="CONFIG",
                   help="match predicted tags to ground-truth names through a synonym normaliser built from "
                        "this config's 'normaliser' entry (e.g. tools/eval_synonyms: plurals and WordNet "
                        "synonyms); --synonyms entries win")
    p.add_argument("--tag-threshold", type=float,
                   help="a tag fires at score >= T (default: the tags the tagger listed as fired)")
    p.add_argument("--captions-pred", help="the pipeline's labels.jsonl or captions.json (image captions)")
    p.add_argument("--captions-gt", help="reference captions: COCO captions JSON, or JSONL {file, captions}")
    p.add_argument("--out", help="run folder for metrics.json, summary.txt and plots")
    p.add_argument("--compare", nargs="+", metavar="RUN_DIR", help="compare evaluated run folders")
    p.add_argument("--per-class", action="store_true", help="with --compare: also per-class/per-tag AP rows")
    return p


def build_normaliser(config: str):
    """The ``normaliser`` entry of a config (name under ``configs/`` or path), built via ``TOOLS``."""
    from ..config import UserError, load_config
    from ..registry import TOOLS

    try:
        cfg = load_config(config)
    except UserError as e:
        raise ValueError(str(e)) from None
    if "normaliser" not in cfg:
        raise ValueError(f"{config}: no 'normaliser' entry")
    try:
        normaliser = TOOLS.build(cfg["normaliser"])
    except Exception as e:  # registry / import problems: one line naming the config
        raise ValueError(f"{config}: cannot build the normaliser ({type(e).__name__}: {e})") from None
    if not hasattr(normaliser, "normalise"):
        raise ValueError(f"{config}: the normaliser {type(normaliser).__name__} has no normalise(names) method")
    return normaliser


def _with_normaliser(synonyms: Optional[dict], normaliser, known, other, log: dict, key: str) -> Optional[dict]:
    if normaliser is None:
        return synonyms
    found = normaliser_synonyms(normaliser, known, other)
    log[key] = found
    return {**found, **(synonyms or {})}


def evaluate(args: argparse.Namespace) -> dict:
    """The metrics dict of one run from parsed arguments (raises ``ValueError`` on bad input)."""
    synonyms = read_synonyms(args.synonyms) if args.synonyms else None
    normaliser = build_normaliser(args.normaliser) if getattr(args, "normaliser", None) else None
    metrics: dict = {"run": Path(args.out).name if args.out else None,
                     "inputs": {k: getattr(args, k, None) for k in ("pred", "gt", "ontology", "tags_pred", "tags_gt",
                                                                     "synonyms", "normaliser", "tag_threshold",
                                                                     "fixed_ap")}}
    merged: dict = {}
    if args.pred or args.gt:
        if not (args.pred and args.gt):
            raise ValueError("--pred and --gt go together")
        ontology = read_ontology(args.ontology) if args.ontology else None
        gt_data, pred_data = read_json(args.gt), read_json(args.pred)
        known = [c.get("name", "") for c in gt_data.get("categories", []) if isinstance(c, dict)] \
            if isinstance(gt_data, dict) else []
        known += [t for tags in (ontology or {}).values() for t in tags]
        det_syn = _with_normaliser(synonyms, normaliser, known,
                                   prediction_tag_names(pred_data, source=args.pred) if normaliser else [],
                                   merged, "detection")
        report = evaluate_detections(gt_data, pred_data, ontology=ontology,
                                     synonyms=det_syn, fixed_ap=args.fixed_ap,
                                     max_dets_per_class=args.max_dets_per_class,
                                     gt_source=args.gt, pred_source=args.pred)
        metrics["detection"] = report.to_dict()
    if args.tags_pred or args.tags_gt:
        if not (args.tags_pred and args.tags_gt):
            raise ValueError("--tags-pred and --tags-gt go together")
        tag_syn = synonyms
        if normaliser is not None:
            plain = NameMapper(synonyms=synonyms)
            vocab = read_tag_ground_truth(args.tags_gt, mapper=plain).vocabulary
            names = {t for s in read_tag_predictions(args.tags_pred, mapper=plain).scores.values() for t in s}
            tag_syn = _with_normaliser(synonyms, normaliser, vocab, sorted(names), merged, "tags")
        mapper = NameMapper(synonyms=tag_syn)
        gt = read_tag_ground_truth(args.tags_gt, mapper=mapper)
        pred = read_tag_predictions(args.tags_pred, mapper=mapper)
        metrics["tags"] = evaluate_tags(gt, pred, threshold=args.tag_threshold, gt_source=args.tags_gt,
                                        pred_source=args.tags_pred).to_dict()
    if args.captions_pred or args.captions_gt:
        if not (args.captions_pred and args.captions_gt):
            raise ValueError("--captions-pred and --captions-gt go together")
        from .caption_metrics import evaluate_captions, read_captions

        metrics["inputs"].update(captions_pred=args.captions_pred, captions_gt=args.captions_gt)
        metrics["captions"] = evaluate_captions(read_captions(args.captions_gt), read_captions(args.captions_pred),
                                                gt_source=args.captions_gt, pred_source=args.captions_pred).to_dict()
    if normaliser is not None:
        metrics["inputs"]["normaliser_synonyms"] = merged
    if not {"detection", "tags", "captions"} & set(metrics):
        raise ValueError("nothing to evaluate: give --pred/--gt, --tags-pred/--tags-gt and/or "
                         "--captions-pred/--captions-gt (or --compare)")
    return metrics


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Exit status 0, 2 on a usage or input error (one line on stderr), 1 when writing the results fails."""
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        if args.compare:
            print(compare(args.compare, per_class=args.per_class).render())
            return 0
        if not args.out:
            raise ValueError("--out RUN_DIR is required")
        if Path(args.out).exists() and not Path(args.out).is_dir():
            raise ValueError(f"--out {args.out}: exists and is not a folder")
        metrics = evaluate(args)
    except ValueError as e:
        print(f"openvocab eval: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # an input that cannot be read (permissions, a folder named as a file ...)
        print(f"openvocab eval: {e.filename or 'an input'}: cannot read ({e.strerror or e})", file=sys.stderr)
        return 2
    try:
        paths = write_run(args.out, metrics)
    except OSError as e:
        print(f"openvocab eval: cannot write the results to {args.out} ({e.strerror or e})", file=sys.stderr)
        return 1
    print(run_table(load_run(paths["metrics"])))
    print(f"\nwrote {', '.join(str(p) for p in paths.values())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
