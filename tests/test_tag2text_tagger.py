"""Tag2TextTagger: registered as tagger and captioner, built from its configs, tiny random weights on the demo
images, tags that steer captions, sampling, missing files, validation."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from openvocab.cli import main as cli_main
from openvocab.config import load_config
from openvocab.hub import MissingFileError
from openvocab.images import load_image
from openvocab.build import build_pipeline
from openvocab.registry import CAPTIONERS, TAGGERS
from openvocab.stages import Captioner, Tagger
from openvocab.structures import Tags
from tagging.recognize_anything.tag_lists import TINY_TAGS
from tagging.tag2text import Tag2TextTagger

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def demo_images() -> list[np.ndarray]:
    paths = sorted((ROOT / "demo" / "images").glob("*.jpg"))
    assert paths
    return [load_image(str(p))[0] for p in paths]


@pytest.fixture(scope="module")
def tiny() -> Tag2TextTagger:
    tagger = build_pipeline(load_config("tiny_tag2text_tagger")).tagger
    tagger.setup("cpu")
    return tagger


def test_registered_as_tagger_and_captioner():
    assert TAGGERS.get("Tag2TextTagger") is Tag2TextTagger
    assert CAPTIONERS.get("Tag2TextCaptioner") is Tag2TextTagger
    stage = CAPTIONERS.build(dict(type="Tag2TextCaptioner", variant="tiny", checkpoint=None))
    assert isinstance(stage, Captioner) and isinstance(stage, Tagger)


def test_tiny_config_tags_and_captions_the_demo_images(tiny, demo_images):
    assert tiny.class_names == list(TINY_TAGS) and tiny.delete_tag_index == []
    both = tiny.tag_and_caption(demo_images)
    assert len(both) == len(demo_images)
    tags = tiny.tag(demo_images)
    assert [t.names for t in tags] == [t.names for t, _ in both]
    assert sum(len(t) for t in tags) > 0
    captions = tiny.caption(demo_images)
    assert captions == [c for _, c in both]
    assert all(isinstance(c, str) and c for c in captions)
    # own tags = the same tags given in tag-list order
    own = [[n for n in tiny.class_names if n in t.names] for t in tags]
    assert tiny.caption(demo_images, tags=own) == captions
    assert tiny.caption(demo_images, prepared=[tiny.prepare(im) for im in demo_images]) == captions
    assert tiny.caption([]) == [] and tiny.tag_and_caption([]) == []


def test_tiny_config_through_the_cli(demo_images, capsys):
    photo = sorted((ROOT / "demo" / "images").glob("*.jpg"))[0]
    assert cli_main(["tag", str(photo), "--config", "tiny_tag2text_tagger"]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith(f"{photo}: ")


def test_user_tags_steer_the_caption(tiny, demo_images):
    image = demo_images[:1]
    dog, beach = tiny.caption(image, tags=[["dog"]]), tiny.caption(image, tags=[["car", "beach"]])
    assert dog != beach  # the tag encoding guides the decoder
    assert tiny.caption(image, tags=[Tags.from_names(["car", "beach"])]) == beach
    # per image: given tags, own tags (None), no tags at all (an empty tag string)
    mixed = tiny.caption(demo_images[:2], tags=[["dog"], None])
    assert mixed == [dog[0], tiny.caption(demo_images[1:2])[0]]
    silent = Tag2TextTagger(variant="tiny", checkpoint=None, class_thresholds=1.0)  # no tag can fire
    assert silent.caption(image) == tiny.caption(image, tags=[[]])
    with pytest.raises(ValueError, match="tag lists"):
        tiny.caption(demo_images[:2], tags=[["dog"]])
    with pytest.raises(ValueError, match="one string"):
        tiny.caption(image, tags=["dog"])


def test_generation_settings_change_captions(tiny, demo_images):
    image = demo_images[:1]
    short = Tag2TextTagger(variant="tiny", checkpoint=None, max_length=12, min_length=12)
    assert len(short.caption(image)[0].split()) < len(tiny.caption(image)[0].split())
    sampled = Tag2TextTagger(variant="tiny", checkpoint=None, sample=True)
    first = sampled.caption(demo_images)
    assert sampled.caption(demo_images) == first  # each call starts from caption_seed
    other = Tag2TextTagger(variant="tiny", checkpoint=None, sample=True, caption_seed=1).caption(demo_images)
    assert other != first


def test_official_config_names_its_files(monkeypatch, tmp_path, capsys):
    tagger = build_pipeline(load_config("tagger_tag2text")).tagger
    assert isinstance(tagger, Tag2TextTagger) and tagger.settings.max_length == 50 and tagger.settings.num_beams == 3
    assert tagger.required_files() == ["tag2text_swin_14m.pth", "tag2text_ori_tag_list.txt",
                                       "bert-base-uncased-vocab.txt"]
    assert tagger.delete_tag_index == [127, 2961, 3351, 3265, 3338, 3355, 3359]
    monkeypatch.setenv("OPENVOCAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("OPENVOCAB_CHECKPOINT_DIR", raising=False)
    photo = sorted((ROOT / "demo" / "images").glob("*.jpg"))[0]
    assert cli_main(["tag", str(photo), "--config", "tagger_tag2text"]) == 2
    err = capsys.readouterr().err
    assert "tag2text_swin_14m.pth: https://huggingface.co/xinyu1205/recognize_anything_model/resolve/main/" \
           "tag2text_swin_14m.pth" in err and "tag2text_ori_tag_list.txt" in err
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a"]))
    with pytest.raises(MissingFileError, match="tag2text_swin_14m.pth"):
        Tag2TextTagger(tag_list=["a"], vocab=str(vocab)).setup("cpu")


def test_checkpoint_and_tokenizer_must_agree(tmp_path):
    src = Tag2TextTagger(variant="tiny", checkpoint=None)
    src.setup("cpu")
    ckpt = tmp_path / "t2t_tiny.pth"
    torch.save({"model": src.model.state_dict()}, ckpt)
    from tagging.tag2text.tokenizer import tiny_vocab

    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(tiny_vocab()))
    same = Tag2TextTagger(variant="tiny", checkpoint=str(ckpt), vocab=str(vocab), tag_list=list(TINY_TAGS),
                          threshold=0.5)
    x = [np.full((50, 70, 3), 120, np.uint8)]
    assert same.caption(x) == src.caption(x) and same.tag(x)[0].names == src.tag(x)[0].names
    vocab.write_text("\n".join(tiny_vocab()[:-3]))
    from openvocab.checkpoint import CheckpointError

    with pytest.raises(CheckpointError, match="text vocabulary"):
        Tag2TextTagger(variant="tiny", checkpoint=str(ckpt), vocab=str(vocab), tag_list=list(TINY_TAGS)).setup("cpu")


def test_validation():
    for kw in [dict(variant="swin_l"), dict(num_beams=0), dict(max_length=3), dict(top_p=1.5), dict(tag_language="de"),
               dict(batch_size=0)]:
        with pytest.raises(ValueError):
            Tag2TextTagger(**kw)
    with pytest.raises(ValueError, match="Chinese"):
        Tag2TextTagger(variant="tiny", checkpoint=None, tag_language="zh").setup("cpu")
    with pytest.raises(ValueError, match="must agree"):
        Tag2TextTagger(variant="tiny", checkpoint=None, model_kwargs=dict(text_hidden_size=64)).setup("cpu")
