"""Florence2Captioner against transformers' own Florence-2 recipe (the model card's: processor -> ``generate`` ->
``batch_decode`` -> ``post_process_generation``), on a tiny random Florence-2 saved as a model folder and loaded
through the stage's folder path: the same inputs, the same captions for every caption task, a batch of images of
different sizes giving each image its own caption; options, missing and unsupported models."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import hf_tiny
from grounding.hf.florence2 import TASKS, Florence2Captioner
from openvocab.config import load_config
from openvocab.hub import MissingFileError, RemoteRepo
from openvocab.images import load_image
from openvocab.registry import CAPTIONERS
from openvocab.stages import Captioner

NEW = 20  # tokens generated at most (the tiny model rarely ends by itself)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return hf_tiny.florence2(tmp_path_factory.mktemp("florence2") / "tiny")


@pytest.fixture(scope="module")
def images(shared_dir):
    image = load_image(shared_dir / "images" / "demo4.jpg")[0]  # 428 x 640
    return [image] + [np.ascontiguousarray(a) for a in (image[::2, ::-1], image[60:400, 100:600],
                                                        image.transpose(1, 0, 2), image[::-1])]


@pytest.fixture(scope="module")
def ref(folder):
    import transformers as hf

    return (hf.AutoProcessor.from_pretrained(str(folder)),
            hf.Florence2ForConditionalGeneration.from_pretrained(str(folder)).eval())


def card_recipe(proc, model, images, task, *, dtype=torch.float32):
    """transformers' Florence-2 example on a list of images, one ``generate`` (padding='longest' over the batch):
    the generated ids and each image's ``post_process_generation`` answer."""
    inputs = proc(text=[task] * len(images), images=list(images), padding="longest", return_tensors="pt")
    inputs["pixel_values"] = inputs["pixel_values"].to(dtype)
    with torch.no_grad():
        ids = model.generate(**inputs, max_new_tokens=NEW, num_beams=3)
    texts = proc.batch_decode(ids, skip_special_tokens=False)
    return ids, [proc.post_process_generation(t, task=task, image_size=(im.shape[1], im.shape[0]))[task]
                 for t, im in zip(texts, images)]


@pytest.mark.parametrize("task", TASKS)
def test_captions_are_the_model_cards_recipe(folder, ref, images, task):
    proc, model = ref
    cap = Florence2Captioner(model=str(folder), task=task, max_new_tokens=NEW)
    cap.setup("cpu")
    inputs = proc(text=task, images=images[0], return_tensors="pt")
    assert torch.equal(cap.prepare(images[0]), inputs["pixel_values"][0])
    for key in ("input_ids", "attention_mask"):
        assert torch.equal(cap.prompt()[key], inputs[key]), key
    alone = [card_recipe(proc, model, [im], task)[1][0] for im in images]
    assert len(set(alone)) > 1  # the captions depend on the image (else the batch checks below prove little)
    for im, expected in zip(images, alone):
        assert cap.caption([im]) == [expected]
    # one generate for the whole batch (five sizes), with and without the loader's prepare()
    assert cap.caption(images) == alone
    assert cap.caption(images, tags=[["cat"]] * len(images),
                       prepared=[cap.prepare(im) for im in images]) == alone  # tags are ignored


def test_a_batch_gives_each_image_its_own_caption(folder, ref, images):
    """transformers' batched generation pads the rows that ended early, and ``post_process_generation`` keeps that
    ``<pad>`` in a pure-text answer; the stage cuts each row at its end, so its captions are the single-image ones."""
    proc, model = ref
    task = "<CAPTION>"
    ids, batched = card_recipe(proc, model, images, task)
    alone = [card_recipe(proc, model, [im], task)[1][0] for im in images]
    pad = proc.tokenizer.pad_token
    assert any(r[-1] == proc.tokenizer.pad_token_id for r in ids.tolist())  # some row ended early: padded
    assert any(pad in b for b in batched) and all(pad not in a for a in alone)
    assert [b.replace(pad, "") for b in batched] == alone  # the same generation but for the padding
    for batch_size in (None, 2):  # one generate, or three (2 + 2 + 1)
        cap = Florence2Captioner(model=str(folder), task=task, max_new_tokens=NEW, batch_size=batch_size)
        cap.setup("cpu")
        assert cap.caption(images) == alone
    assert cap.caption([]) == []


def test_bfloat16_weights_follow_the_recipe_in_bfloat16(folder, images):
    import transformers as hf

    proc = hf.AutoProcessor.from_pretrained(str(folder))
    model = hf.Florence2ForConditionalGeneration.from_pretrained(str(folder), dtype=torch.bfloat16).eval()
    cap = Florence2Captioner(model=str(folder), max_new_tokens=NEW, dtype="bfloat16")
    cap.setup("cpu")
    assert next(cap.net.parameters()).dtype == torch.bfloat16
    expected = [card_recipe(proc, model, [im], "<CAPTION>", dtype=torch.bfloat16)[1][0] for im in images[:2]]
    assert [cap.caption([im])[0] for im in images[:2]] == expected


