"""openvocab eval: run folder (metrics.json, summary, PNG plots), --compare table, CLI errors."""
import json

import numpy as np
import pytest

from openvocab.cli import main as openvocab_main
from openvocab.evaluation import compare, load_run, plot_per_class, summary, write_run
from openvocab.evaluation.cli import main as eval_main
from openvocab.serialize import result_to_dict
from openvocab.structures import Detections, ImageInfo, ImageResult, Tag, Tags
from openvocab.writers.coco import build_coco

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

GT = {"images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 100},
                 {"id": 2, "file_name": "b.jpg", "width": 100, "height": 100}],
      "categories": [{"id": 1, "name": "dog"}, {"id": 2, "name": "cat"}],
      "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20], "area": 400, "iscrowd": 0},
                      {"id": 2, "image_id": 2, "category_id": 2, "bbox": [40, 40, 30, 30], "area": 900, "iscrowd": 0}]}


def _run_files(tmp_path, name, boxes_b):
    """A labelling run's coco.json + labels.jsonl: image a perfect; image b's cat box given by ``boxes_b``."""
    results = [
        ImageResult(image=ImageInfo(file="imgs/a.jpg", width=100, height=100),
                    tags=Tags((Tag(name="puppy", score=0.9),)),
                    detections=Detections(boxes=np.array([[10, 10, 30, 30]], np.float32),
                                          scores=np.array([0.9], np.float32), labels=("puppy",))),
        ImageResult(image=ImageInfo(file="imgs/b.jpg", width=100, height=100),
                    tags=Tags((Tag(name="cat", score=0.8), Tag(name="puppy", score=0.6))),
                    detections=Detections(boxes=np.array(boxes_b, np.float32).reshape(-1, 4),
                                          scores=np.full(len(boxes_b), 0.8, np.float32),
                                          labels=("cat",) * len(boxes_b)))]
    d = tmp_path / name
    d.mkdir()
    (d / "coco.json").write_text(json.dumps(build_coco(results)))
    (d / "labels.jsonl").write_text("".join(json.dumps(result_to_dict(r)) + "\n" for r in results))
    return d


@pytest.fixture
def inputs(tmp_path):
    (tmp_path / "gt.json").write_text(json.dumps(GT))
    (tmp_path / "tags_gt.jsonl").write_text('{"file": "a.jpg", "tags": ["dog"]}\n{"file": "b.jpg", "tags": ["cat"]}\n')
    (tmp_path / "onto.json").write_text(json.dumps({"dog": ["puppy"]}))
    (tmp_path / "syn.json").write_text(json.dumps({"puppy": "dog"}))
    return tmp_path


def _eval(tmp, run, out):
    return eval_main(["--pred", str(run / "coco.json"), "--gt", str(tmp / "gt.json"), "--ontology",
                      str(tmp / "onto.json"), "--tags-pred", str(run / "labels.jsonl"), "--tags-gt",
                      str(tmp / "tags_gt.jsonl"), "--synonyms", str(tmp / "syn.json"), "--out", str(out)])


