"""The tag describer against a hostile or broken LLM server (local threaded http.server): empty answers
are never kept, the HTTP timeout is a deadline for the whole request, cut-short and garbled answers are
retried and then fail with one line naming the tag and the endpoint."""
import http.server
import json
import threading
import time

import pytest

import tagging  # noqa: F401  (registers)
from openvocab.cli import main as cli_main
from openvocab.registry import TOOLS
from tagging.descriptions.backends import BackendError, OpenAIHTTPBackend
from tagging.descriptions.prompts import DESCRIPTION_PROMPTS


def _answer(n: int, text: str = "a striped animal") -> bytes:
    return json.dumps({"choices": [{"message": {"content": text}} for _ in range(n)]}).encode()


class Hostile(http.server.BaseHTTPRequestHandler):
    """Behaviour by model name; ``seen`` counts the requests per model."""

    seen: dict = {}
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        model = body["model"]
        Hostile.seen[model] = Hostile.seen.get(model, 0) + 1
        try:
            getattr(self, "_" + model.replace("-", "_"))(body, Hostile.seen[model])
        except OSError:  # the client hung up (as it should when its deadline passes)
            pass

    def _send(self, raw: bytes, length=None):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw) if length is None else length))
        self.end_headers()
        self.wfile.write(raw)
        self.wfile.flush()

    def _ok(self, body, k):
        self._send(_answer(body["n"]))

    def _blank(self, body, k):  # every answer is white space
        self._send(_answer(body["n"], " \n\t "))

    def _blank_first(self, body, k):  # the first request's answers are empty, then real ones
        self._send(_answer(body["n"], "" if k == 1 else f"answer {k}"))

    def _trickle_body(self, body, k):  # a byte every 0.8 s: never idle long enough for a per-read timeout
        raw = _answer(body["n"])
        self.send_response(200)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        for i in range(len(raw)):
            self.wfile.write(raw[i:i + 1])
            self.wfile.flush()
            time.sleep(0.8)

    def _trickle_status(self, body, k):  # even the status line comes a byte at a time
        for ch in b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}":
            self.wfile.write(bytes([ch]))
            self.wfile.flush()
            time.sleep(0.8)

    def _truncated(self, body, k):  # announces 1000 bytes, sends a part, hangs up (IncompleteRead)
        self._send(_answer(body["n"])[:20], length=1000)
        self.close_connection = True

    def _reset(self, body, k):  # hangs up without an answer
        self.close_connection = True

    def _garbled(self, body, k):  # a cut JSON document with a correct length
        self._send(b'{"choices": [{"mess')

    def _flaky(self, body, k):  # the first two answers are cut short, then a good one
        if k <= 2:
            self._truncated(body, k)
        else:
            self._ok(body, k)

    def log_message(self, *a):
        pass


@pytest.fixture(scope="module")
def base():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hostile)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()


def _backend(base, model, **kw):
    return OpenAIHTTPBackend(base_url=base, model=model, **{"retries": 1, "backoff": 0, "timeout": 5, **kw})


def _describer(backend, cache):
    return TOOLS.build(dict(type="LLMTagDescriber", backend=backend, samples_per_prompt=2, cache=str(cache)))


def test_empty_answers_are_asked_again_and_never_cached(base, tmp_path):
    cache = tmp_path / "cache.json"
    d = _describer(_backend(base, "blank-first"), cache)
    descs = d.describe(["zebra"])["zebra"]
    assert len(descs) == 1 + 2 * len(DESCRIPTION_PROMPTS) and all(s.strip() for s in descs)
    assert descs[1] == "answer 2"  # the empty first answers were dropped, not kept

    d = _describer(_backend(base, "blank"), cache)
    with pytest.raises(BackendError, match=r"describing tag 'okapi': only 0 of 2 answers .* were not empty") as e:
        d.describe(["okapi"])
    assert "\n" not in str(e.value)
    stored = json.loads(cache.read_text())
    assert not any(k.endswith("|okapi") for k in stored) and any(k.endswith("|zebra") for k in stored)


def test_a_cache_holding_empty_descriptions_is_not_believed(base, tmp_path):
    cache = tmp_path / "cache.json"
    d = _describer(_backend(base, "ok"), cache)
    cache.write_text(json.dumps({d._key("kiwi"): ["a photo of a kiwi.", "", "  "]}))  # an older version's cache
    out = d.describe(["kiwi"])["kiwi"]
    assert (d.hits, d.misses) == (0, 1) and all(s.strip() for s in out)


@pytest.mark.parametrize("model", ["trickle-body", "trickle-status"])
def test_timeout_is_a_deadline_for_the_whole_request(base, model):
    b = _backend(base, model, timeout=1)
    start = time.monotonic()
    with pytest.raises(BackendError, match=r"/v1/chat/completions \(model trickle-.*\) failed after 1 attempt: "
                                           r"no complete answer within 1s"):
        b.generate("What does a zebra look like?", 1)
    assert time.monotonic() - start < 3  # 1 s deadline (a per-read timeout would wait for ever)


@pytest.mark.parametrize("model,why", [("truncated", "IncompleteRead"), ("reset", "RemoteDisconnected"),
                                       ("garbled", "unexpected response")])
def test_cut_short_answers_are_retried_then_fail_in_one_line(base, tmp_path, model, why):
    Hostile.seen.pop(model, None)
    d = _describer(_backend(base, model, retries=3, backoff=0.01), tmp_path / "c.json")
    with pytest.raises(BackendError) as e:
        d.describe(["quokka"])
    msg = str(e.value)
    assert Hostile.seen[model] == 3 and "\n" not in msg
    assert msg.startswith("describing tag 'quokka': ") and f"{base}/chat/completions" in msg
    assert "after 3 attempts" in msg and why in msg


def test_a_flaky_server_is_retried_until_it_answers(base):
    Hostile.seen.pop("flaky", None)
    assert _backend(base, "flaky", retries=3, backoff=0.01).generate("x", 2) == ["a striped animal"] * 2
    assert Hostile.seen["flaky"] == 3


def test_describe_tags_command_prints_one_line_and_exits_1(base, tmp_path, capsys):
    cfg = tmp_path / "describe.py"
    cfg.write_text("custom_imports = dict(imports=['tagging'], allow_failed_imports=False)\n"
                   "describer = dict(type='LLMTagDescriber', backend=dict(type='OpenAIHTTPBackend', "
                   f"base_url='{base}', model='truncated', retries=2, backoff=0), samples_per_prompt=2, cache=None)\n")
    out = tmp_path / "tags.json"
    assert cli_main(["describe-tags", "red panda", "--out", str(out), "--config", str(cfg)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "openvocab describe-tags: describing tag 'red panda'" in err and base in err
    assert not out.exists()
