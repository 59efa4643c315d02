"""Fine-tuning with mmengine's Runner: ``openvocab train CONFIG --work-dir DIR``.

Training configs (``configs/train/``) name a trainable model from :data:`openvocab.registry.MODELS`
(e.g. the tagger's and the detector's training wrappers), a dataset from ``DATASETS`` and the usual
mmengine ``optim_wrapper`` / ``train_cfg`` / ``default_hooks``. A model that has
``export_state_dict()`` gets :class:`ExportHook`: after every checkpoint it writes
``exported.safetensors``, the weights in the layout inference loads (``checkpoint=`` of the stage).
:class:`ProgressHook` prints the iteration, losses, learning rate and ETA on the console, and the metrics
of each validation. Training resumes from the last checkpoint in the work dir.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Optional, Sequence

from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from ..checkpoint import CheckpointError, read_checkpoint
from ..registry import SCOPE


def _unwrap(model):
    return getattr(model, "module", model)


@HOOKS.register_module(force=True)
class ExportHook(Hook):
    """Writes ``work_dir/exported.safetensors`` (inference layout) whenever a checkpoint is saved;
    metadata: ``format``, ``iter`` and the model's ``export_metadata()`` (str -> str) if it has one."""

    priority = "VERY_LOW"

    def __init__(self, filename: str = "exported.safetensors") -> None:
        self.filename = filename

    def _export(self, runner) -> None:
        from safetensors.torch import save_file

        model = _unwrap(runner.model)
        if not hasattr(model, "export_state_dict"):
            return
        sd = {k: v.detach().cpu().contiguous() for k, v in model.export_state_dict().items()}
        dest = Path(runner.work_dir) / self.filename
        tmp = dest.with_name(f".{dest.name}.tmp")
        meta = dict(model.export_metadata()) if hasattr(model, "export_metadata") else {}
        meta.update({"format": "openvocab-export-v1", "iter": str(runner.iter)})
        save_file(sd, str(tmp), metadata=meta)
        os.replace(tmp, dest)

    def after_save_checkpoint(self, runner, checkpoint: dict) -> None:
        self._export(runner)

    def after_run(self, runner) -> None:
        self._export(runner)


@HOOKS.register_module(force=True)
class ProgressHook(Hook):
    """One console line every ``interval`` iterations (iteration, losses, learning rate, elapsed time and ETA)
    and one per validation (its metrics), whatever the config's ``log_level``; mmengine's own log lines go to
    the work dir's log file."""

    priority = "BELOW_NORMAL"

    def __init__(self, interval: int = 10) -> None:
        if interval < 1:
            raise ValueError(f"interval must be >= 1, got {interval}")
        self.interval = int(interval)
        self._start: Optional[float] = None
        self._start_iter = 0

    def before_train(self, runner) -> None:
        self._start, self._start_iter = time.monotonic(), runner.iter
        print(f"training {type(_unwrap(runner.model)).__name__} for {runner.max_iters} iterations "
              f"(from {runner.iter}) -> {runner.work_dir}", flush=True)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        it = runner.iter + 1
        if it % self.interval and it != runner.max_iters:
            return
        elapsed = time.monotonic() - (self._start or time.monotonic())
        done = max(it - self._start_iter, 1)
        eta = elapsed / done * (runner.max_iters - it)
        losses = " ".join(f"{k} {_number(v):.4f}" for k, v in (outputs or {}).items() if "loss" in k)
        lr = runner.optim_wrapper.get_lr()
        lr_text = f"lr {float(next(iter(lr.values()))[0]):.2e}" if lr else ""
        print(f"iter {it}/{runner.max_iters}  {losses}  {lr_text}  elapsed {_clock(elapsed)}  eta {_clock(eta)}",
              flush=True)

    def after_val_epoch(self, runner, metrics=None) -> None:
        shown = {k: v for k, v in (metrics or {}).items() if isinstance(v, (int, float))}
        print(f"val at iter {runner.iter}: " + "  ".join(f"{k} {v:.4f}" for k, v in shown.items()), flush=True)


def _number(v) -> float:
    return float(v.detach()) if hasattr(v, "detach") else float(v)


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


#: HistoryBuffer methods that mmengine's message hub pickles as ``getattr(HistoryBuffer, name)``.
_HISTORY_METHODS = frozenset({"min", "max", "current", "mean"})


