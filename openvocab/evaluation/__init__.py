"""Evaluation harness (``openvocab eval``): tag AP/mAP and P/R/F1, COCO box/mask AP, reports, comparisons.

Core package: imports nothing from ``tagging`` or ``grounding``.
"""
from .detection_metrics import DetectionMetrics, DetectionReport, evaluate_detections, run_cocoeval
from .readers import (FileMatcher, NameMapper, normaliser_synonyms, normalize_name, read_ontology, read_synonyms,
                      tag_to_class_map)
from .report import Table, compare, load_run, plot_per_class, run_table, summary, write_run
from .tag_io import TagGroundTruth, TagPredictions, read_tag_ground_truth, read_tag_predictions
from .tagging_metrics import TagMetrics, TagScore, average_precision, evaluate_tags

__all__ = [
    "DetectionMetrics", "DetectionReport", "evaluate_detections", "run_cocoeval",
    "FileMatcher", "NameMapper", "normaliser_synonyms", "normalize_name", "read_ontology", "read_synonyms", "tag_to_class_map",
    "Table", "compare", "load_run", "plot_per_class", "run_table", "summary", "write_run",
    "TagGroundTruth", "TagPredictions", "read_tag_ground_truth", "read_tag_predictions",
    "TagMetrics", "TagScore", "average_precision", "evaluate_tags",
]
