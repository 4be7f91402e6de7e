"""Each document's original text is stored with the index version (rag.index.doc_texts): served by
`KnowledgeBase.document_text`, copied unchanged into the next version, checked like every index
file; a version written before texts were stored still opens (quotes fall back to the chunk text)
and the next `rag index` of its files stores them. Exact quotes then need neither the files nor
the working directory they were indexed from."""

from __future__ import annotations

import dataclasses
import json
import logging

import pytest

from rag.answer.assistant import Assistant
from rag.cite.document_text import DocumentTextSource
from rag.errors import IndexDamaged
from rag.index.build import DOCUMENTS, ChunkStore, IndexVersion
from rag.index.doc_texts import INDEXED_FILE, TEXTS
from rag.index.kb import KnowledgeBase
from rag.index.verify import seal
from test_kb import DOCS as KB_DOCS
from test_kb import CountingEncoder, cfg, mkdoc, para_chunker  # noqa: F401 - cfg is a fixture

# a's original differs from a plain text: CRLF line ends, ASCII punctuation
DOCS = {"a": "安達市委組織部紮實推進學習型黨組織建設。\r\n\r\n開展創先爭優活動,黨員帶頭。\r\n", "b": KB_DOCS["b"], "c": KB_DOCS["c"]}


def open_kb(cfg, name="t"):
    kb = KnowledgeBase.open(name, cfg, encoder=CountingEncoder(64, "fake"), create=True)
    kb.chunk_fn = para_chunker
    return kb


def strip_texts(path) -> None:
    """Rewrite a version folder as the code before stored texts (and scans' indexed files) wrote it."""
    docs = json.loads((path / DOCUMENTS).read_text(encoding="utf-8"))
    for d in docs:
        d.pop("text", None)
        d["metadata"].pop(INDEXED_FILE, None)
    (path / DOCUMENTS).write_text(json.dumps(docs, ensure_ascii=False), encoding="utf-8")
    (path / TEXTS).unlink()
    chunks = ChunkStore(path / "chunks.jsonl").all()
    ChunkStore.write(path / "chunks.jsonl", [dataclasses.replace(c, metadata={k: v for k, v in c.metadata.items()
                                                                            if k != INDEXED_FILE}) for c in chunks])
    manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    del manifest["files"]
    seal(path, manifest)


def test_texts_are_stored_served_and_copied_unchanged(cfg):
    kb = open_kb(cfg)
    kb.add_documents([mkdoc(k, v) for k, v in DOCS.items()])
    assert {k: kb.document_text(k) for k in DOCS} == DOCS and kb.document_text("nothere") is None
    for c in kb.chunks:  # the spans point into the stored text
        assert DOCS[c.doc_id][c.start : c.end] == c.text
    v1 = kb.version
    blob_a = v1.text_blobs([e for e in v1.documents if e["doc_id"] == "a"])[0]
    # change b, delete c: a's text is the same bytes in the new version, b's is the new one
    kb.add_documents([mkdoc("b", DOCS["b"].replace("六十万", "八十万"))])
    kb.delete_document("c")
    v3 = kb.version
    assert v3.path != v1.path and v3.text_blobs([e for e in v3.documents if e["doc_id"] == "a"])[0] == blob_a
    assert kb.document_text("b").endswith("八十万平方米。") and kb.document_text("c") is None
    fresh = KnowledgeBase.open("t", cfg, encoder=CountingEncoder(64, "fake"))
    assert fresh.document_text("a") == DOCS["a"]


def test_a_version_without_texts_opens_and_the_next_build_stores_them(cfg):
    kb = open_kb(cfg)
    kb.add_documents([mkdoc(k, v) for k, v in DOCS.items()])
    old = kb.version.path
    kb.version.close()
    strip_texts(old)
    kb = open_kb(cfg)
    assert kb.version.path == old and kb.document_text("a") is None
    assert DocumentTextSource(kb)(kb.get_chunk("a#0")) is None  # quotes fall back to the chunk text
    ans = Assistant(kb, cfg.replace(answer={"refuse_threshold": 0.0})).answer("开展创先争优活动", llm_backend="extractive")
    assert ans.citations and all(c.metadata["quote_exact"] is False for c in ans.citations)
    # `rag index` of the same files: nothing changed, nothing embedded, but the texts are stored
    r = kb.add_documents([mkdoc(k, DOCS[k]) for k in ("a", "b")])
    assert sorted(r.unchanged) == ["a", "b"] and not r.changed and r.embedded == 0
    assert kb.version.path != old and kb.document_text("a") == DOCS["a"] and kb.document_text("c") is None
    upgraded = kb.version.path
    r = kb.add_documents([mkdoc("a", DOCS["a"]), mkdoc("b", DOCS["b"])])
    assert kb.version.path == upgraded  # stored now: no further version