def test_registered_built_from_its_config_and_downloadable(folder, images):
    assert CAPTIONERS.get("Florence2Captioner") is Florence2Captioner
    cfg = load_config("caption_florence2")
    assert set(cfg.keys()) & {"tagger", "detector", "segmenter", "mask_head"} == set()
    stage = CAPTIONERS.build(cfg.captioner)
    assert isinstance(stage, Captioner) and stage.net is None  # no I/O before setup
    assert (stage.model, stage.task, stage.num_beams, stage.max_new_tokens) == \
        ("florence-community/Florence-2-base", "<CAPTION>", 3, 1024)
    assert stage.remote_repos() == [RemoteRepo(repo="florence-community/Florence-2-base",
                                               description="transformers Florence-2")]
    assert Florence2Captioner(model=str(folder)).remote_repos() == []  # a local folder: nothing to download
    local = CAPTIONERS.build(dict(cfg.captioner, model=str(folder), max_new_tokens=NEW))
    local.setup("cpu")
    assert len(local.caption(images[:1])) == 1


@pytest.mark.parametrize("options, match", [
    (dict(task="<OD>"), "task must be one of <CAPTION>, <DETAILED_CAPTION>, <MORE_DETAILED_CAPTION>"),
    (dict(task="caption"), "task must be one of"),
    (dict(num_beams=0), "num_beams must be an int >= 1"),
    (dict(max_new_tokens=2.5), "max_new_tokens must be an int >= 1"),
    (dict(batch_size=0), "batch_size must be an int >= 1 or None"),
    (dict(dtype="int8"), "dtype must be one of"),
    (dict(processor_backend="cv2"), "processor_backend must be"),
    (dict(model=""), "model must be a Hugging Face hub id or a folder"),
])
def test_bad_options_are_one_line_value_errors(options, match):
    with pytest.raises(ValueError, match=match) as err:
        Florence2Captioner(**options)
    assert "\n" not in str(err.value)


def test_missing_and_unsupported_models_are_named(folder, tmp_path, images):
    with pytest.raises(MissingFileError, match="Missing model 'org/not-here'.*HF_HUB_OFFLINE") as err:
        Florence2Captioner(model="org/not-here").setup("cpu")
    assert "hf download org/not-here" in str(err.value)  # what to download, and where it is looked for
    with pytest.raises(MissingFileError, match="Missing model folder .*no config.json"):
        Florence2Captioner(model=str(tmp_path / "nowhere")).setup("cpu")
    (tmp_path / "sam").mkdir()
    (tmp_path / "sam" / "config.json").write_text('{"model_type": "sam"}')
    with pytest.raises(ValueError, match="model type 'sam' is not supported.*florence2"):
        Florence2Captioner(model=str(tmp_path / "sam")).setup("cpu")
    (tmp_path / "remote").mkdir()  # Microsoft's original repository layout (trust_remote_code)
    (tmp_path / "remote" / "config.json").write_text(
        '{"model_type": "florence2", "auto_map": {"AutoConfig": "configuration_florence2.Florence2Config"}, '
        '"vision_config": {"model_type": "davit"}}')
    with pytest.raises(ValueError, match="trust_remote_code.*florence-community/Florence-2-base"):
        Florence2Captioner(model=str(tmp_path / "remote")).setup("cpu")
    with pytest.raises(ValueError, match="float16 needs a CUDA"):
        Florence2Captioner(model=str(folder), dtype="float16").setup("cpu")
    with pytest.raises(ValueError, match="setup"):
        Florence2Captioner(model=str(folder)).caption(images[:1])
    cap = Florence2Captioner(model=str(folder), max_new_tokens=NEW)
    cap.setup("cpu")
    with pytest.raises(ValueError, match="per image"):
        cap.caption(images[:2], tags=[["cat"]])
    with pytest.raises(ValueError, match=r"RGB uint8 \[H, W, 3\]"):
        cap.caption([images[0][..., 0]])


def test_openvocab_label_writes_florence2_captions_end_to_end(folder, ref, tmp_path, shared_dir):
    """The adapter as a job's captioner: tiny_random's chain plus the tiny Florence-2, through `openvocab label` and
    its writers; each image's caption is transformers' own recipe's on that image."""
    import json

    from pycocotools.coco import COCO

    from openvocab.cli import main

    cfg = tmp_path / "florence_job.py"
    from openvocab.config import configs_dir

    cfg.write_text(f"_base_ = {str(configs_dir() / 'tiny_random.py')!r}\n"
                   f"captioner = dict(type='Florence2Captioner', model={str(folder)!r}, max_new_tokens={NEW})\n")
    photos = tmp_path / "photos"
    photos.mkdir()
    image = load_image(shared_dir / "images" / "demo4.jpg")[0]
    from PIL import Image

    for name, array in (("a.png", image[::2]), ("b.png", image[100:300, ::-1])):
        Image.fromarray(np.ascontiguousarray(array)).save(photos / name)
    out = tmp_path / "out"
    assert main(["label", str(photos), "--config", str(cfg), "--out", str(out), "--no-progress",
                 "--formats", "coco,jsonl,labelstudio"]) == 0
    written = {json.loads(x)["file"].rsplit("/", 1)[-1]: json.loads(x)["caption"]
               for x in (out / "labels.jsonl").read_text().splitlines()}
    proc, model = ref
    for name in ("a.png", "b.png"):
        array = np.asarray(Image.open(photos / name).convert("RGB"))
        _, (expected,) = card_recipe(proc, model, [array], "<CAPTION>")
        assert written[name] == expected  # one image: no padding in transformers' own recipe either
    coco = COCO(str(out / "captions.json"))
    assert sorted(a["caption"] for a in coco.loadAnns(coco.getAnnIds())) == sorted(written.values())
