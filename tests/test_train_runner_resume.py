"""Training plumbing on a toy tag model: mmengine Runner via ``build_runner``, the pass-through data
preprocessor, JSONL tag dataset, ASL loss, checkpoints + ``exported.safetensors`` and resume.

The toy model (mean RGB -> linear tag logits) stands in for the tagger/detector wrappers so that the
Runner behaviour (resume from ``last_checkpoint``, export after each checkpoint) is tested on its own.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.model import BaseModel
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file

from openvocab.registry import MODELS
from openvocab.training.datasets import JsonlTagDataset, TrainSample
from openvocab.training.losses import asymmetric_loss
from openvocab.training.preprocessor import TrainSamplePassThrough
from openvocab.training.runner import build_runner

TAGS = ("red", "green", "blue")
COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (20, 40, 230)}


@MODELS.register_module(force=True)
class ToyColourTagger(BaseModel):
    """Mean RGB of the image -> one logit per tag in :data:`TAGS`."""

    def __init__(self, *, data_preprocessor=None) -> None:
        super().__init__(data_preprocessor=data_preprocessor)
        torch.manual_seed(0)
        self.head = torch.nn.Linear(3, len(TAGS))

    def _logits(self, data: list[TrainSample]) -> torch.Tensor:
        x = torch.stack([torch.from_numpy(s.image.astype(np.float32)).mean((0, 1)) / 255.0 for s in data])
        return self.head(x)

    def forward(self, data: list[TrainSample], mode: str = "loss"):
        logits = self._logits(data)
        if mode == "loss":
            targets = torch.tensor([[t in s.tags for t in TAGS] for s in data], dtype=torch.float32)
            return {"loss_asl": asymmetric_loss(logits, targets)}
        if mode == "predict":
            return list(logits.sigmoid())
        raise ValueError(f"unknown mode {mode!r}")

    def export_state_dict(self) -> dict:
        return {f"head.{k}": v for k, v in self.head.state_dict().items()}


@pytest.fixture(scope="module")
def jsonl_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("colours")
    rng = np.random.default_rng(0)
    lines = []
    for i in range(12):
        name = TAGS[i % 3]
        img = np.clip(np.array(COLOURS[name]) + rng.integers(-20, 20, (16, 16, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(root / f"{i}.png")
        lines.append(json.dumps({"file": f"{i}.png", "tags": [name]}))
    (root / "tags.jsonl").write_text("\n".join(lines) + "\n")
    return root / "tags.jsonl"


def _cfg(ann_file: Path, max_iters: int) -> Config:
    return Config(dict(
        model=dict(type="ToyColourTagger", data_preprocessor=dict(type="TrainSamplePassThrough")),
        train_dataloader=dict(
            batch_size=4, num_workers=0,
            dataset=dict(type="JsonlTagDataset", ann_file=str(ann_file)),
            sampler=dict(type="DefaultSampler", shuffle=False),
        ),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.5, momentum=0.9)),
        default_hooks=dict(
            checkpoint=dict(type="CheckpointHook", interval=2, by_epoch=False),
            logger=dict(type="LoggerHook", interval=1),
        ),
        randomness=dict(seed=0),
        log_level="WARNING",
    ))


def _train(ann_file: Path, work_dir: Path, max_iters: int, resume: bool = True):
    runner = build_runner(_cfg(ann_file, 8), work_dir=str(work_dir), resume=resume, max_iters=max_iters)
    runner.train()
    return runner


def test_pass_through_keeps_samples():
    pre = TrainSamplePassThrough()
    s = TrainSample(image=np.zeros((2, 2, 3), np.uint8), info=None, tags=("a",))
    out = pre([s, s], True)
    assert list(out) == ["data"] and out["data"][0] is s and len(out["data"]) == 2
    assert pre({"data": [s]})["data"][0] is s
    with pytest.raises(ValueError):
        pre([np.zeros(3)])
    with pytest.raises(ValueError):
        pre({"inputs": [s]})


def test_runner_trains_exports_and_resumes(jsonl_data, tmp_path):
    assert len(JsonlTagDataset(ann_file=str(jsonl_data))) == 12

    # Uninterrupted run: 0 -> 8.
    full = _train(jsonl_data, tmp_path / "full", 8)
    full_w = {k: v.clone() for k, v in full.model.export_state_dict().items()}
    assert full.iter == 8
    exported = load_file(str(tmp_path / "full" / "exported.safetensors"))
    assert set(exported) == {"head.weight", "head.bias"}
    for k in exported:
        torch.testing.assert_close(exported[k], full_w[k])
    with safe_open(str(tmp_path / "full" / "exported.safetensors"), "pt") as f:
        assert f.metadata()["iter"] == "8"

    # It learned: every colour image gets its own tag as the top score.
    full.model.eval()
    ds = JsonlTagDataset(ann_file=str(jsonl_data))
    with torch.no_grad():
        scores = full.model({"data": [ds[i] for i in range(len(ds))]}["data"], mode="predict")
    assert [TAGS[int(s.argmax())] for s in scores] == [TAGS[i % 3] for i in range(12)]

    # Stopped after 4 iterations, then resumed from its last checkpoint up to 8.
    work = tmp_path / "resumed"
    first = _train(jsonl_data, work, 4)
    assert first.iter == 4
    assert (work / "last_checkpoint").read_text().strip().endswith("iter_4.pth")
    w4 = {k: v.clone() for k, v in first.model.export_state_dict().items()}
    assert not torch.equal(w4["head.weight"], full_w["head.weight"])

    second = _train(jsonl_data, work, 8)
    assert second.iter == 8
    assert (work / "iter_8.pth").is_file()
    assert (work / "last_checkpoint").read_text().strip().endswith("iter_8.pth")
    # Bit-identical to the uninterrupted run: model, optimizer momentum and data position were restored.
    for k, v in second.model.export_state_dict().items():
        assert torch.equal(v, full_w[k]), k

    # --no-resume in a work dir with checkpoints starts again from iteration 0.
    again = _train(jsonl_data, work, 2, resume=False)
    assert again.iter == 2


def test_resume_unpickler_allows_only_history_buffer_getattr(tmp_path):
    import pickle

    from mmengine.logging.history_buffer import HistoryBuffer

    from openvocab.training.runner import checkpoint_safe_globals

    class Attr:
        def __init__(self, name):
            self.name = name

        def __reduce__(self):
            return (getattr, (HistoryBuffer, self.name))

    ok, bad = tmp_path / "ok.pth", tmp_path / "bad.pth"
    torch.save({"m": Attr("mean")}, str(ok))
    torch.save({"m": Attr("__init__")}, str(bad))
    with torch.serialization.safe_globals(checkpoint_safe_globals()):
        assert torch.load(str(ok), weights_only=True)["m"] is HistoryBuffer.mean
        with pytest.raises((pickle.UnpicklingError, ValueError)):
            torch.load(str(bad), weights_only=True)
    with pytest.raises(pickle.UnpicklingError):  # without the allow-list nothing loads
        torch.load(str(ok), weights_only=True)


class _RunsShell:
    """Unpickles to ``os.system(command)``: what a malicious checkpoint does."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        import os

        return (os.system, (self.command,))


