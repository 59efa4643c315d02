"""Using the CPU well: how many cores this process may use, torch's intra-op threads set to them, and model calls
on the CPU that take turns.

On a CPU the models' own operators already use every core (torch's intra-op threads). Two models running at once
in the job's step threads would each ask for every core, and OpenMP threads waiting for work spin on the cores the
other model needs: both get slower than one after the other. So on the CPU a model call takes the
:func:`compute_turn` (one at a time, each with all the cores), and the step threads still overlap everything else
(decoding, resizing, writing, a step's own pre- and post-processing). On a GPU the turn is free: kernels run on the
device while the host prepares the next batch.

Idle OpenMP threads are told to sleep rather than spin (``OMP_WAIT_POLICY=PASSIVE``, set by :mod:`openvocab` unless
the user set it, before torch starts its threads): spinning threads take the cores from the loader and writer
threads, and from the one-image-at-a-time mode's own Python work.
"""
from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from typing import Iterator, Optional

_TURN = threading.RLock()


def _cgroup_limit() -> Optional[float]:
    """The CPU quota of this process's cgroup in cores (v2 ``cpu.max`` or v1 ``cfs_quota_us``); ``None``: none."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
        period = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
        return None if quota <= 0 else quota / period
    except (OSError, ValueError):
        return None


def available_cores() -> int:
    """The cores this process may run on: its CPU affinity, capped by its cgroup's CPU quota (a container's
    ``--cpus``), at least 1."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    limit = _cgroup_limit()
    if limit is not None:
        cores = min(cores, max(1, int(limit)))
    return max(1, cores)


def configure_torch_threads() -> int:
    """Set torch's intra-op threads to :func:`available_cores` (torch counts the machine's cores, not a container's
    quota) unless the user chose with ``OMP_NUM_THREADS``; the number in use."""
    import torch

    if not os.environ.get("OMP_NUM_THREADS"):
        cores = available_cores()
        if torch.get_num_threads() != cores:
            torch.set_num_threads(cores)
    return torch.get_num_threads()


def passive_omp_wait() -> None:
    """``OMP_WAIT_POLICY=PASSIVE`` unless set: only effective before torch starts its OpenMP threads."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@contextlib.contextmanager
def compute_turn(device: str) -> Iterator[None]:
    """Hold the process's CPU turn while a model runs on ``device`` when it is the CPU (one model call at a time,
    each with every core); nothing to wait for on an accelerator."""
    if not str(device).startswith("cpu"):
        yield
        return
    with _TURN:
        yield
