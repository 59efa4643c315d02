"""TAP files: restricted unpickler, official checkpoint / concept pickles, tokenizers, weight data."""
from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pytest
import torch

from grounding.tap.concepts import ConceptMatrix, build_concept_matrix, load_concept_matrix, save_concept_matrix
from grounding.tap.convert import read_tap_checkpoint
from grounding.tap.model import build_tap_vit_b, build_tap_vit_h, build_tap_vit_l
from grounding.tap.safe_pickle import UnsafePickleError, safe_loads
from grounding.tap.tokenizer import ByteTokenizer, IdTokenizer, SentencePieceTokenizer
from grounding.tap.weights import CHECKPOINTS, CONCEPTS, TOKENIZER
from openvocab.checkpoint import CheckpointError


class _Evil:
    """Unpickling calls ``os.system("touch <marker>")`` with the plain unpickler."""

    marker = os.devnull  # harmless default; the test below points it at a temporary file

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _EvalEvil:
    def __reduce__(self):
        return (eval, ("__import__('os').getcwd()",))


def test_plain_pickle_would_run_the_payload_ours_refuses(tmp_path):
    marker = tmp_path / "pwned"
    evil = _Evil()
    evil.marker = str(marker)
    data = pickle.dumps({"weights": np.zeros(3, np.float32), "x": evil}, protocol=2)
    for protocol_data in (data, pickle.dumps([evil], protocol=0), pickle.dumps(evil, protocol=5)):
        with pytest.raises(UnsafePickleError, match="posix.system|os.system|nt.system"):
            safe_loads(protocol_data)
        assert not marker.exists()
    with pytest.raises(UnsafePickleError, match="builtins.eval"):
        safe_loads(pickle.dumps(_EvalEvil()))
    pickle.loads(data)  # the control: the standard unpickler does execute it
    assert marker.exists()


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_safe_pickle_numpy_roundtrip(protocol):
    obj = {"w": np.arange(12, dtype=np.float32).reshape(3, 4), "i": np.array([1, 2], np.int64),
           "n": [np.float16(1.5), "name", (1, 2.0)]}
    got = safe_loads(pickle.dumps(obj, protocol=protocol))
    assert got["w"].dtype == np.float32 and np.array_equal(got["w"], obj["w"])
    assert np.array_equal(got["i"], obj["i"]) and got["n"][1:] == ["name", (1, 2.0)]


@pytest.mark.parametrize("evil", [_Evil(), {"a": _Evil()}, [np.zeros(2), _Evil()]])
def test_safe_pickle_refuses_code(evil):
    with pytest.raises(UnsafePickleError, match="not allowed"):
        safe_loads(pickle.dumps(evil, protocol=2))


def test_official_pickle_checkpoint_loads(parity_dir, tmp_path):
    fx = torch.load(parity_dir / "tap" / "tap_tiny_A.pt", map_location="cpu", weights_only=True)
    path = tmp_path / "tap.pkl"
    with open(path, "wb") as f:
        pickle.dump({k: v.numpy() for k, v in fx["state_dict"].items()}, f)
    sd = read_tap_checkpoint(path)
    assert set(sd) == set(fx["state_dict"])
    for k, v in fx["state_dict"].items():
        assert sd[k].dtype == v.dtype and torch.equal(sd[k], v)
    evil = tmp_path / "evil.pkl"
    with open(evil, "wb") as f:
        pickle.dump({"x": _Evil()}, f)
    with pytest.raises(CheckpointError, match="refused"):
        read_tap_checkpoint(evil)


def test_official_builders_match_official_keys(parity_dir):
    keys = json.loads((parity_dir / "tap" / "tap_keys_official.json").read_text())
    for name, build in (("tap_vit_b", build_tap_vit_b), ("tap_vit_l", build_tap_vit_l),
                        ("tap_vit_h", build_tap_vit_h)):
        with torch.device("meta"):
            model = build()
        got = {k: (list(v.shape), str(v.dtype).replace("torch.", "")) for k, v in model.state_dict().items()}
        want = {k: (shape, dtype) for k, shape, dtype in keys[name]["keys"]}
        assert got == want, name