def test_malicious_checkpoint_in_work_dir_is_refused_with_one_message(jsonl_data, tmp_path, capsys):
    from openvocab.cli import main

    work, marker = tmp_path / "work", tmp_path / "pwned"
    work.mkdir()
    state = {"head.weight": torch.zeros(3, 3), "head.bias": torch.zeros(3)}
    torch.save({"meta": {"epoch": 0, "iter": 2}, "state_dict": state, "message_hub": _RunsShell(f"touch {marker}")},
               str(work / "iter_2.pth"))
    (work / "last_checkpoint").write_text(str(work / "iter_2.pth"))
    cfg = tmp_path / "toy.py"
    _cfg(jsonl_data, 4).dump(str(cfg))
    rc = main(["train", str(cfg), "--work-dir", str(work)])
    err = capsys.readouterr().err
    assert rc == 2 and not marker.exists()
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "iter_2.pth" in err and "system" in err and "--no-resume" in err


def test_resume_never_runs_the_config_text_a_checkpoint_carries(jsonl_data, tmp_path):
    """mmengine's resume runs ``meta['config']`` as a Python config (Config.fromstring): a checkpoint
    that passes weights_only could still carry code there. It is dropped unread."""
    from openvocab.training.runner import read_training_checkpoint

    work, marker = tmp_path / "work", tmp_path / "pwned"
    _train(jsonl_data, work, 2)
    ckpt = read_training_checkpoint(str(work / "iter_2.pth"))
    ckpt["meta"]["config"] = f"x = __import__('os').system('touch {marker}')\n"
    torch.save(ckpt, str(work / "iter_2.pth"))
    resumed = _train(jsonl_data, work, 4)
    assert resumed.iter == 4 and not marker.exists()
