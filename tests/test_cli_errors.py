"""Bad arguments and hostile inputs on the command line: one line on stderr, no traceback, exit status 2
for a usage or input error and 1 for a failure while running (label's own arguments: test_cli_job)."""
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from openvocab.cli import main

ROOT = Path(__file__).resolve().parents[1]
IMG = str(ROOT / "demo" / "images")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("inputs")
    (d / "gt.jsonl").write_text('{"file": "a.jpg", "tags": ["dog"]}\n')
    (d / "pred_other.jsonl").write_text('{"file": "zzz.jpg", "tags": [{"name": "dog", "score": 0.9}]}\n')
    (d / "pred_ok.jsonl").write_text('{"file": "a.jpg", "tags": [{"name": "dog", "score": 0.9}]}\n')
    (d / "a_file").write_text("")
    (d / "bad_run").mkdir()
    (d / "bad_run" / "metrics.json").write_text('{"tags": 5}')
    (d / "bin_run").mkdir()
    (d / "bin_run" / "metrics.json").write_bytes(b"\xff\xfe{}")
    (d / "tags.txt").write_text("dog\ncat\n")
    (d / "caps.txt").write_text("a dog\n")
    return d


def _table(d):
    """(argv, exit status, a part of the message)"""
    f = str(d)
    return [
        (["tag", IMG, "--config", "tiny_random", "--cfg-options", "tagger.threshold"], 2,
         "--cfg-options 'tagger.threshold': expected KEY=VALUE"),
        (["tag", IMG, "--config", "tiny_random", "--cfg-options", "=0.3"], 2, "expected KEY=VALUE"),
        (["detect", "a cat", IMG, "--config", "tiny_random", "--cfg-options", "a=[1,2"], 2, "Imbalanced brackets"),
        (["describe-tags", "kite", "--out", f"{f}/o.json", "--cfg-options", "describer"], 2, "expected KEY=VALUE"),
        (["describe-tags", "kite", "--out", f"{f}/o.json", "--cfg-options",
          "describer.backend.base_url=http://127.0.0.1:9/v1", "describer.backend.retries=1",
          "describer.backend.timeout=2", "describer.cache=None"], 1,
         "describing tag 'kite': http://127.0.0.1:9/v1/chat/completions (model gpt-3.5-turbo) failed"),
        (["embed-tags", f"{f}/gt.jsonl", "--out", f"{f}/o.safetensors", "--cfg-options", "x"], 2, "KEY=VALUE"),
        (["parse-captions", f"{f}/caps.txt", "--tags", f"{f}/tags.txt", "--out", f"{f}/o.jsonl",
          "--cfg-options", "parser.batch_size"], 2, "expected KEY=VALUE"),
        (["train", "train/tagger_tiny", "--cfg-options", "model.variant"], 2, "expected KEY=VALUE"),
        (["eval", "--bogus"], 2, "openvocab eval: unrecognized arguments: --bogus (see openvocab eval --help)"),
        (["eval", "--pred"], 2, "argument --pred: expected one argument"),
        (["eval", "--max-dets-per-class", "x", "--out", f"{f}/r"], 2, "invalid int value: 'x'"),
        (["eval", "--tags-pred", f"{f}/pred_ok.jsonl", "--tags-gt", f"{f}/gt.jsonl", "--out", f"{f}/a_file"], 2,
         "a_file: exists and is not a folder"),
        (["eval", "--tags-pred", f"{f}/pred_ok.jsonl", "--tags-gt", f"{f}/gt.jsonl", "--out", f"{f}/a_file/r"], 1,
         "cannot write the results to"),
        (["eval", "--tags-pred", f"{f}/pred_other.jsonl", "--tags-gt", f"{f}/gt.jsonl", "--out", f"{f}/r"], 2,
         "no predicted image matches a ground-truth image by file name (e.g. 'zzz.jpg' vs 'a.jpg')"),
        (["eval", "--tags-pred", f"{f}/gt.jsonl", "--tags-gt", f"{f}/tags.txt", "--out", f"{f}/r"], 2, "tags.txt"),
        (["eval", "--compare", f"{f}/bad_run"], 2, "bad_run/metrics.json: not the metrics.json of an"),
        (["eval", "--compare", f"{f}/bin_run"], 2, "bin_run/metrics.json: not UTF-8 text"),
        (["download", "--config", "no_such_config"], 2, "Config 'no_such_config' not found"),
        (["download", "--config", "tiny_random", "--cfg-options", "detector"], 2, "expected KEY=VALUE"),
        (["download", "--config", "tiny_random", "--bogus"], 2, "unrecognized arguments: --bogus"),
        (["demo", "--config", "no_such_config"], 2, "Config 'no_such_config' not found"),
        (["demo", "--port", "0"], 2, "argument --port/-p"),
        (["demo", "--port", "70000"], 2, "a port is 1..65535, got 70000"),
        (["train", "train/tagger_tiny", "--work-dir", f"{f}/wd"], 2,
         "training data not found: train_dataloader.dataset.ann_file=data/synthetic/train/tags.jsonl"),
        (["tag", IMG, "--config", "tiny_random", "--cfg-options", "detectr.box_threshold=0.9"], 2,
         "has no entry 'detectr'; closest: detector"),
        (["tag", IMG, "--config", "tiny_random", "--cfg-options", "custom_imports.imports=[os]"], 2,
         "custom_imports cannot be set by an override"),
        (["detect", "a cat", IMG, "--config", "tiny_random", "--cfg-options", "detector.type=os.system"], 2,
         "not a registered component"),
        (["tag", IMG, "--config", "no_such_config"], 2, "Config 'no_such_config' not found"),
        (["detect", "a cat", IMG, "--config", "tiny_random", "--device", "banana"], 2, "banana"),
    ]


