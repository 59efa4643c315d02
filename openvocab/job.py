"""Deprecated location: the labeling job lives in :mod:`openvocab.engine`."""
from .engine import FORMATS, JobSummary, parse_formats, run_job  # noqa: F401

__all__ = ["FORMATS", "JobSummary", "parse_formats", "run_job"]