def test_concept_pickle_and_files(tmp_path):
    w = np.random.RandomState(0).randn(8, 3).astype(np.float32)
    pkl = tmp_path / "mine.pkl"
    with open(pkl, "wb") as f:
        pickle.dump([w, ["cat", "dog", "fire hydrant"]], f)
    cm = load_concept_matrix(str(pkl))
    assert cm.names == ("cat", "dog", "fire hydrant") and torch.equal(cm.weights, torch.from_numpy(w))
    for suffix in (".pt", ".safetensors"):
        save_concept_matrix(cm, tmp_path / f"c{suffix}")
        back = load_concept_matrix(str(tmp_path / f"c{suffix}"))
        assert back.names == cm.names and torch.equal(back.weights, cm.weights)
    sem = torch.tensor([[1.0, 0, 0, 0, 0, 0, 0, 0]])
    want = torch.from_numpy(w[0:1])  # normalised sem picks row 0 of W
    torch.testing.assert_close(cm.logits(sem), want)
    idx, score = cm.topk(sem, 2)
    assert idx[0].tolist() == torch.from_numpy(w[0]).argsort(descending=True)[:2].tolist()
    assert score[0, 0] == pytest.approx(torch.softmax(want[0], 0).max().item(), rel=1e-6)
    with pytest.raises(ValueError, match="dims"):
        cm.logits(torch.zeros(1, 5))


def test_build_concept_matrix_scale():
    class Enc:
        def encode(self, texts):
            assert texts == ["a cat", "a dog"]
            return torch.tensor([[3.0, 4.0], [0.0, 2.0]])

    cm = build_concept_matrix(["cat", "dog"], Enc(), logit_scale=100.0)
    torch.testing.assert_close(cm.weights, torch.tensor([[60.0, 0.0], [80.0, 100.0]]))
    with pytest.raises(ValueError):
        build_concept_matrix([], Enc())
    with pytest.raises(ValueError):
        ConceptMatrix(weights=torch.zeros(4, 3), names=("a", "b"))


def test_sentencepiece_tokenizer(parity_dir):
    tok = SentencePieceTokenizer(model_file=parity_dir / "tap" / "text_tokenizer.model")
    assert (tok.n_words, tok.bos_id, tok.eos_id, tok.pad_id) == (32000, 1, 2, 31999)
    ids = tok.encode("a red car parked on the street")
    row = [tok.bos_id] + ids + [tok.eos_id, 500, tok.pad_id]
    assert tok.detokenize(np.array([row])) == ["a red car parked on the street"]


def test_small_tokenizers():
    bt = ByteTokenizer()
    assert (bt.n_words, bt.bos_id, bt.eos_id, bt.pad_id) == (260, 1, 2, 259)
    row = [1] + bt.encode("héllo") + [2, 7, 259]
    assert bt.detokenize([row]) == ["héllo"]
    it = IdTokenizer(n_words=512, pad_id=511)
    assert it.detokenize([[1, 30, 509, 2, 4]]) == ["30 509"]


def test_weight_metadata():
    assert CHECKPOINTS["tap_vit_l_v1_1"].hf_repo == "BAAI/tokenize-anything"
    assert CHECKPOINTS["tap_vit_h_v1_1"].hf_filename == "models/tap_vit_h_v1_1.pkl"
    assert CONCEPTS["coco_80"].hf_filename == "concepts/coco_80.pkl"
    assert TOKENIZER.url.endswith("tokenize_anything/modeling/text_tokenizer.model")
    assert all(s.sha256 is None for s in [*CHECKPOINTS.values(), *CONCEPTS.values(), TOKENIZER])


def test_wrong_official_pickle_names_missing_and_unexpected_keys(tmp_path):
    from grounding.tap import TAPMaskHead
    from grounding.tap.model import build_tap_tiny

    sd = {k: v.numpy() for k, v in build_tap_tiny().state_dict().items()}
    del sd["image_encoder.cross_conv.0.norm1.running_var"]
    sd["image_encoder.blocks.0.attn.rel_pos_h"] = np.zeros((7, 8), np.float32)  # a SAM-style key
    path = tmp_path / "wrong.pkl"
    with open(path, "wb") as f:
        pickle.dump(sd, f)
    head = TAPMaskHead(variant="tiny", checkpoint=str(path), concepts=None, caption=False)
    with pytest.raises(CheckpointError, match=r"wrong\.pkl does not fit TapModel: 1 missing keys: "
                                              r"image_encoder\.cross_conv\.0\.norm1\.running_var; 1 unexpected "
                                              r"keys: image_encoder\.blocks\.0\.attn\.rel_pos_h"):
        head.setup("cpu")
