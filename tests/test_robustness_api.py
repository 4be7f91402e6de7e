"""Issue 11, the HTTP API part: input limits before work starts, a deadline per request, one-line
errors without paths (in Chinese when asked), the API key, and `rag serve` refusing an exposed
address without a key and stopping on SIGTERM. Each test failed on the code before the fix."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from _answer_kb import StandInKB
from _servers import free_port, running, wait_http
from rag.answer.assistant import MAX_QUESTION_CHARS, Assistant
from rag.apps.api import create_app
from rag.config import Config
from rag.errors import IndexMissing
from rag.limits import LIMITS, LimitError, check_kb_name, message, scrub_paths
from rag.llm.backends import FakeChatModel
from rag.types import Status, Token

ROOT = Path(__file__).resolve().parent.parent
Q = "甘肃煤田地质局现有多少干部职工？"
HANG = 60.0  # seconds: a request that takes this long is stuck (rejections take milliseconds)


@contextlib.contextmanager
def within(seconds: float):
    """A hang guard: fail (instead of hanging for minutes) when the block takes longer than
    `seconds`; jieba is pure Python, so the alarm interrupts it. Not a speed test: HANG is far
    above the time the block takes on a loaded CI machine; the tests check what happens."""

    def _late(signum, frame):
        raise TimeoutError(f"took longer than {seconds} s")

    old = signal.signal(signal.SIGALRM, _late)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    t0 = time.perf_counter()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert time.perf_counter() - t0 < seconds


def _cfg(tmp_path: Path | None = None) -> Config:
    cfg = Config()
    cfg.answer.refuse_threshold = 0.3
    cfg.llm.backend = "extractive"
    if tmp_path is not None:
        cfg.paths.home = str(tmp_path)
        cfg.paths.kb_root.mkdir(parents=True, exist_ok=True)  # as on a server: the root exists, so names reach the FS
    return cfg


def _app(api_key: str | None = None, limits=LIMITS, factory=None):
    cfg = _cfg()
    llm = FakeChatModel(responses=["现有干部职工68人【1】。"])

    def default_factory(name):
        if name != "seeds":
            raise IndexMissing(f"knowledge base '{name}' has no index at /srv/secret/kb/{name}")
        return Assistant(StandInKB(), cfg, llm=llm)

    # only non-default options are passed: the same tests then run against the code before the fix
    kw = {k: v for k, v in (("limits", limits), ("api_key", api_key)) if v not in (None, LIMITS)}
    return TestClient(create_app(cfg, assistant_factory=factory or default_factory, **kw), raise_server_exceptions=False)


@pytest.fixture()
def client():
    return _app()


def _one_line_json(r) -> dict:
    d = r.json()
    assert isinstance(d["detail"], str) and "\n" not in d["detail"] and d["error"]
    assert "Traceback" not in r.text
    return d


# ------------------------------------------------------------------ the finding: 1 MB of history


def test_condenser_reads_only_the_tail_of_a_megabyte_history(monkeypatch):
    # behaviour, not time: every text the condenser segments is at most condense_chars long
    # (plus the question), whatever the size of the earlier turn
    import jieba
    import jieba.posseg

    from rag.answer.condense import condense

    seen: list[int] = []
    for mod, name in ((jieba, "cut"), (jieba, "lcut"), (jieba.posseg, "cut"), (jieba.posseg, "lcut")):
        orig = getattr(mod, name)
        monkeypatch.setattr(mod, name, lambda s, *a, _o=orig, **k: (seen.append(len(s)), _o(s, *a, **k))[1])
    out = condense("它是什么？", [("创" * 1048576, "答")])
    assert out.text
    assert seen, "the condenser segmented nothing: the spy no longer sees jieba"
    assert max(seen) <= LIMITS.condense_chars + len("它是什么？")


def test_megabyte_history_is_rejected_without_being_read(client):
    body = json.dumps({"question": "它是什么？", "history": [["创" * 1048576, "答"]]}, ensure_ascii=False).encode()
    with within(HANG):
        r = client.post("/ask", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 413 and _one_line_json(r)["error"] == "PayloadTooLarge"


def test_long_history_turn_under_the_body_limit_is_rejected(client):
    body = {"question": "它是什么？", "history": [["创" * (LIMITS.turn_chars + 1), "答"]]}
    with within(HANG):
        r = client.post("/ask", content=json.dumps(body, ensure_ascii=False).encode(),
                        headers={"content-type": "application/json"})
    assert r.status_code == 422 and "history" in _one_line_json(r)["detail"]


def test_too_many_turns_rejected(client):
    r = client.post("/ask", json={"question": Q, "history": [["问", "答"]] * (LIMITS.history_turns + 1)})
    assert r.status_code == 422 and "history" in _one_line_json(r)["detail"]


@pytest.mark.parametrize("body", [{"question": "问" * (LIMITS.question_chars + 1)}, {"question": Q, "k": LIMITS.k_max + 1}])
def test_long_question_and_large_k_rejected(client, body):
    assert client.post("/ask", json=body).status_code == 422


def test_question_limit_agrees_with_the_answer_stage():
    assert LIMITS.question_chars == MAX_QUESTION_CHARS


# ------------------------------------------------------------------ body size


def test_oversized_body_gets_413_before_parsing(client):
    big = b'{"question": "' + b"x" * (LIMITS.body_bytes + 10) + b'"}'
    r = client.post("/ask", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "bytes" in _one_line_json(r)["detail"]


def test_oversized_streamed_body_without_length_gets_413(client):
    def chunks():
        for _ in range(20):
            yield b"x" * 65536  # 1.25 MiB in total, no Content-Length

    r = client.post("/search", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_body_limit_message_in_chinese_when_asked(client):
    r = client.post("/ask", content=b"x" * (LIMITS.body_bytes + 1),
                    headers={"content-type": "application/json", "accept-language": "zh-CN,zh;q=0.9"})
    assert r.status_code == 413 and "请求体" in r.json()["detail"]


# ------------------------------------------------------------------ knowledge base names


@pytest.mark.parametrize("call", [
    lambda c, name: c.post("/ask", json={"question": Q, "kb": name}),
    lambda c, name: c.post("/search", json={"query": "干部", "kb": name}),
    lambda c, name: c.get("/documents", params={"kb": name}),
])
def test_256_character_kb_name_is_a_clean_4xx(tmp_path, call):
    c = TestClient(create_app(_cfg(tmp_path)), raise_server_exceptions=False)  # the real Assistant.open
    r = call(c, "k" * 256)
    assert 400 <= r.status_code < 500
    _one_line_json(r)


def test_kb_name_validator():
    assert check_kb_name(" seeds ") == "seeds"
    assert check_kb_name("名" * LIMITS.kb_name_chars)  # fits a folder name even at 3 bytes a character
    for bad in ["", "../etc", ".hidden", "a/b", "k" * (LIMITS.kb_name_chars + 1), "名" * 70]:
        with pytest.raises(LimitError):
            check_kb_name(bad)


def test_unknown_kb_404_shows_no_server_path(tmp_path):
    c = TestClient(create_app(_cfg(tmp_path)), raise_server_exceptions=False)  # the real Assistant.open
    for r in (c.post("/ask", json={"question": Q, "kb": "nope"}), c.get("/documents", params={"kb": "nope"})):
        assert r.status_code == 404
        d = _one_line_json(r)
        assert "nope" in d["detail"] and str(tmp_path) not in r.text and "/kb/" not in r.text
    r = c.post("/ask", json={"question": Q, "kb": "nope"}, headers={"accept-language": "zh"})
    assert "知识库" in r.json()["detail"]


def test_paths_are_scrubbed_from_messages():
    assert scrub_paths("cannot read /root/.rag-zh/kb/x/chunks.jsonl: bad") == "cannot read …: bad"
    assert "\n" not in message("kb_name", "zh", name="a\nb", limit=LIMITS.kb_name_chars)


def test_os_error_is_a_503_without_path():
    def factory(name):
        raise OSError(28, "No space left on device", "/srv/secret/kb/seeds/x")

    r = _app(factory=factory).post("/ask", json={"question": Q})
    assert r.status_code == 503 and "ENOSPC" in r.json()["detail"] and "/srv" not in r.text


def test_unknown_endpoint_is_one_line_json(client):
    r = client.get("/nope")
    assert r.status_code == 404 and _one_line_json(r)["error"] == "NotFound"


# ------------------------------------------------------------------ deadline and concurrency


class _SlowAssistant:
    """An Assistant stand-in whose answer never finishes; records when its generator is closed."""

    def __init__(self):
        self.closed = threading.Event()

    def ask(self, question, history, **kw):
        def gen():
            try:
                yield Status("retrieve", "检索")
                while True:
                    time.sleep(0.05)
                    yield Token("。")
            finally:
                self.closed.set()

        return gen()


def test_deadline_ends_a_request_with_an_error_not_a_hang():
    slow = _SlowAssistant()
    c = _app(limits=dataclasses.replace(LIMITS, deadline_seconds=0.5), factory=lambda name: slow)
    with within(HANG):
        r = c.post("/ask", json={"question": Q})
    assert r.status_code == 504 and _one_line_json(r)["error"] == "DeadlineExceeded"
    assert slow.closed.wait(2.0), "the worker kept answering after the deadline"


def test_deadline_ends_a_stream_with_an_error_event():
    slow = _SlowAssistant()
    c = _app(limits=dataclasses.replace(LIMITS, deadline_seconds=0.5), factory=lambda name: slow)
    with within(HANG):
        with c.stream("POST", "/ask", json={"question": Q, "stream": True}) as r:
            body = "".join(r.iter_text())
    last = body.strip().split("\n\n")[-1]
    assert last.startswith("event: error") and "DeadlineExceeded" in last
    assert slow.closed.wait(2.0)


def test_requests_beyond_the_concurrency_bound_get_503():
    slow = _SlowAssistant()
    c = _app(limits=dataclasses.replace(LIMITS, deadline_seconds=1.5, max_inflight=1), factory=lambda name: slow)
    first = threading.Thread(target=lambda: c.post("/ask", json={"question": Q}))
    first.start()
    time.sleep(0.4)
    r = c.post("/ask", json={"question": Q})
    first.join()
    assert r.status_code == 503 and _one_line_json(r)["error"] == "Busy"


# ------------------------------------------------------------------ API key


def test_api_key_required_and_accepted():
    c = _app(api_key="s3cret")
    assert c.get("/health").status_code == 200  # open, for load balancers
    assert c.post("/ask", json={"question": Q}).status_code == 401
    assert c.post("/ask", json={"question": Q}, headers={"authorization": "Bearer wrong"}).status_code == 401
    assert c.get("/openapi.json").status_code == 401
    r = c.post("/ask", json={"question": Q}, headers={"authorization": "Bearer s3cret"})
    assert r.status_code == 200 and "68" in r.json()["answer"]
    r = c.post("/search", json={"query": "干部"}, headers={"authorization": "Bearer s3cret"})
    assert r.status_code == 200


def test_no_key_configured_means_open(client):
    assert client.post("/ask", json={"question": Q}).status_code == 200


# ------------------------------------------------------------------ rag serve


def _serve(*args: str) -> list[str]:
    return [sys.executable, "-m", "rag", "serve", *args]


def _serve_env(**env: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), **env}


def test_serve_refuses_a_public_address_without_a_key():
    p = subprocess.run(_serve("--host", "0.0.0.0", "--port", "1"), cwd=ROOT, env=_serve_env(RAG_API_KEY=""),
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "API key" in lines[0] and "--insecure" in lines[0]


def test_loopback_detection():
    from rag.apps.commands.serve import is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5") and not is_loopback("example.com")


def test_serve_stops_on_sigterm_within_two_seconds_with_a_request_in_flight(tmp_path):
    port, home, log = free_port(), tmp_path / "home", tmp_path / "serve.log"
    home.mkdir()
    with running(_serve("--port", str(port), "--llm", "extractive"), log, env=_serve_env(RAG_HOME=str(home)),
                 cwd=ROOT) as p:
        wait_http(f"http://127.0.0.1:{port}/health", p, log, timeout=60, interval=0.2, what="rag serve")
        # a request in flight: a body that arrives one byte at a time
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"POST /ask HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{")
        time.sleep(0.3)
        t0 = time.monotonic()
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=10)
        assert time.monotonic() - t0 < 2.0
        s.close()