def _history_getattr(obj, name):
    """Stands in for ``builtins.getattr`` while unpickling a checkpoint: only HistoryBuffer methods."""
    from mmengine.logging.history_buffer import HistoryBuffer

    if obj is HistoryBuffer and name in _HISTORY_METHODS:
        return getattr(obj, name)
    raise ValueError(f"checkpoint asks for getattr({obj!r}, {name!r}): not allowed")


def checkpoint_safe_globals() -> list:
    """The extra globals an mmengine training checkpoint needs under ``torch.load(weights_only=True)``:
    the message hub's HistoryBuffer (numpy arrays inside) and a getattr restricted to its methods."""
    import numpy as np
    from mmengine.logging.history_buffer import HistoryBuffer

    core = getattr(np, "_core", None) or np.core
    allowed = [HistoryBuffer, np.ndarray, np.dtype, core.multiarray._reconstruct, core.multiarray.scalar,
               (_history_getattr, "__builtin__.getattr"), (_history_getattr, "builtins.getattr")]
    allowed += [getattr(np.dtypes, n) for n in dir(np.dtypes) if n.endswith("DType")]
    return allowed


def read_training_checkpoint(filename: str, *, map_location: Any = "cpu") -> dict:
    """An mmengine training checkpoint read by :func:`openvocab.checkpoint.read_checkpoint`
    (``weights_only=True`` plus :func:`checkpoint_safe_globals`), never by unrestricted pickle.

    Only local files. ``meta['config']`` is dropped: it is the text of a Python config, which
    mmengine's ``Runner.resume`` would run (``Config.fromstring``) to compare GPU counts, so a
    checkpoint could carry code; nothing else reads it on resume.
    """
    if "://" in str(filename):
        raise CheckpointError(f"{filename}: training checkpoints are read from local files only; download it "
                              "first and give its path")
    ckpt = read_checkpoint(filename, map_location=map_location, safe_globals=checkpoint_safe_globals())
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{filename}: not an mmengine checkpoint (a {type(ckpt).__name__}, not a dict)")
    meta = ckpt.get("meta")
    if isinstance(meta, dict):
        meta.pop("config", None)
    return ckpt


def _runner_class():
    from mmengine.model import is_model_wrapper
    from mmengine.runner import Runner
    from mmengine.runner.checkpoint import _load_checkpoint_to_model

    class OpenVocabRunner(Runner):
        """mmengine's Runner whose checkpoint loading (resume and ``load_from``) goes through
        :func:`read_training_checkpoint` instead of mmengine's ``torch.load`` (which passes no
        ``weights_only``); the rest is ``Runner.load_checkpoint`` as it is."""

        def load_checkpoint(self, filename: str, map_location: Any = "cpu", strict: bool = False,
                            revise_keys: Sequence = ((r"^module.", ""),)):
            try:
                checkpoint = read_training_checkpoint(filename, map_location=map_location)
            except CheckpointError as e:
                raise CheckpointError(f"{e} (remove the file, or start over with --no-resume, if you did not "
                                      "write it)") from None
            self.call_hook("after_load_checkpoint", checkpoint=checkpoint)
            model = self.model.module if is_model_wrapper(self.model) else self.model
            checkpoint = _load_checkpoint_to_model(model, checkpoint, strict, revise_keys=list(revise_keys))
            self._has_loaded = True
            self.logger.info(f"Load checkpoint from {filename}")
            return checkpoint

    return OpenVocabRunner


def build_runner(cfg, *, work_dir: Optional[str] = None, resume: bool = True, max_iters: Optional[int] = None):
    """An mmengine Runner for a training config (an mmengine ``Config``)."""

    cfg = cfg.copy()
    cfg.default_scope = SCOPE
    if work_dir is not None:
        cfg.work_dir = work_dir
    if "work_dir" not in cfg:
        raise ValueError("training needs a work dir (--work-dir or work_dir = ... in the config)")
    if max_iters is not None:
        cfg.train_cfg = dict(cfg.train_cfg, max_iters=max_iters)
    cfg.resume = bool(resume) and any(Path(cfg.work_dir).glob("*.pth"))
    hooks = list(cfg.get("custom_hooks", []))
    if not any(h.get("type") == "ExportHook" for h in hooks):
        hooks.append(dict(type="ExportHook"))
    if not any(h.get("type") == "ProgressHook" for h in hooks):
        interval = cfg.get("default_hooks", {}).get("logger", {}).get("interval", 10)
        hooks.append(dict(type="ProgressHook", interval=interval))
    cfg.custom_hooks = hooks
    return _runner_class().from_cfg(cfg)
