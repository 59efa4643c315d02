"""``python -m grounding.verify PSALM_FIXTURE.pt [--save OUT.pt]``: PSALM parity check.

Builds the model from the fixture's configuration, loads its ``state_dict`` through the loader of the real
checkpoint (key conversion + strict loading), runs every task (referring, category list: panoptic / semantic /
instance, region prompts) from the stored raw inputs with this package's preprocessing, prompts and
post-processing, saves what it computed under the fixture's names (``tasks.<task>.{inputs,intermediates,
outputs}.<name>``; also for a fixture that holds only inputs) and compares with what is stored: numbers at
``--atol`` (1e-4), token ids and decisions exactly, binary masks pixel by pixel except the pixels the fixture
flags as near-ties (|mask logit| < 1e-4, ``panoptic_near_decision_pixels``, ``sem_seg_near_tie_pixels``).
The region task's ``outputs.gt`` (the dataset's ground truth resized by torch 2.0's uint8 bilinear) is not a
model output and is not reproduced. Exit 1 when a comparison fails or when no model output was compared; 2 when
the file is not a PSALM fixture.
"""
from __future__ import annotations

import argparse
import sys
from typing import Any, Optional

import torch

from .fixture import is_psalm_fixture, run_fixture

#: the last line when the stored data holds no model output to compare with
NOTHING_COMPARED = "FAIL: nothing compared (no stored model outputs)"
NEAR_TIE = 1e-4
#: intermediates compared numerically (nested lists/dicts are walked)
NUMERIC_INTERMEDIATES = ("vision_features", "image_tokens", "llm_inputs_embeds", "llm_last_hidden",
                         "seg_query_projected", "SEG_embedding", "class_name_embedding", "region_embedding",
                         "mask_features", "multi_scale_features", "region_sampled_points", "predictions_per_layer",
                         "mask_logits_postprocessed")


class Report:
    """Comparison lines; ``ok`` until one fails; ``model_checks`` counts comparisons of model outputs."""

    def __init__(self, *, atol: float) -> None:
        self.atol, self.lines, self.ok, self.model_checks = atol, [], True, 0

    def _line(self, label: str, text: str, good: bool, model: bool) -> None:
        self.model_checks += model
        self.ok &= good
        self.lines.append(f"{label}: {text}{'' if good else '  FAIL'}")

    def num(self, label: str, got: Any, ref: Any, model: bool = True) -> None:
        if isinstance(ref, dict):
            for k in ref:
                if k in got:
                    self.num(f"{label}.{k}", got[k], ref[k], model)
            return
        if isinstance(ref, (list, tuple)):
            if len(got) != len(ref):
                return self._line(label, f"LENGTH {len(got)} vs stored {len(ref)}", False, model)
            for i, (g, r) in enumerate(zip(got, ref)):
                self.num(f"{label}[{i}]", g, r, model)
            return
        if ref is None and got is None:
            return
        if ref is None or got is None:
            return self._line(label, "PRESENCE differs", False, model)
        got, ref = torch.as_tensor(got).float().cpu(), torch.as_tensor(ref).float()
        if tuple(got.shape) != tuple(ref.shape):
            return self._line(label, f"SHAPE {tuple(got.shape)} vs stored {tuple(ref.shape)}", False, model)
        d = (got - ref).abs().max().item() if got.numel() else 0.0
        self._line(label, f"max abs diff {d:.3e}", d <= self.atol, model)

    def exact(self, label: str, got: Any, ref: Any, model: bool = True) -> None:
        if isinstance(ref, torch.Tensor) or isinstance(got, torch.Tensor):
            got, ref = torch.as_tensor(got).cpu(), torch.as_tensor(ref)
            if got.shape != ref.shape:
                return self._line(label, f"SHAPE {tuple(got.shape)} vs stored {tuple(ref.shape)}", False, model)
            n = int((got != ref).sum())
            text = "equal" if n == 0 else f"DIFFERENT in {n} of {ref.numel()} values"
            if n and ref.numel() <= 64:
                text += f" (got {_short(got)}, stored {_short(ref)})"
            return self._line(label, text, n == 0, model)
        same = got == ref
        self._line(label, "equal" if same else f"DIFFERENT (got {_short(got)}, stored {_short(ref)})", same, model)

    def binary(self, label: str, got: torch.Tensor, ref: torch.Tensor, ignore: Optional[torch.Tensor]) -> None:
        got, ref = torch.as_tensor(got).bool().cpu(), torch.as_tensor(ref).bool()
        if got.shape != ref.shape:
            return self._line(label, f"SHAPE {tuple(got.shape)} vs stored {tuple(ref.shape)}", False, True)
        diff = got != ref
        ignored = 0
        if ignore is not None:
            ignored = int((diff & ignore).sum())
            diff &= ~ignore
        n = int(diff.sum())
        self._line(label, f"{n} pixels differ" + (f" ({ignored} near-tie pixels ignored)" if ignored else ""),
                   n == 0, True)