def test_a_scan_records_its_file_and_an_older_version_gets_it_on_the_next_build(cfg, tmp_path, monkeypatch):
    # the page crop re-renders a scan's page from its file: the index records where it is
    monkeypatch.chdir(tmp_path)
    scan = mkdoc("s", "第一页的文字。")
    scan = dataclasses.replace(scan, source="scans/s.pdf", metadata={**scan.metadata, "ocr_lines": [[0, 7, 1]]})
    kb = open_kb(cfg)
    kb.add_documents([scan, mkdoc("a", DOCS["a"])])
    want = str(tmp_path / "scans" / "s.pdf")
    assert kb.get_chunk("s#0").metadata[INDEXED_FILE] == want and INDEXED_FILE not in kb.get_chunk("a#0").metadata
    old = kb.version.path
    kb.version.close()
    strip_texts(old)
    kb = open_kb(cfg)
    assert INDEXED_FILE not in kb.get_chunk("s#0").metadata
    r = kb.add_documents([scan])
    assert r.unchanged == ["s"] and r.embedded == 0 and kb.version.path != old
    assert kb.get_chunk("s#0").metadata[INDEXED_FILE] == want and kb.document_text("s") == scan.text
    assert {d["doc_id"]: d["metadata"].get(INDEXED_FILE) for d in kb.version.documents} == {"a": None, "s": want}


def test_damaged_texts_are_named_and_cost_only_the_exact_quote(cfg, monkeypatch, caplog):
    import rag.index.verify as verify_mod

    kb = open_kb(cfg)
    kb.add_documents([mkdoc(k, v) for k, v in DOCS.items()])
    path = kb.version.path
    kb.version.close()
    data = (path / TEXTS).read_bytes()
    (path / TEXTS).write_bytes(data[:5] + bytes([data[5] ^ 0xFF]) + data[6:])
    with pytest.raises(IndexDamaged, match=r"texts\.zlib"):
        IndexVersion(path)
    # a file too large to be hashed on open: the damage is found when the text is read
    monkeypatch.setattr(verify_mod, "HASH_ON_OPEN_MAX", 0)
    v = IndexVersion(path)
    first = v.documents[0]["doc_id"]
    with pytest.raises(IndexDamaged, match=r"texts\.zlib.*rebuild"):
        v.document_text(first)

    class KB:
        document_text = staticmethod(v.document_text)

    with caplog.at_level(logging.WARNING, logger="rag.answer.assistant"):
        assert DocumentTextSource(KB())(v.store.get(0)) is None
    assert "texts.zlib" in caplog.text
    v.close()


def test_exact_quotes_when_the_working_directory_is_elsewhere(cfg, tmp_path, monkeypatch):
    here, elsewhere = tmp_path / "here", tmp_path / "elsewhere"
    (here / "docs").mkdir(parents=True)
    elsewhere.mkdir()
    text = "安达市委组织部扎实推进学习型党组织建设。\r\n\r\n2010年,安达市委开展“创先争优”活动,共有党员3200名 参加。\r\n"
    (here / "docs" / "anda.txt").write_bytes(text.encode("utf-8"))
    monkeypatch.chdir(here)
    kb = KnowledgeBase.open("cwd", cfg, encoder=CountingEncoder(64, "fake"), create=True)
    kb.add_paths(["docs"], progress=False)  # a relative path, real ingest and chunker
    monkeypatch.chdir(elsewhere)
    kb = KnowledgeBase.open("cwd", cfg, encoder=CountingEncoder(64, "fake"))
    ans = Assistant(kb, cfg.replace(answer={"refuse_threshold": 0.0})).answer("安达市委开展创先争优活动有多少名党员参加？",
                                                                         llm_backend="extractive")
    assert ans.citations and not ans.refused
    for c in ans.citations:
        assert c.metadata["quote_exact"] is True and text[c.quote_start : c.quote_end] == c.quote
