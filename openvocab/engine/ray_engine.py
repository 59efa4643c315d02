"""Scale-out on Ray Data: the inputs as a Ray dataset, the pipeline in an actor pool, results streamed back.

``openvocab label ... --engine ray [--ray-address ADDR] [--num-workers N] [--gpus-per-worker G]``:

* the driver (this process) holds the output folder's lock and record, exactly as the local engine;
* ``ray.data.from_items`` holds the inputs (paths only); ``map_batches`` runs :class:`LabelActor` in a pool
  of ``N`` actors, each building the pipeline once and decoding its own images (loader threads);
* finished batches stream back (``iter_batches``) to the same writer thread and record, so outputs,
  resume and ``failures.jsonl`` are those of the local engine.

An actor that dies (a crash, an OOM kill, a lost node) is restarted by Ray and its batch is run again
(Ray Data's actor pools retry tasks without limit); a result reaches the driver once, and the record is
keyed by image, so nothing is lost or written twice. Multi-GPU on one machine: ``--gpus-per-worker 1
--num-workers 8`` (Ray gives each actor its own GPU).
"""
from __future__ import annotations

import importlib
import json
import logging
import os
import sys
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from ..inputs import InputItem
from ..jsonio import dumps
from ..pipeline import Pipeline
from ..serialize import result_from_dict, result_to_dict
from ..stages import overrides_prepare
from .sink import ResultSink

log = logging.getLogger("openvocab")


class RayUnavailableError(RuntimeError):
    """``--engine ray`` without Ray installed."""


@dataclass(frozen=True)
class ActorSettings:
    """What every actor needs to build its pipeline and load its images."""

    pipeline: Any  # a PipelineSpec (rebuilt from config) or a Pipeline (pickled)
    device: Optional[str]
    max_pixels: Optional[int]
    workers: int


class LabelActor:
    """One pipeline, built once per actor; ``__call__`` labels a batch of inputs (decoded here)."""

    def __init__(self, settings: ActorSettings) -> None:
        spec = settings.pipeline
        self.pipeline: Pipeline = spec.build(device=settings.device) if hasattr(spec, "build") else spec
        if settings.device is not None:
            self.pipeline.device = settings.device
        self.pipeline.setup()
        self.settings = settings

    def __call__(self, batch: dict) -> dict:
        from .loader import ImageLoader, LoadedImage, LoadFailure
        from .local import label_batch

        items = [InputItem(key=json.loads(k), file=json.loads(f), name=json.loads(n))
                 for k, f, n in zip(batch["key"], batch["file"], batch["name"])]
        prepare = self.pipeline.prepare if any(overrides_prepare(s) for s in self.pipeline.stages) else None
        out = {"key": [], "result": [], "error": []}
        loaded: list[LoadedImage] = []
        for x in ImageLoader(items, workers=self.settings.workers, max_pixels=self.settings.max_pixels,
                             prepare=prepare if self.settings.workers > 0 else None):
            if isinstance(x, LoadFailure):
                _row(out, x.item, "", x.error)
            else:
                loaded.append(x)
        for x, r in zip(loaded, label_batch(self.pipeline, loaded) if loaded else []):
            if isinstance(r, Exception):
                _row(out, x.item, "", f"pipeline error: {type(r).__name__}: {r}")
            else:
                _row(out, x.item, dumps(result_to_dict(r)), "")
        return out


def _row(out: dict, item: InputItem, result: str, error: str) -> None:
    out["key"].append(dumps(item.key))
    out["result"].append(result)
    out["error"].append(error)


def run_ray(pipeline: Pipeline, todo: Sequence[InputItem], sink: ResultSink, *, batch_size: int, workers: int,
            max_pixels: Optional[int], ray) -> None:
    """Label ``todo`` on Ray (``ray``: :class:`openvocab.engine.job.RayOptions`) into ``sink``."""
    options = ray
    try:
        ray_lib = importlib.import_module("ray")
        importlib.import_module("ray.data")
    except ImportError:
        raise RayUnavailableError("--engine ray needs Ray: pip install 'openvocab[ray]'") from None
    if not todo:
        return
    started = _init(ray_lib, options.address)
    try:
        ctx = ray_lib.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.verbose_stats_logs = False
        spec = getattr(pipeline, "build_spec", None) or pipeline
        device = "cuda" if options.gpus_per_worker > 0 else None
        settings = ActorSettings(pipeline=spec, device=device, max_pixels=max_pixels,
                                 workers=max(0, min(workers, int(options.cpus_per_worker) or 1)))
        by_key = {i.key: i for i in todo}
        ds = ray_lib.data.from_items([{"key": dumps(i.key), "file": dumps(i.file), "name": dumps(i.name)}
                                      for i in todo],
                                     override_num_blocks=max(1, min(len(todo), 4 * options.num_workers)))
        ds = ds.map_batches(LabelActor, fn_constructor_kwargs={"settings": settings}, batch_size=batch_size,
                            batch_format="numpy", concurrency=options.num_workers,
                            num_gpus=options.gpus_per_worker or None, num_cpus=options.cpus_per_worker)
        for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
            for k, res, err in zip(batch["key"], batch["result"], batch["error"]):
                item = by_key[json.loads(k)]
                if err:
                    sink.failure(item, str(err))
                else:
                    sink.result(item, result_from_dict(json.loads(res)), None)
    finally:
        if started:
            ray_lib.shutdown()


def _init(ray_lib, address: Optional[str]) -> bool:
    """Connect to ``address`` (or start a local Ray); True when this call started it."""
    if ray_lib.is_initialized():
        return False
    env = {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p and os.path.isdir(p))}
    ray_lib.init(address=address, ignore_reinit_error=True, include_dashboard=False, log_to_driver=False,
                 logging_level=logging.ERROR, runtime_env={"env_vars": env} if address is None else None)
    return True