def _short(x: Any) -> str:
    s = repr(x.tolist() if isinstance(x, torch.Tensor) else x)
    return s if len(s) < 120 else s[:117] + "..."


def _compare_outputs(r: Report, task: str, got: dict, ref: dict, inputs: dict,
                     logits_ref: Optional[torch.Tensor]) -> None:
    near = None if logits_ref is None else logits_ref.abs() < NEAR_TIE  # [Q, H, W] near-tie pixels per query
    p = f"{task}.outputs"
    if task == "referring" and "instances" in ref:
        order = torch.as_tensor(ref.get("topk_indices", torch.arange(len(ref["instances"]["scores"]))))
        mine = torch.argsort(torch.as_tensor(got["topk_indices"]))  # query -> row of our outputs
        r.num(f"{p}.instances.scores", got["instances"]["scores"][mine[order]], ref["instances"]["scores"])
        r.binary(f"{p}.instances.pred_masks", got["instances"]["pred_masks"][mine[order]],
                 ref["instances"]["pred_masks"], None if near is None else near[order])
    if task == "region" and "instances" in ref:
        r.num(f"{p}.instances.scores", got["instances"]["scores"], ref["instances"]["scores"])
        r.binary(f"{p}.instances.pred_masks", got["instances"]["pred_masks"], ref["instances"]["pred_masks"], near)
    if "instances" in ref and "instance_topk_indices_flat" in ref and "pred_classes" in ref["instances"]:
        c = len(inputs["class_names"]) - 1
        things = inputs.get("is_thing_list") if task == "panoptic" else None
        r.exact(f"{p}.instance_topk_indices_flat (as a set)", sorted(got["instance_topk_indices_flat"].tolist()),
                sorted(torch.as_tensor(ref["instance_topk_indices_flat"]).tolist()))
        ours = {f: i for i, f in enumerate(_kept_flat(got["instance_topk_indices_flat"], c, things))}
        theirs = _kept_flat(ref["instance_topk_indices_flat"], c, things)
        if sorted(ours) != sorted(theirs):
            r.exact(f"{p}.instances (query, class) pairs", sorted(ours), sorted(theirs))
        else:
            idx = [ours[f] for f in theirs]
            r.num(f"{p}.instances.scores", got["instances"]["scores"][idx], ref["instances"]["scores"])
            r.exact(f"{p}.instances.pred_classes", got["instances"]["pred_classes"][idx],
                    ref["instances"]["pred_classes"])
            queries = torch.as_tensor(theirs) // c
            r.binary(f"{p}.instances.pred_masks", got["instances"]["pred_masks"][idx], ref["instances"]["pred_masks"],
                     None if near is None else near[queries])
    for key, tie in (("sem_seg_argmax", "sem_seg_near_tie_pixels"), ("panoptic_seg", "panoptic_near_decision_pixels")):
        if key in ref and key in got:
            ignore = ref.get(tie)
            diff = torch.as_tensor(got[key]).cpu() != torch.as_tensor(ref[key])
            r.binary(f"{p}.{key} (pixels with another value)", diff, torch.zeros_like(diff),
                     None if ignore is None else torch.as_tensor(ignore).bool())
    for key in ("eval_top1_query", "eval_top1_query_per_region", "segments_info"):
        if key in ref:
            stored = ref[key].tolist() if isinstance(ref[key], torch.Tensor) else ref[key]
            r.exact(f"{p}.{key}", got.get(key), stored)
    if "sem_seg" in ref:
        r.num(f"{p}.sem_seg", got["sem_seg"], ref["sem_seg"])
    if "eval_top1_mask" in ref:
        q = int(got["eval_top1_query"])
        r.binary(f"{p}.eval_top1_mask", got["eval_top1_mask"], ref["eval_top1_mask"], None if near is None else near[q])


