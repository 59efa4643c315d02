"""PSALM parity with the official code (zamling/PSALM @ d5dbfda) on every tiny fixture in ``shared/parity/psalm``
(``psalm_tiny_*.pt``): every task from the stored raw inputs through this package's preprocessing, prompts, model
(loaded by the real checkpoint's loader) and post-processing; ``python -m grounding.verify``; the full-size key
layout; the checkpoint folder path."""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch

from grounding.psalm import fixture as fixture_mod
from grounding.psalm import prompts, verify
from grounding.psalm.config import config_from_official
from grounding.psalm.convert import convert_state_dict, split_qkv
from grounding.psalm.loading import load_checkpoint
from grounding.psalm.model import build_psalm
from grounding.psalm.preprocess import resized_size
from openvocab.checkpoint import CheckpointError, load_strict

from conftest import PARITY

NEAR = 1e-4
#: every PSALM fixture present (A is shared; others may be added with the same layout)
FIXTURES = sorted((PARITY / "psalm").glob("psalm_tiny_*.pt")) or [PARITY / "psalm" / "psalm_tiny_A.pt"]


@pytest.fixture(scope="module", params=FIXTURES, ids=lambda p: p.stem)
def fx_path(request):
    return request.param


@pytest.fixture(scope="module")
def fx(fx_path):
    return torch.load(fx_path, map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def computed(fx):
    return fixture_mod.run_fixture(fx)["tasks"]


def _near(fx, task):
    return fx["tasks"][task]["intermediates"]["mask_logits_postprocessed"].abs() < NEAR


def test_prompts_are_the_official_conversation_texts(fx):
    tasks = fx["tasks"]
    assert prompts.referring_text() == tasks["referring"]["inputs"]["prompt"]
    pan = tasks["panoptic"]["inputs"]
    assert prompts.category_text(len(pan["class_names"])) == pan["prompt"]
    assert prompts.region_text(len(tasks["region"]["inputs"]["region_masks"])) == tasks["region"]["inputs"]["prompt"]
    assert "Please do Semantic Segmentation." in prompts.category_text(3, task="semantic")


def test_resize_follows_detectron2(fx):
    for task in ("panoptic", "region"):
        inp = fx["tasks"][task]["inputs"]
        size = fx["config"]["image_size"]
        assert list(resized_size(*inp["original_hw"], size)) == list(inp["resized_hw"])


@pytest.mark.parametrize("task", ["referring", "panoptic", "region"])
def test_inputs_and_mask_logits_match(fx, computed, task):
    got, ref = computed[task], fx["tasks"][task]
    assert torch.equal(got["inputs"]["input_ids"], ref["inputs"]["input_ids"])
    pan = fx["tasks"]["panoptic"]["inputs"]
    assert torch.equal(got["inputs"]["images"], ref["inputs"].get("images", pan["images"]))
    logits = got["intermediates"]["predictions_per_layer"][-1]["pred_masks"]
    assert (logits - ref["intermediates"]["predictions_per_layer"][-1]["pred_masks"]).abs().max() < NEAR
    full = got["intermediates"]["mask_logits_postprocessed"]
    assert (full - ref["intermediates"]["mask_logits_postprocessed"]).abs().max() < NEAR


def test_referring_scores_and_masks(fx, computed):
    got, ref = computed["referring"]["outputs"], fx["tasks"]["referring"]["outputs"]
    refer_ids = fx["tasks"]["referring"]["inputs"]["token_refer_id"]
    assert torch.equal(computed["referring"]["inputs"]["token_refer_id"], refer_ids)
    order = ref["topk_indices"]  # the official top-k order is unspecified: compare per query
    ours = {int(q): i for i, q in enumerate(got["topk_indices"])}
    rows = [ours[int(q)] for q in order]
    assert (got["instances"]["scores"][rows] - ref["instances"]["scores"]).abs().max() < NEAR
    assert got["eval_top1_query"] == ref["eval_top1_query"]
    near = _near(fx, "referring")[order]
    assert not ((got["instances"]["pred_masks"][rows] != ref["instances"]["pred_masks"]) & ~near).any()


def test_category_list_semantic_instance_panoptic(fx, computed):
    got, ref = computed["panoptic"]["outputs"], fx["tasks"]["panoptic"]["outputs"]
    inputs = fx["tasks"]["panoptic"]["inputs"]
    assert torch.equal(computed["panoptic"]["inputs"]["class_name_ids"], inputs["class_name_ids"])
    assert torch.equal(computed["panoptic"]["inputs"]["cls_indices"], inputs["cls_indices"])
    cls = computed["panoptic"]["intermediates"]["predictions_per_layer"][-1]["pred_class_name_logits"]
    ref_cls = fx["tasks"]["panoptic"]["intermediates"]["predictions_per_layer"][-1]["pred_class_name_logits"]
    assert (cls - ref_cls).abs().max() < NEAR
    assert (got["sem_seg"] - ref["sem_seg"]).abs().max() < NEAR
    assert not ((got["sem_seg_argmax"] != ref["sem_seg_argmax"]) & ~ref["sem_seg_near_tie_pixels"]).any()
    assert sorted(got["instance_topk_indices_flat"].tolist()) == sorted(ref["instance_topk_indices_flat"].tolist())
    c = len(inputs["class_names"]) - 1
    theirs = [int(f) for f in ref["instance_topk_indices_flat"] if inputs["is_thing_list"][int(f) % c]]
    ours = [int(f) for f in got["instance_topk_indices_flat"] if inputs["is_thing_list"][int(f) % c]]
    rows = [ours.index(f) for f in theirs]
    assert torch.equal(got["instances"]["pred_classes"][rows], ref["instances"]["pred_classes"])
    assert (got["instances"]["scores"][rows] - ref["instances"]["scores"]).abs().max() < NEAR
    near = _near(fx, "panoptic")[torch.tensor(theirs) // c]
    assert not ((got["instances"]["pred_masks"][rows] != ref["instances"]["pred_masks"]) & ~near).any()
    assert len(got["instances"]["pred_classes"]) == len(ref["instances"]["pred_classes"])
    assert got["segments_info"] == ref["segments_info"] and ref["segments_info"]
    assert not ((got["panoptic_seg"] != ref["panoptic_seg"]) & ~ref["panoptic_near_decision_pixels"]).any()


def test_region_prompts_points_scores_and_masks(fx, computed):
    got, ref = computed["region"], fx["tasks"]["region"]
    # box and point prompts drawn by this package from the original-image prompts equal the official masks
    assert torch.equal(got["inputs"]["region_masks"], ref["inputs"]["region_masks"])
    for a, b in zip(got["intermediates"]["region_sampled_points"], ref["intermediates"]["region_sampled_points"]):
        assert torch.equal(a, b)  # the official sampling with the task's seed
    assert (got["outputs"]["instances"]["scores"] - ref["outputs"]["instances"]["scores"]).abs().max() < NEAR
    assert got["outputs"]["eval_top1_query_per_region"] == list(ref["outputs"]["eval_top1_query_per_region"])
    near = _near(fx, "region")
    assert not ((got["outputs"]["instances"]["pred_masks"] != ref["outputs"]["instances"]["pred_masks"]) & ~near).any()


def test_verify_cli_passes_and_saves_under_fixture_names(fx, fx_path, tmp_path, capsys):
    from grounding.verify import main as dispatch

    out = tmp_path / "out.pt"
    rc = dispatch([str(fx_path), "--save", str(out)])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert text.rstrip().endswith("PASS")
    for line in ("referring.outputs.instances.pred_masks: 0 pixels differ", "panoptic.outputs.segments_info: equal",
                 "region.outputs.eval_top1_query_per_region: equal", "panoptic.outputs.instances.pred_classes: equal"):
        assert line in text
    saved = torch.load(out, weights_only=True)["tasks"]
    assert set(saved) == set(fx["tasks"]) == {"referring", "panoptic", "region"}
    for task, name in (("panoptic", "sem_seg"), ("region", "instances")):
        ref, got = fx["tasks"][task]["outputs"][name], saved[task]["outputs"][name]
        ref, got = (ref["scores"], got["scores"]) if name == "instances" else (ref, got)
        assert got.shape == ref.shape
    assert saved["referring"]["outputs"]["instances"]["pred_masks"].dtype == torch.uint8


def test_verify_fails_on_other_weights_and_on_a_moved_output(fx, tmp_path, capsys):
    bad = copy.deepcopy(fx)
    key = "pixel_decoder.transformer.encoder.layers.0.linear2.weight"
    bad["state_dict"][key] = bad["state_dict"][key] * 1.05
    path = tmp_path / "bad.pt"
    torch.save(bad, path)
    assert verify.main([str(path)]) == 1
    assert "mask_features: max abs diff" in capsys.readouterr().out
    moved = copy.deepcopy(fx)
    moved["tasks"]["panoptic"]["outputs"]["sem_seg"] += 1e-3
    report = verify.compare(fixture_mod.run_fixture(moved), moved, 1e-4)
    failing = [line for line in report.lines if line.endswith("FAIL")]
    assert not report.ok and len(failing) == 1 and failing[0].startswith("panoptic.outputs.sem_seg: max abs diff 1.0")


def test_verify_with_inputs_only_saves_but_fails(fx, tmp_path, capsys):
    bare = copy.deepcopy(fx)
    for task in bare["tasks"].values():
        task.pop("outputs"), task.pop("intermediates")
    path, out = tmp_path / "inputs_only.pt", tmp_path / "out.pt"
    torch.save(bare, path)
    assert verify.main([str(path), "--save", str(out)]) == 1
    assert "nothing compared" in capsys.readouterr().out
    saved = torch.load(out, weights_only=True)["tasks"]
    assert saved["referring"]["outputs"]["eval_top1_query"] == fx["tasks"]["referring"]["outputs"]["eval_top1_query"]
    assert set(saved["panoptic"]["outputs"]) >= {"sem_seg", "instances", "panoptic_seg", "segments_info"}


def test_verify_refuses_another_file(tmp_path, capsys):
    path = tmp_path / "other.pt"
    torch.save({"reference": {"repo": "someone/else"}, "tasks": {}}, path)
    assert verify.main([str(path)]) == 2


def test_full_size_keys_load_strictly_on_meta(parity_dir):
    spec = json.loads((parity_dir / "psalm" / "psalm_keys.json").read_text())
    dtypes = {"float32": torch.float32, "int64": torch.int64}
    sd = {k: torch.empty(v["shape"], dtype=dtypes[v["dtype"]], device="meta") for k, v in spec["keys"].items()}
    assert len(sd) == 935
    config = config_from_official(spec["meta"]["llava_config"])
    with torch.device("meta"):
        model = build_psalm(config)
    load_strict(model, convert_state_dict(sd, num_attention_heads=32), source="psalm_keys.json")
    assert config.vocab_size == 50297 and config.num_queries == 100 and config.swin_window_size == 12
    # the layout is not loose: a renamed key is named in the one-line error
    sd["model.layers.3.mlp.fc_in.weight"] = sd.pop("model.layers.3.mlp.fc1.weight")
    with pytest.raises(CheckpointError, match=r"missing keys: language_model.layers.3.mlp.fc1.weight.*unexpected keys: "
                                              r"language_model.layers.3.mlp.fc_in.weight"):
        load_strict(model, convert_state_dict(sd, num_attention_heads=32), source="x")


def test_fused_attention_is_split_per_head():
    heads, hidden = 2, 6  # head_dim 3
    rows = torch.arange(3 * hidden, dtype=torch.float32)  # row r of the fused weight belongs to head r // 9
    fused = rows[:, None].expand(-1, hidden).clone()
    q, k, v = split_qkv(fused, heads)
    # transformers 4.36 views the fused output as [heads, 3 (q, k, v), head_dim]: head 0 = rows 0..8, q = 0..2
    assert q[:, 0].tolist() == [0, 1, 2, 9, 10, 11]
    assert k[:, 0].tolist() == [3, 4, 5, 12, 13, 14]
    assert v[:, 0].tolist() == [6, 7, 8, 15, 16, 17]
    bq, _, bv = split_qkv(rows, heads)
    assert bq.tolist() == [0, 1, 2, 9, 10, 11] and bv.tolist() == [6, 7, 8, 15, 16, 17]


def test_checkpoint_folder_with_shards_loads_like_the_release(fx, tmp_path):
    """The fixture's weights saved as a transformers folder (sharded safetensors + index, config.json, tokenizer
    files) and read back by the loader users run on the release: the same referring scores."""
    from safetensors.torch import save_file

    folder = tmp_path / "psalm"
    folder.mkdir()
    keys = list(fx["state_dict"])
    shards = {"model-00001-of-00002.safetensors": keys[: len(keys) // 2],
              "model-00002-of-00002.safetensors": keys[len(keys) // 2:]}
    for name, part in shards.items():
        save_file({k: fx["state_dict"][k].contiguous() for k in part}, str(folder / name))
    (folder / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {}, "weight_map": {k: n for n, part in shards.items() for k in part}}))
    (folder / "config.json").write_text(json.dumps(fx["config"]["llava_config"]))
    for name, text in fx["config"]["tokenizer_files"].items():
        (folder / name).write_text(text)
    c = fx["config"]
    config = config_from_official(c["llava_config"], c["mask_decoder_cfg"], swin=c["swin"],
                                  projector_width=c["projector_mid"])
    model, tokenizer = load_checkpoint(folder, config=config)
    from grounding.psalm.predictor import PSALMPredictor

    pred = PSALMPredictor(model=model, tokenizer=tokenizer)
    res = fixture_mod.run_task(pred, fx, "referring")
    ref = fx["tasks"]["referring"]["intermediates"]["predictions_per_layer"][-1]["pred_SEG_logits"]
    assert (res["intermediates"]["predictions_per_layer"][-1]["pred_SEG_logits"] - ref).abs().max() < NEAR
    (folder / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(CheckpointError, match="model-00002-of-00002.safetensors"):
        load_checkpoint(folder, config=config)


def test_region_points_use_every_pixel_when_the_prompt_is_small():
    from grounding.psalm.vision import sample_region_points

    m = torch.zeros(16, 16, dtype=torch.bool)
    m[3, 4] = m[10, 2] = True
    pts = sample_region_points(m, 5, torch.Generator().manual_seed(0))
    assert pts[:2].tolist() == [[3 / 16, 4 / 16], [10 / 16, 2 / 16]]  # all pixels first, then repeats of them
    assert {tuple(p) for p in pts.tolist()} == {(3 / 16, 4 / 16), (10 / 16, 2 / 16)}
    with pytest.raises(ValueError, match="empty"):
        sample_region_points(torch.zeros(4, 4, dtype=torch.bool), 5)
    assert np.isclose(pts.max().item(), 10 / 16)
