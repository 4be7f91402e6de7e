"""rag.index.kb.KnowledgeBase: open/create, incremental add/change/delete, sync, neighbours, locking,
model mismatch. Uses FakeEncoder (counted) and a paragraph chunker so the tests do not depend on
the real chunker's settings; one test goes through the real ingest + chunker on files."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from embeddings import FakeEncoder
from rag.config import load_config
from rag.errors import IndexMissing, ModelMismatch, RagError
from rag.index.kb import KnowledgeBase, list_kbs
from rag.types import Chunk, Document


class CountingEncoder(FakeEncoder):
    """FakeEncoder that counts the passages it embeds."""

    def __init__(self, dim: int = 64, name: str = "fake"):
        super().__init__(dim, name)
        self.passages: list[str] = []
        self.queries = 0

    def encode_passages(self, texts, show_progress=False):
        self.passages.extend(texts)
        return super().encode_passages(texts)

    def encode_queries(self, texts):
        self.queries += len(texts)
        return super().encode_queries(texts)


def para_chunker(doc: Document, _cc) -> list[Chunk]:
    """One chunk per blank-line-separated paragraph (spans into the original text)."""
    out, pos = [], 0
    for para in [p for p in doc.clean.split("\n\n") if p.strip()]:
        s = doc.clean.index(para, pos)
        pos = s + len(para)
        a, b = doc.orig_span(s, pos)
        n = len(out)
        out.append(Chunk(f"{doc.doc_id}#{n}", doc.doc_id, n, doc.title, (), para, a, b, doc.source, dict(doc.metadata)))
    return out


def mkdoc(doc_id: str, text: str, title: str = "") -> Document:
    return Document(doc_id, f"{doc_id}.txt", title or doc_id, text, text, list(range(len(text))), {"date": "2024-01-01"})


DOCS = {
    "a": "安達市委組織部紮實推進學習型黨組織建設。\n\n開展創先爭優活動，黨員帶頭。\n\n第三段：基層組織建設年。",
    "b": "哈尔滨市举办冰雪节，吸引了大量游客。\n\n冰雪大世界占地六十万平方米。",
    "c": "苹果公司发布 iPhone 15，售价 5999 元。",
}


@pytest.fixture
def cfg(tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_HOME", str(tmp_path / "home"))
    return load_config(overrides={"embed": {"model": "fake-64"}})


def open_kb(cfg, enc=None, name="t", create=True):
    kb = KnowledgeBase.open(name, cfg, encoder=enc or CountingEncoder(), create=create)
    kb.chunk_fn = para_chunker
    return kb


def test_missing_kb_raises_actionable_error(cfg):
    with pytest.raises(IndexMissing, match=r"rag index PATH --kb nothere"):
        KnowledgeBase.open("nothere", cfg)
    with pytest.raises(RagError, match="invalid knowledge base name"):
        KnowledgeBase.open("bad name!", cfg)


def test_empty_created_kb(cfg):
    kb = open_kb(cfg)
    assert kb.search("问题") == [] and kb.documents() == [] and kb.chunks == [] and kb.manifest == {}
    assert list_kbs(cfg) == []  # nothing indexed yet


def test_add_change_delete_is_incremental(cfg):
    enc = CountingEncoder()
    kb = open_kb(cfg, enc)
    r = kb.add_documents([mkdoc(k, v) for k, v in DOCS.items()])
    assert sorted(r.added) == ["a", "b", "c"] and r.n_chunks == 6 and r.embedded == 6
    assert len(enc.passages) == 6
    assert list_kbs(cfg) == ["t"]

    # same documents again: nothing re-chunked or re-embedded, no new version
    v0 = kb.version.path
    r = kb.add_documents([mkdoc(k, v) for k, v in DOCS.items()])
    assert sorted(r.unchanged) == ["a", "b", "c"] and not r.changed and r.embedded == 0
    assert len(enc.passages) == 6 and kb.version.path == v0

    # change one paragraph of b: only that paragraph is embedded, b's other chunk reuses its vector
    b2 = DOCS["b"].replace("六十万", "八十万")
    r = kb.add_documents([mkdoc("b", b2), mkdoc("d", "新文档：上海举办进博会。")])
    assert r.updated == ["b"] and r.added == ["d"] and r.embedded == 2 and r.reused_vectors == 1
    assert enc.passages[6:] == [
        "b\n冰雪大世界占地八十万平方米。",  # heading (title) travels with the text
        "d\n新文档：上海举办进博会。",
    ]
    assert kb.get_chunk("b#1").text == "冰雪大世界占地八十万平方米。"
    assert kb.search("冰雪大世界占地多少", k=1, mode="bm25")[0].chunk.chunk_id == "b#1"

    # delete
    r = kb.delete_document("a")
    assert r.removed == ["a"] and kb.get_chunk("a#0") is None and r.n_chunks == 4
    assert {d.doc_id for d in kb.documents()} == {"b", "c", "d"}
    assert all(h.chunk.doc_id != "a" for h in kb.search("学习型党组织建设", k=10))
    with pytest.raises(RagError, match="no document"):
        kb.delete_document("a")

    # a fresh open sees the same thing; FAISS rows match chunk rows
    kb2 = KnowledgeBase.open("t", cfg, encoder=enc)
    assert [c.chunk_id for c in kb2.chunks] == [c.chunk_id for c in kb.chunks]
    v = kb2.version
    vecs = v.vectors(list(range(v.n_chunks)))
    expect = FakeEncoder(64).encode_passages([c.embed_text for c in kb2.chunks])
    np.testing.assert_allclose(vecs, expect, atol=1e-6)


def test_unchanged_vectors_are_reused_after_chunker_change(cfg):
    enc = CountingEncoder()
    kb = open_kb(cfg, enc)
    kb.add_documents([mkdoc("a", DOCS["a"])])
    kb.cfg = kb.cfg.replace(chunk={"max_tokens": 100})  # chunker settings changed → re-chunk all docs
    r = kb.add_documents([mkdoc("a", DOCS["a"])])
    assert r.updated == ["a"] and r.embedded == 0 and r.reused_vectors == 3  # same chunk texts → same vectors


def test_manifest_contents(cfg):
    kb = open_kb(cfg)
    kb.add_documents([mkdoc("a", DOCS["a"]), mkdoc("c", DOCS["c"])])
    m = kb.manifest
    assert m["embedding"]["model"] == "fake-64" and m["embedding"]["dim"] == 64
    assert m["chunker"]["max_tokens"] == cfg.chunk.max_tokens
    assert m["n_chunks"] == 4 and len(m["corpus_hash"]) == 64
    docs = {d["doc_id"]: d for d in m["documents"]}
    assert docs["a"]["chunk_ids"] == ["a#0", "a#1", "a#2"] and len(docs["a"]["sha256"]) == 64
    assert {"faiss-cpu", "bm25s", "jieba", "python"} <= set(m["versions"])
    assert (kb.version.path / "config.json").exists()


def test_neighbours_and_documents(cfg):
    kb = open_kb(cfg)
    kb.add_documents([mkdoc(k, v) for k, v in DOCS.items()])
    assert [c.chunk_id for c in kb.neighbours("a#1")] == ["a#0", "a#1", "a#2"]
    assert [c.chunk_id for c in kb.neighbours("a#0")] == ["a#0", "a#1"]  # never crosses documents
    assert [c.chunk_id for c in kb.neighbours("b#0", after=5)] == ["b#0", "b#1"]
    assert kb.neighbours("zz#0") == []
    info = {d.doc_id: d for d in kb.documents()}
    assert info["a"].n_chunks == 3 and info["a"].date == "2024-01-01" and info["a"].title == "a"
    c = kb.get_chunk("a#1")
    assert DOCS["a"][c.start:c.end] == c.text


def test_model_mismatch(cfg):
    kb = open_kb(cfg)
    kb.add_documents([mkdoc("c", DOCS["c"])])
    with pytest.raises(ModelMismatch, match="fake-64.*rebuild"):
        KnowledgeBase.open("t", cfg, encoder=FakeEncoder(64, name="other"))
    with pytest.raises(ModelMismatch):
        KnowledgeBase.open("t", cfg.replace(embed={"model": "bge-m3"}))
    # --rebuild path: open without the check, then rebuild with the new model
    kb2 = KnowledgeBase.open("t", cfg, encoder=CountingEncoder(32, name="other"), check_model_=False)
    kb2.chunk_fn = para_chunker
    with pytest.raises(ModelMismatch):
        kb2.add_documents([mkdoc("c", DOCS["c"])])  # incremental add would mix models
    kb2._apply([mkdoc("c", DOCS["c"])], [], rebuild=True)
    assert kb2.manifest["embedding"]["model"] == "other-32"


def test_concurrent_writers_are_serialised(cfg):
    kb1, kb2 = open_kb(cfg), open_kb(cfg)
    errors = []

    def add(kb, docs):
        try:
            kb.add_documents(docs)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    t1 = threading.Thread(target=add, args=(kb1, [mkdoc("a", DOCS["a"])]))
    t2 = threading.Thread(target=add, args=(kb2, [mkdoc("b", DOCS["b"])]))
    t1.start(); t2.start(); t1.join(); t2.join()
    assert not errors
    # the second writer built on top of the first one's version: both documents are there
    kb3 = KnowledgeBase.open("t", cfg, encoder=CountingEncoder())
    assert {d.doc_id for d in kb3.documents()} == {"a", "b"}


def test_reader_picks_up_new_version(cfg):
    writer = open_kb(cfg)
    writer.add_documents([mkdoc("a", DOCS["a"])])
    reader = KnowledgeBase.open("t", cfg, encoder=CountingEncoder())
    writer.add_documents([mkdoc("c", DOCS["c"])])
    assert reader.refresh() is True
    assert reader.get_chunk("c#0") is not None


def test_add_paths_and_sync_with_real_ingest(cfg, tmp_path):
    pytest.importorskip("rag.ingest.load")
    enc = CountingEncoder()
    kb = KnowledgeBase.open("files", cfg, encoder=enc, create=True)  # real ingest and chunker
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "one.txt").write_text("安達市委組織部紮實推進學習型黨組織建設，開展創先爭優活動。\n", encoding="utf-8")
    (docs / "two.txt").write_text("哈尔滨市举办冰雪节，吸引了大量游客。\n", encoding="utf-8")
    r = kb.add_paths([docs], progress=False)
    assert sorted(r.added) == sorted(d.doc_id for d in kb.documents()) and len(r.added) == 2
    n_embedded = len(enc.passages)
    r = kb.add_paths([docs], progress=False)
    assert not r.changed and len(enc.passages) == n_embedded
    (docs / "two.txt").unlink()
    r = kb.add_paths([docs], progress=False)  # add never removes
    assert not r.removed and len(kb.documents()) == 2
    r = kb.sync([docs], progress=False)
    assert len(r.removed) == 1 and len(kb.documents()) == 1
    with pytest.raises(RagError, match="no such file"):
        kb.add_paths([tmp_path / "missing"], progress=False)


def test_cli_index_and_search(tmp_path, monkeypatch, capsys):
    pytest.importorskip("rag.ingest.load")
    import json

    from rag.apps.cli import main

    monkeypatch.setenv("RAG_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RAG_EMBED_MODEL", "fake")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "one.txt").write_text("安達市委組織部紮實推進學習型黨組織建設，開展創先爭優活動。\n", encoding="utf-8")
    (docs / "two.txt").write_text("哈尔滨市举办冰雪节，吸引了大量游客。\n", encoding="utf-8")
    assert main(["index", str(docs), "--kb", "cli", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert len(rep["added"]) == 2 and rep["n_chunks"] >= 2 and rep["failures"] == []
    assert main(["search", "安达市学习型党组织", "--kb", "cli", "-k", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    hit = out["hits"][0]
    assert hit["doc_id"] == "one" and hit["rank"] == 1 and set(hit["scores"]) == {"dense", "bm25"}
    assert main(["search", "冰雪节", "--kb", "cli", "--mode", "bm25"]) == 0
    assert "two" in capsys.readouterr().out
    # --sync removes a deleted file; a missing KB is an actionable error (exit 2)
    (docs / "two.txt").unlink()
    assert main(["index", str(docs), "--kb", "cli", "--sync", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["removed"] == ["two"]
    assert main(["search", "问题", "--kb", "nokb"]) == 2
    assert "rag index PATH --kb nokb" in capsys.readouterr().err