def _kept_flat(flat: Any, num_classes: int, is_thing: Optional[list]) -> list[int]:
    """The top-k flat indices (query * (C-1) + class) that become ``instances`` rows: thing classes only in
    panoptic mode (official ``class_name_instance_inference``)."""
    return [int(f) for f in torch.as_tensor(flat).tolist() if is_thing is None or is_thing[int(f) % num_classes]]


def compare(res: dict, fx: dict, atol: float) -> Report:
    r = Report(atol=atol)
    for task, got in res["tasks"].items():
        stored = fx["tasks"][task]
        inputs, inter, outs = (stored.get(k) or {} for k in ("inputs", "intermediates", "outputs"))
        for key in ("input_ids", "token_refer_id", "class_name_ids", "cls_indices", "region_masks",
                    "image_resized_padded_uint8", "resized_hw"):
            if inputs.get(key) is not None and got["inputs"].get(key) is not None:
                r.exact(f"{task}.inputs.{key}", got["inputs"][key], inputs[key], model=False)
        if inputs.get("images") is not None:
            r.num(f"{task}.inputs.images", got["inputs"]["images"], inputs["images"], model=False)
        for name, rows in (inter.get("positions") or {}).items():  # where the splicing put each placeholder
            if name in got["intermediates"]["positions"]:
                mine = got["intermediates"]["positions"][name]
                if isinstance(rows, (list, tuple)):
                    r.exact(f"{task}.intermediates.positions.{name}", [m.tolist() for m in mine],
                            [torch.as_tensor(x).tolist() for x in rows])
                else:
                    r.exact(f"{task}.intermediates.positions.{name}", mine, rows)
        for key in NUMERIC_INTERMEDIATES:
            if inter.get(key) is not None and key in got["intermediates"]:
                r.num(f"{task}.intermediates.{key}", got["intermediates"][key], inter[key])
        # near-tie pixels: |official mask logit| < 1e-4 (ours where the fixture stores none)
        logits = inter.get("mask_logits_postprocessed")
        logits = logits if logits is not None else got["intermediates"]["mask_logits_postprocessed"]
        _compare_outputs(r, task, got["outputs"], outs, inputs, logits)
    if not r.model_checks:
        r.lines.append(NOTHING_COMPARED)
        r.ok = False
    return r


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m grounding.verify", description=__doc__.split("\n")[0])
    p.add_argument("fixture")
    p.add_argument("--save", default=None, help="write the computed tasks here (torch.save)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--atol", type=float, default=1e-4)
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    fx = torch.load(args.fixture, map_location="cpu", weights_only=True)
    if not is_psalm_fixture(fx):
        print(f"{args.fixture}: not a PSALM fixture", file=sys.stderr)
        return 2
    res = run_fixture(fx, device=args.device)
    if args.save:
        torch.save(res, args.save)
        print(f"saved outputs to {args.save}")
    report = compare(res, fx, args.atol)
    lines = report.lines
    if lines and lines[-1] == NOTHING_COMPARED:
        lines[-1] = f"FAIL: nothing compared: {args.fixture} stores no model outputs"
    else:
        lines.append("PASS" if report.ok else f"FAIL (tolerance {args.atol:g})")
    print("\n".join(lines))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
