"""REST API (rag.apps.api) through FastAPI's TestClient, with the stand-in KB and the fake model."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from _answer_kb import StandInKB
from rag.answer.assistant import Assistant
from rag.apps.api import create_app
from rag.config import Config
from rag.errors import IndexMissing
from rag.llm.backends import FakeChatModel


@pytest.fixture()
def client():
    cfg = Config()
    cfg.answer.refuse_threshold = 0.3
    cfg.llm.backend = "extractive"
    llm = FakeChatModel(responses=["现有干部职工68人【1】。"])

    def factory(name):
        if name != "seeds":
            raise IndexMissing(f"knowledge base '{name}' has no index; run `rag index PATH --kb {name}`")
        return Assistant(StandInKB(), cfg, llm=llm)

    return TestClient(create_app(cfg, assistant_factory=factory), raise_server_exceptions=False)


def sse_events(text: str):
    out = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        out.append((lines["event"], json.loads(lines["data"])))
    return out


def test_health(client):
    r = client.get("/health")
    assert r.status_code == 200 and r.json()["status"] == "ok"


def test_openapi_schema_lists_the_endpoints(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/ask", "/search", "/documents", "/health"} <= set(paths)


def test_ask_json(client):
    r = client.post("/ask", json={"question": "甘肃煤田地质局现有多少干部职工？"})
    assert r.status_code == 200
    d = r.json()
    assert d["refused"] is False and d["grounded"] is True and d["model"] == "extractive"
    assert "68" in d["answer"]
    c = d["citations"][0]
    assert {"n", "chunk_id", "doc_id", "title", "section", "source", "start", "end", "quote", "support"} <= set(c)
    assert set(d["timings"]) >= {"retrieve", "first_token", "total"}


def test_ask_with_fake_model_and_history(client):
    r = client.post(
        "/ask",
        json={
            "question": "甘肃煤田地质局现有多少干部职工？",
            "llm": "fake",
            "history": [["之前的问题？", "之前的回答。"], {"role": "user", "content": "再之前？"}],
        },
    )
    assert r.status_code == 200 and r.json()["answer"] == "现有干部职工68人【1】。"


def test_ask_stream_sse(client):
    with client.stream("POST", "/ask", json={"question": "甘肃煤田地质局现有多少干部职工？", "stream": True}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        body = "".join(r.iter_text())
    events = sse_events(body)
    kinds = [e for e, _ in events]
    assert kinds[0] == "status" and "evidence" in kinds and "token" in kinds and kinds[-1] == "final"
    assert events[-1][1]["grounded"] is True


def test_ask_refusal(client):
    d = client.post("/ask", json={"question": "火星探测器哪一年发射？"}).json()
    assert d["refused"] is True and d["answer"] == "根据现有资料无法回答该问题。" and d["hits"]


@pytest.mark.parametrize(
    "body, status, fragment",
    [
        ({"question": ""}, 422, "question"),
        ({"question": "   "}, 400, "empty"),
        ({}, 422, "question"),
        ({"question": "问" * 1001}, 422, "question"),
        ({"question": "问题", "mode": "magic"}, 422, "mode"),
        ({"question": "问题", "llm": "gpt-9"}, 422, "llm"),
        ({"question": "问题", "k": 0}, 422, "k"),
        ({"question": "问题", "kb": "nope"}, 404, "nope"),
        ({"question": "问题", "kb": "../etc"}, 400, "invalid knowledge base"),
        ({"question": "问题", "history": "not a list"}, 422, "history"),
    ],
)
def test_ask_bad_requests(client, body, status, fragment):
    r = client.post("/ask", json=body)
    assert r.status_code == status
    detail = r.json()["detail"]
    assert isinstance(detail, str) and fragment in detail
    assert "Traceback" not in r.text


def test_invalid_json_body(client):
    r = client.post("/ask", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422 and "Traceback" not in r.text


def test_search(client):
    r = client.post("/search", json={"query": "干部职工", "k": 2})
    assert r.status_code == 200
    hits = r.json()["hits"]
    assert len(hits) == 2 and hits[0]["doc_id"] == "b" and hits[0]["rank"] == 1
    assert client.post("/search", json={"query": " "}).status_code == 400
    assert client.post("/search", json={"query": "x", "mode": "nope"}).status_code == 422


def test_documents(client):
    r = client.get("/documents")
    assert r.status_code == 200
    assert {d["doc_id"] for d in r.json()["documents"]} == {"a", "b", "c"}
    assert client.get("/documents", params={"kb": "missing"}).status_code == 404


def test_internal_errors_have_no_stack_trace():
    cfg = Config()

    def factory(name):
        raise ZeroDivisionError("boom")

    c = TestClient(create_app(cfg, assistant_factory=factory), raise_server_exceptions=False)
    r = c.post("/ask", json={"question": "问题"})
    assert r.status_code == 500 and r.json()["detail"] == "internal error (ZeroDivisionError)"
    assert "Traceback" not in r.text and "boom" not in r.text
