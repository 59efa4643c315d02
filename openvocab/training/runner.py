"""Fine-tuning with mmengine's Runner: ``openvocab train CONFIG --work-dir DIR``.

Training configs (``configs/train/``) name a trainable model from :data:`openvocab.registry.MODELS`
(e.g. the tagger's and the detector's training wrappers), a dataset from ``DATASETS`` and the usual
mmengine ``optim_wrapper`` / ``train_cfg`` / ``default_hooks``. A model that has
``export_state_dict()`` gets :class:`ExportHook`: after every checkpoint it writes
``exported.safetensors``, the weights in the layout inference loads (``checkpoint=`` of the stage).
Training resumes from the last checkpoint in the work dir.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from ..registry import SCOPE


def _unwrap(model):
    return getattr(model, "module", model)


@HOOKS.register_module(force=True)
class ExportHook(Hook):
    """Writes ``work_dir/exported.safetensors`` (inference layout) whenever a checkpoint is saved."""

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
        save_file(sd, str(tmp), metadata={"format": "openvocab-export-v1", "iter": str(runner.iter)})
        os.replace(tmp, dest)

    def after_save_checkpoint(self, runner, checkpoint: dict) -> None:
        self._export(runner)

    def after_run(self, runner) -> None:
        self._export(runner)


def build_runner(cfg, *, work_dir: Optional[str] = None, resume: bool = True, max_iters: Optional[int] = None):
    """An mmengine Runner for a training config (an mmengine ``Config``)."""
    from mmengine.runner import Runner

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
    cfg.custom_hooks = hooks
    return Runner.from_cfg(cfg)