def test_eval_writes_run_folder_and_compare_side_by_side(inputs, capsys):
    good = _run_files(inputs, "good", [[40, 40, 70, 70]])
    bad = _run_files(inputs, "bad", [[0, 60, 30, 90]])  # misses the cat
    assert _eval(inputs, good, inputs / "runA") == 0
    out = capsys.readouterr().out
    assert "bbox/AP" in out and "tags/mAP" in out
    assert _eval(inputs, bad, inputs / "runB") == 0
    a = load_run(inputs / "runA")
    assert a["detection"]["bbox"]["stats"]["AP"] == pytest.approx(1.0)
    assert a["detection"]["segm"] is None  # no masks in this run
    # tags: dog (via synonym puppy) a pos .9, b neg .6 -> AP 1; cat: b pos .8 -> AP 1. Puppy fired on b: FP.
    assert a["tags"]["mAP"] == pytest.approx(1.0) and a["tags"]["per_tag"]["dog"]["fp"] == 1
    b = load_run(inputs / "runB")
    # cat missed: AP 0 for cat, dog still 1 -> mean 0.5
    assert b["detection"]["bbox"]["per_class"] == {"dog": pytest.approx(1.0), "cat": 0.0}
    assert b["detection"]["bbox"]["stats"]["AP"] == pytest.approx(0.5)
    for run in ("runA", "runB"):
        for png in ("bbox_ap.png", "tag_ap.png"):
            assert (inputs / run / png).read_bytes()[:8] == PNG_MAGIC
        assert "bbox/AP" in (inputs / run / "summary.txt").read_text()
    assert json.loads((inputs / "runA" / "metrics.json").read_text())["detection"]["bbox"]["stats"]["APl"] is None

    capsys.readouterr()
    assert eval_main(["--compare", str(inputs / "runA"), str(inputs / "runB"), "--per-class"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["metric", "runA", "runB"]
    rows = {ln.split()[0]: ln.split()[1:] for ln in lines[2:]}
    assert rows["bbox/AP"] == ["1.000", "0.500"]
    assert rows["bbox/cat"] == ["1.000", "0.000"]
    assert rows["tags/mAP"] == ["1.000", "1.000"]
    assert rows["bbox/APl"] == ["-", "-"]  # no large objects

    # the lead's CLI dispatches "openvocab eval" here
    assert openvocab_main(["eval", "--compare", str(inputs / "runB")]) == 0
    assert "0.500" in capsys.readouterr().out


def test_compare_table_and_summary_from_metrics_dicts(tmp_path):
    write_run(tmp_path / "x", {"tags": {"mAP": 0.25, "micro": {"precision": 0.5, "recall": float("nan"), "f1": 0.1},
                                        "macro": {}, "per_tag": {"cat": {"ap": 0.25}}}})
    write_run(tmp_path / "y", {"detection": {"bbox": {"stats": {"AP": 0.4}, "per_class": {"cat": 0.4}}}})
    assert summary(load_run(tmp_path / "x"))["tags/micro_recall"] is None
    t = compare([tmp_path / "x", tmp_path / "y"], per_class=True)
    assert t.header == ("metric", "x", "y")
    cells = {r[0]: r[1:] for r in t.rows}
    assert cells["tags/mAP"] == ("0.250", "-") and cells["bbox/AP"] == ("-", "0.400")
    assert cells["tag/cat"] == ("0.250", "-") and cells["bbox/cat"] == ("-", "0.400")
    assert str(t).splitlines()[1].startswith("------")
    with pytest.raises(ValueError, match="no metrics.json"):
        compare([tmp_path / "missing"])


def test_plot_per_class_many_classes(tmp_path):
    per_class = {f"c{i:03d}": i / 300 for i in range(300)}
    per_class["none"] = float("nan")
    path = plot_per_class(per_class, tmp_path / "ap.png", title="AP", max_classes=40)
    assert path.read_bytes()[:8] == PNG_MAGIC


def test_cli_errors_are_one_line_with_exit_2(inputs, capsys):
    bad = inputs / "labels.jsonl"
    bad.write_text('{"file": "a.jpg", "tags": []}\n\n{"file": "b.jpg" "tags": []}\n')
    rc = eval_main(["--tags-pred", str(bad), "--tags-gt", str(inputs / "tags_gt.jsonl"), "--out", str(inputs / "r")])
    assert rc == 2
    err = capsys.readouterr().err
    assert f"{bad}:3: invalid JSON" in err and "Traceback" not in err
    assert eval_main(["--pred", str(inputs / "gt.json"), "--out", str(inputs / "r")]) == 2
    assert "--pred and --gt go together" in capsys.readouterr().err
    assert eval_main(["--out", str(inputs / "r")]) == 2
    assert "nothing to evaluate" in capsys.readouterr().err
    (inputs / "broken.json").write_text('{"images": [1, 2}')
    assert eval_main(["--pred", str(inputs / "broken.json"), "--gt", str(inputs / "gt.json"),
                      "--out", str(inputs / "r")]) == 2
    assert "broken.json: invalid JSON at line 1" in capsys.readouterr().err
