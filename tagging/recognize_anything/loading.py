"""Loading official recognize-anything checkpoints: what every model's ``convert_state_dict`` shares, the
official loader's relative-position-table resizing, and strict loading.

The official loaders (``load_checkpoint_swinbase`` / ``load_checkpoint_swinlarge``) read
``torch.load(path)['model']``, delete every ``*relative_position_index`` / ``*attn_mask`` buffer (the model
rebuilds them), resize every ``*relative_position_bias_table`` whose window differs from the model's (a
384-px checkpoint used at 224 px: 23² -> 13² rows) and rename ``vision_multi`` -> ``tagging_head``.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
import torch

from openvocab.checkpoint import load_strict

#: deterministic Swin buffers the official loader deletes; the models rebuild them (non-persistent)
REBUILT_SWIN_BUFFERS = ("relative_position_index", "attn_mask")
RELATIVE_POSITION_TABLE = "relative_position_bias_table"


def official_entries(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The loader steps every model shares: unwrap ``{'model': sd}``, drop the rebuilt Swin buffers,
    rename ``vision_multi`` -> ``tagging_head`` (older official checkpoints). Other keys pass unchanged."""
    if "model" in sd and isinstance(sd["model"], Mapping):
        sd = sd["model"]
    return {key.replace("vision_multi", "tagging_head"): value for key, value in sd.items()
            if not key.endswith(REBUILT_SWIN_BUFFERS)}


def is_deleted_head_part(key: str) -> bool:
    """Whether ``key`` is a tagging-head part the official models delete (``embeddings``, self-``attention``,
    ``pooler``), which a file may still carry."""
    return key.startswith("tagging_head.") and (
        key.startswith(("tagging_head.embeddings.", "tagging_head.pooler.")) or ".attention." in key)


def _progression_coordinates(src_size: int, dst_size: int) -> np.ndarray:
    """The official (BEiT) source grid: offsets ``0, ±1, ±(1+q), ±(1+q+q²) ...`` with ``q`` bisected in
    [1.01, 1.5] so that the outermost offset is about ``dst_size // 2``."""
    left, right = 1.01, 1.5
    while right - left > 1e-6:
        q = (left + right) / 2.0
        if (1.0 - q ** (src_size // 2)) / (1.0 - q) > dst_size // 2:
            right = q
        else:
            left = q
    dis, cur = [], 1.0
    for i in range(src_size // 2):
        dis.append(cur)
        cur += q ** (i + 1)
    return np.asarray([-d for d in reversed(dis)] + [0.0] + dis)


def resize_relative_position_table(table: torch.Tensor, dst_rows: int) -> torch.Tensor:
    """``[S², heads] -> [D², heads]`` as the official ``interpolate_relative_pos_embed``.

    Each head's ``S x S`` table sits on a geometric-progression grid (:func:`_progression_coordinates`)
    and is evaluated at the integer offsets ``-D//2 .. D//2`` by the interpolating bicubic spline that the
    official ``scipy.interpolate.interp2d(kind='cubic')`` fits on a grid (``RectBivariateSpline`` with
    ``s=0``; ``interp2d`` is gone from SciPy >= 1.14). Same size: returned unchanged.
    """
    src_rows, heads = table.shape
    src, dst = int(src_rows ** 0.5), int(dst_rows ** 0.5)
    if src * src != src_rows or dst * dst != dst_rows:
        raise ValueError(f"relative position tables must have a square number of rows, got {src_rows} -> {dst_rows}")
    if src == dst:
        return table
    from scipy.interpolate import RectBivariateSpline

    grid = _progression_coordinates(src, dst)
    t = dst // 2.0
    targets = np.arange(-t, t + 0.1, 1.0)
    columns = []
    for h in range(heads):
        z = table[:, h].view(src, src).float().cpu().numpy()  # [y, x]
        spline = RectBivariateSpline(grid, grid, z, kx=3, ky=3, s=0)
        columns.append(torch.from_numpy(spline(targets, targets)).float().reshape(-1, 1))
    return torch.cat(columns, dim=-1).to(device=table.device)


def resize_relative_position_tables(sd: Mapping[str, torch.Tensor],
                                    shapes: Mapping[str, torch.Size]) -> dict[str, torch.Tensor]:
    """Every ``*relative_position_bias_table`` of ``sd`` resized to its shape in ``shapes`` (the model's),
    when both are known and the row counts differ; everything else unchanged."""
    out = dict(sd)
    for key, value in sd.items():
        if key.endswith(RELATIVE_POSITION_TABLE) and key in shapes and value.ndim == 2 \
                and len(shapes[key]) == 2 and value.shape[0] != shapes[key][0] and value.shape[1] == shapes[key][1]:
            if value.is_meta:
                out[key] = torch.empty(tuple(shapes[key]), dtype=value.dtype, device="meta")
            else:
                out[key] = resize_relative_position_table(value, int(shapes[key][0]))
    return out


def load_official(model: torch.nn.Module, sd: Mapping[str, torch.Tensor], *, source: str = "checkpoint") -> None:
    """Strictly load a converted state_dict (the model's ``convert_state_dict``), after resizing its relative
    position tables to the model's windows: one :class:`openvocab.checkpoint.CheckpointError` names every
    missing, unexpected or mis-shaped key."""
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    load_strict(model, resize_relative_position_tables(sd, shapes), source=source)
