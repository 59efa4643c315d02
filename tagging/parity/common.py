"""What the fixture reruns share: reading a fixture, recording intermediates, measuring differences."""
from __future__ import annotations

import json
import math
from typing import Any, Mapping, Sequence

import torch

from ..recognize_anything.preprocess import preprocess

#: name suffixes of fixture intermediates stored for part of a batch: compare the same part
PARTIAL_SUFFIXES = ("_img0_first256", "_img0")


def capture(named: Mapping[str, torch.nn.Module]) -> tuple[dict, list]:
    """Forward hooks recording each module's first output under its name: ``(records, hook handles)``."""
    got: dict[str, torch.Tensor] = {}

    def hook(name):
        def fn(_module, _inputs, output):
            got.setdefault(name, output.detach())
        return fn
    return got, [m.register_forward_hook(hook(n)) for n, m in named.items()]


def intermediate_pairs(stored: Mapping[str, torch.Tensor], got: Mapping[str, torch.Tensor]) -> list[tuple]:
    """``(name, mine, ref)`` for every stored intermediate recorded under its name (a partial one compared
    with the same leading slice of the full record)."""
    pairs = []
    for name, ref in stored.items():
        key = name
        for suffix in PARTIAL_SUFFIXES:
            if name.endswith(suffix):
                key = name[:-len(suffix)]
                break
        if key in got:
            mine = got[key]
            if key != name and mine.ndim == ref.ndim:
                mine = mine[tuple(slice(0, s) for s in ref.shape)]
            pairs.append((f"intermediates.{name}", mine, ref))
    return pairs


def difference(mine: Any, ref: Any) -> float:
    """Max abs difference of tensors / numbers, recursively through lists, tuples and dicts (the reference's
    keys); strings, ``None`` and ids compare exactly (0 or ``inf``); a shape or length mismatch is ``inf``."""
    if isinstance(ref, torch.Tensor):
        if not isinstance(mine, torch.Tensor) or mine.shape != ref.shape:
            return math.inf
        if ref.numel() == 0:
            return 0.0
        a, b = mine.detach().double().cpu(), ref.double()
        gap = torch.where(a == b, torch.zeros_like(a), (a - b).abs())  # equal infinities (masked scores) agree
        return torch.nan_to_num(gap, nan=math.inf).max().item()
    if isinstance(ref, Mapping):
        if not isinstance(mine, Mapping):
            return math.inf
        return max((difference(mine.get(k), v) if k in mine else math.inf for k, v in ref.items()), default=0.0)
    if isinstance(ref, (list, tuple)):
        if not isinstance(mine, (list, tuple)) or len(mine) != len(ref):
            return math.inf
        return max((difference(a, b) for a, b in zip(mine, ref)), default=0.0)
    if isinstance(ref, bool) or ref is None or isinstance(ref, str):
        return 0.0 if mine == ref else math.inf
    if isinstance(ref, (int, float)):
        if not isinstance(mine, (int, float)) or isinstance(mine, bool):
            return math.inf
        return abs(float(mine) - float(ref))
    return 0.0 if mine == ref else math.inf


def contiguous(obj: Any) -> Any:
    """``obj`` with every tensor contiguous and on the CPU (for ``torch.save``)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().contiguous()
    if isinstance(obj, Mapping):
        return {k: contiguous(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(contiguous(v) for v in obj)
    return obj


def config_of(fixture: dict) -> dict:
    """The official configuration a fixture was made with (``config``, or the JSON of ``meta_json``)."""
    if "config" in fixture:
        return fixture["config"]
    return json.loads(fixture["meta_json"])


def weights_of(fixture: dict) -> dict:
    """The official file layout when the fixture has it, else its state_dict."""
    return fixture["checkpoint"] if "checkpoint" in fixture else fixture["state_dict"]


def model_input(fixture: dict, image_size: int, mean, std) -> tuple[torch.Tensor, dict]:
    """``(image batch, results so far)``: ``inputs.image`` when stored, else the raw images preprocessed here
    (``results['preprocessed']`` whenever raw images are stored)."""
    inputs = fixture.get("inputs") or {}
    raw = [torch.as_tensor(im).numpy() for im in inputs.get("raw_uint8", [])]
    if "image" not in inputs and not raw:
        raise ValueError("fixture has no inputs (neither inputs.image nor inputs.raw_uint8)")
    res = {}
    if raw:
        res["preprocessed"] = preprocess(raw, image_size=image_size, mean=mean, std=std)
    return (inputs["image"].float() if "image" in inputs else res["preprocessed"]), res


def tag_strings(targets: torch.Tensor, names: Sequence[str]) -> list[str]:
    """The official strings: kept names in tag-list order joined by ``" | "`` (names as given, unstripped)."""
    return [" | ".join(names[i] for i in torch.nonzero(row).flatten().tolist()) for row in targets]
