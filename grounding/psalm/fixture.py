"""Running a PSALM parity fixture (official layout: ``config``, ``state_dict``, ``tasks.<task>.inputs``) through
this implementation: the model is built from the stored configuration and loaded by the loader of the real
checkpoint (:func:`.loading.load_official_weights`); every task's inputs go through this package's own
preprocessing, prompts and post-processing. Results use the fixture's names (``inputs``, ``intermediates``,
``outputs`` per task) so they can be compared entry by entry and saved.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from . import postprocess as post
from .config import config_from_official
from .loading import empty_model, load_official_weights
from .model import PSALMModel
from .predictor import EncodedImage, PSALMPredictor
from .preprocess import box_mask, disc_mask, resize_pad, transform_prompt_mask
from .tokenizer import load_tokenizer

#: tasks this runner knows (fixture task name -> post-processing)
TASKS = ("referring", "panoptic", "semantic", "instance", "region")


def is_psalm_fixture(obj: Any) -> bool:
    return isinstance(obj, dict) and isinstance(obj.get("reference"), dict) \
        and str(obj["reference"].get("repo", "")).endswith("PSALM") and "tasks" in obj


def predictor_from_fixture(fx: dict, *, device: str = "cpu") -> PSALMPredictor:
    """Model from ``config`` (+ ``state_dict`` through the official-checkpoint loader; random weights, seed 0, when
    the fixture holds none) and the tokenizer from ``config.tokenizer_files`` (loaded as a checkpoint folder's)."""
    c = fx["config"]
    config = config_from_official(c["llava_config"], c.get("mask_decoder_cfg"), swin=c.get("swin"),
                                  projector_width=c.get("projector_mid"))
    if "state_dict" in fx:
        model = empty_model(config)
        load_official_weights(model, fx["state_dict"], source="fixture state_dict")
    else:
        torch.manual_seed(0)
        model = PSALMModel(config=config)
    with tempfile.TemporaryDirectory() as d:
        for name, text in c["tokenizer_files"].items():
            (Path(d) / name).write_text(text, encoding="utf-8")
        tokenizer = load_tokenizer(d)
    return PSALMPredictor(model=model.to(device), tokenizer=tokenizer)


def _image(fx: dict, task: str) -> np.ndarray:
    for t in (task, "panoptic", "referring"):  # the referring task shares (and omits) the panoptic image
        img = fx["tasks"].get(t, {}).get("inputs", {}).get("image_uint8")
        if img is not None:
            return np.asarray(img, dtype=np.uint8)
    raise ValueError(f"task {task!r}: no image_uint8 in the fixture")


def region_prompt_masks(inputs: dict, size: int) -> Optional[torch.Tensor]:
    """The region task's prompt masks ``[K, S, S]`` made by this package from the stored original prompts (a box:
    the stored box mask's extent; the i-th point prompt: the i-th ``region_point_yx_original`` (y, x))."""
    kinds, originals = inputs.get("region_prompt_kinds"), inputs.get("region_prompt_masks_original")
    if kinds is None or originals is None:
        return None
    points_yx = np.asarray(inputs.get("region_point_yx_original", []), np.float64).reshape(-1, 2)
    out, n_points = [], 0
    for kind in kinds:
        m = np.asarray(originals[kind])
        h, w = m.shape
        if kind == "box":
            rows, cols = np.nonzero(m)
            drawn = box_mask([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1], h, w)
        elif kind == "point":
            y, x = points_yx[n_points]
            n_points += 1
            drawn = disc_mask(np.asarray([[x, y]], np.float64), h, w)
        else:
            raise ValueError(f"unknown region prompt kind {kind!r}")
        out.append(transform_prompt_mask(drawn, size))
    return torch.stack(out)


def _prompt(pred: PSALMPredictor, task: str, inputs: dict):
    if task == "referring":
        return pred.prompts.referring(list(inputs["refer_sentences"]))
    if task == "region":
        return pred.prompts.regions(len(inputs["region_masks"]))
    names = [n for n in inputs["class_names"] if n != "background"]
    return pred.prompts.categories(names, task="semantic" if task == "semantic" else "panoptic")


def run_task(pred: PSALMPredictor, fx: dict, task: str) -> dict:
    """Inputs, intermediates and outputs of one task, under the fixture's names."""
    if task not in TASKS:
        raise ValueError(f"unknown PSALM task {task!r} (known: {TASKS})")
    inputs, cfg, seed = fx["tasks"][task]["inputs"], pred.config, fx["config"].get("task_rng_seed", {}).get(task, 0)
    image = _image(fx, task)
    prepared = pred.prepare(image)
    prompt = _prompt(pred, task, inputs)
    res: dict = {"inputs": {"images": prepared.pixels[None], "input_ids": prompt.input_ids,
                            "image_resized_padded_uint8": torch.from_numpy(resize_pad(image, cfg.image_size)[0]),
                            "resized_hw": list(prepared.resized_hw)}}
    if prompt.refer_ids is not None:
        res["inputs"]["token_refer_id"] = prompt.refer_ids
    if prompt.class_ids is not None:
        res["inputs"]["class_name_ids"] = torch.cat(prompt.class_ids)
        res["inputs"]["cls_indices"] = torch.cat([torch.full((len(c),), i) for i, c in enumerate(prompt.class_ids)])
    points = None
    if task == "region":
        masks = region_prompt_masks(inputs, cfg.image_size)
        res["inputs"]["region_masks"] = masks.to(torch.uint8) if masks is not None else None
        masks = masks if masks is not None else torch.as_tensor(inputs["region_masks"]).bool()
        pred.region_seed = int(seed)
        points = pred.region_points(masks)
    with torch.inference_mode():
        enc: EncodedImage = pred.encode([prepared])[0]
        out = pred.run(enc, prompt, points)
        full = pred.masks(enc, out, range(cfg.num_queries)).cpu()
    e = enc.encoding
    layers = [{"pred_SEG_logits": p.seg_logits, "pred_class_name_logits": p.class_logits, "pred_masks": p.mask_logits,
               "pred_region_logits": None if p.region_logits is None else [p.region_logits]} for p in out.layers]
    res["intermediates"] = {
        "vision_features": {f"res{i + 2}": f for i, f in enumerate(e.features)}, "image_tokens": e.image_tokens,
        "llm_inputs_embeds": out.spliced.inputs_embeds, "llm_last_hidden": out.hidden_states,
        "seg_query_projected": out.queries, "mask_features": e.pixel.mask_features,
        "multi_scale_features": list(e.pixel.multi_scale), "predictions_per_layer": layers,
        "mask_logits_postprocessed": full}
    sp = out.spliced
    res["intermediates"]["positions"] = {k: v for k, v in (
        ("seg", sp.seg_rows), ("refer", sp.refer_rows), ("region", sp.region_rows),
        ("cls", None if sp.class_rows is None else list(sp.class_rows))) if v is not None}
    if out.seg_embedding is not None:
        res["intermediates"]["SEG_embedding"] = out.seg_embedding
    if out.class_embedding is not None:
        res["intermediates"]["class_name_embedding"] = out.class_embedding
    if points is not None:
        res["intermediates"]["region_sampled_points"] = list(points)
        res["intermediates"]["region_embedding"] = [out.region_embedding]
    res["outputs"] = _outputs(task, out, full, inputs)
    return res


def _instances(masks: torch.Tensor, scores: torch.Tensor, hw, classes=None) -> dict:
    inst = {"image_size": list(hw), "pred_masks": (masks > 0).to(torch.uint8), "scores": scores,
            "pred_boxes": torch.zeros(len(masks), 4)}
    if classes is not None:
        inst["pred_classes"] = classes
    return inst


def _outputs(task: str, out, full: torch.Tensor, inputs: dict) -> dict:
    hw = tuple(full.shape[-2:])
    o: dict = {}
    if task == "referring":
        scores = post.referring_scores(out.seg_logits[0].cpu(), full)
        order = torch.argsort(scores, descending=True, stable=True)
        o["instances"] = _instances(full[order], scores[order], hw)
        o["topk_indices"] = order
        o["eval_top1_query"] = int(order[0])
        o["eval_top1_mask"] = (full[order[0]] > 0).to(torch.uint8)
    elif task == "region":
        scores = post.region_scores(out.region_logits.cpu(), full)
        o["instances"] = _instances(full, scores, hw)
        o["eval_top1_query_per_region"] = scores.argmax(0).tolist()
    else:
        logits = out.class_logits[0].cpu()
        if task in ("panoptic", "semantic"):
            o["sem_seg"] = post.semantic_map(logits, full)
            o["sem_seg_argmax"] = o["sem_seg"].argmax(0)
        if task in ("panoptic", "instance"):
            things = list(inputs["is_thing_list"]) if task == "panoptic" else None
            res = post.instance_inference(logits, full, is_thing=things)
            o["instances"] = _instances(full[res.queries], res.scores, hw, classes=res.labels)
            _, top_q, top_l = post.instance_topk(logits, logits.shape[0])
            o["instance_topk_indices_flat"] = top_q * (logits.shape[1] - 1) + top_l
        if task == "panoptic":
            seg, segments = post.panoptic_inference(logits, full, list(inputs["is_thing_list"]))
            o["panoptic_seg"] = seg
            o["segments_info"] = [{"id": s.id, "isthing": s.isthing, "category_id": s.category_id} for s in segments]
    return o


def run_fixture(fx: dict, *, device: str = "cpu") -> dict:
    """``{"tasks": {task: run_task(...)}}`` for every known task of the fixture."""
    pred = predictor_from_fixture(fx, device=device)
    return {"tasks": {t: run_task(pred, fx, t) for t in fx["tasks"] if t in TASKS}}