@pytest.mark.parametrize("case", range(len(_table(Path("/x")))))
def test_bad_arguments_give_one_line_and_the_documented_status(files, case, capsys, monkeypatch):
    table = _table(files)
    argv, status, part = table[case]
    monkeypatch.chdir(ROOT)
    try:
        rc = main(argv)
    except SystemExit as e:  # argparse's own exit
        rc = e.code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert rc == status and len(err.strip().splitlines()) == 1 and part in err, (argv, rc, err)


def test_parse_captions_keeps_the_valid_lines_and_names_the_bad_ones(files, tmp_path, capsys):
    caps = tmp_path / "caps.txt"
    caps.write_bytes(b"a dog on the grass\n\xff\xfe broken\r\nimg2.jpg\ta cat and a dog\n\n"
                     b'{"file": "img3.jpg", "caption": "a caf\xc3\xa9 cat"}\nbad \xc3\x28 too\n')
    out = tmp_path / "o.jsonl"
    rc = main(["parse-captions", str(caps), "--tags", str(files / "tags.txt"), "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" not in err
    assert f"openvocab parse-captions: {caps}: 2 lines not valid UTF-8, left out: lines 2, 6" in err
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [(r["file"], r["caption"]) for r in rows] == [("1", "a dog on the grass"), ("img2.jpg", "a cat and a dog"),
                                                         ("img3.jpg", "a café cat")]
    assert set(rows[1]["tags"]) == {"cat", "dog"}


class _System:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned",))


def test_a_refused_concepts_file_is_one_message(tmp_path, capsys):
    evil = tmp_path / "concepts.pkl"
    evil.write_bytes(pickle.dumps([_System(), ["a"]], protocol=2))
    rc = main(["label", IMG + "/shapes_1.jpg", "--config", "tiny_random", "--out", str(tmp_path / "out"),
               "--no-progress", "--cfg-options", f"mask_head.concepts={evil}"])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "concepts.pkl: concept file refused" in err and "system" in err and "pwned" not in capsys.readouterr().out


@pytest.mark.parametrize("what", ["zip", "pickle"])
def test_a_torch_file_named_safetensors_says_what_it_is(tmp_path, what):
    from grounding.tap.concepts import load_concept_matrix
    from openvocab.checkpoint import CheckpointError, read_state_dict
    from tagging.recognize_anything.openset import load_openset_embeddings

    path = tmp_path / "weights.safetensors"
    torch.save({"w": torch.zeros(2)}, path, _use_new_zipfile_serialization=(what == "zip"))
    kind = "a zip archive" if what == "zip" else "a Python pickle"
    for read in (read_state_dict, load_concept_matrix, load_openset_embeddings):
        with pytest.raises(CheckpointError, match=f"weights.safetensors: not a safetensors file but {kind}") as e:
            read(path)
        assert "rename it to .pth" in str(e.value) and "\n" not in str(e.value)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(np.arange(64, dtype=np.uint8).tobytes())
    with pytest.raises(CheckpointError, match="junk.safetensors: not a valid safetensors file"):
        read_state_dict(junk)


def test_train_without_its_data_leaves_no_work_dir(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "train/tagger_tiny", "--work-dir", str(tmp_path / "wd")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1 and "training data not found" in err
    assert not (tmp_path / "wd").exists()


def test_demo_on_a_port_in_use_is_one_line(capsys):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        rc = main(["demo", "--config", "tiny_random", "--port", str(port)])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("openvocab demo:")]
    assert "Traceback" not in err and rc == 1 and len(lines) == 1, err
    assert f"cannot serve the demo on 127.0.0.1:{port}" in lines[0] and "--port" in lines[0]
