"""The labeling engine: a job's inputs, its output folder's lock and durable record, loader workers, the
writer thread, and the engines that run the pipeline (local threads, or a Ray cluster).

``run_job`` is what ``openvocab label`` runs (see :mod:`openvocab.engine.job`).
"""
from ..outdir import OutputError
from .job import ENGINES, FORMATS, JobError, JobSummary, RayOptions, parse_formats, run_job, setup_pipeline
from .lock import OutputLock, OutputLockedError
from .outputs import recorded_results
from .state import JobState, StateError

__all__ = ["run_job", "setup_pipeline", "JobSummary", "JobError", "RayOptions", "FORMATS", "ENGINES", "parse_formats",
           "recorded_results", "OutputLock", "OutputLockedError", "OutputError", "JobState", "StateError"]
