"""Index format versions: a version written by the previous code (format 1: the document table in
manifest.json, no chunks.ids.json, no int8 vector copy) still opens, searches exactly the same and
is the base of an incremental build (which writes format 2); an unknown format is refused with a
message saying what to do."""

from __future__ import annotations

import json

import pytest

from embeddings import FakeEncoder
from rag.index import vectors
from rag.config import load_config
from rag.errors import IndexMissing
from rag.index.build import CHUNK_IDS, DOCUMENTS, FORMAT, IndexVersion, build_version
from rag.index.verify import seal
from rag.index.kb import KnowledgeBase
from rag.retrieve.searcher import HybridSearcher
from test_kb import mkdoc, para_chunker

DOCS = {f"d{i:02d}": f"第{i}号文件：城市{i}举办文化节。\n\n参观人数{i}万，门票{i * 3}元。" for i in range(60)}


@pytest.fixture
def cfg(tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_HOME", str(tmp_path / "home"))
    return load_config(overrides={"embed": {"model": "fake-64", "cache": False}})


def as_format_1(path) -> None:
    """Rewrite a version folder the way the code before format 2 wrote it."""
    manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    manifest["documents"] = json.loads((path / DOCUMENTS).read_text(encoding="utf-8"))
    manifest["format"] = 1
    manifest["faiss"] = {"index": "IndexFlatIP", "metric": "inner_product"}
    for f in (DOCUMENTS, CHUNK_IDS, vectors.COARSE, vectors.SCALE):
        (path / f).unlink()
    del manifest["files"]
    seal(path, manifest)


def search_all(v: IndexVersion, cfg, queries):
    s = HybridSearcher(v, FakeEncoder(64), cfg.retrieve)
    return [[(h.chunk.chunk_id, round(h.score, 6), h.ranks) for h in s.search(q, k=10)] for q in queries]


def test_a_format_1_version_opens_searches_the_same_and_is_built_upon(cfg, tmp_path):
    kb_dir = cfg.paths.kb_dir("f")
    path, _ = build_version(kb_dir, None, [mkdoc(k, t) for k, t in DOCS.items()], cfg, FakeEncoder(64),
                            chunk_fn=para_chunker, analyzer="bigram")
    queries = ["城市7举办文化节", "门票十五元", "第33号文件", "参观人数"]
    new = IndexVersion(path)
    assert new.format == FORMAT == 2 and new.dense.use_coarse
    assert "documents" not in new.meta and new.manifest["documents"] == new.documents  # manifest.json stays small
    want, want_docs = search_all(new, cfg, queries), new.documents
    new.close()

    as_format_1(path)
    old = IndexVersion(path)
    assert old.format == 1 and not old.dense.use_coarse
    assert search_all(old, cfg, queries) == want
    assert old.documents == want_docs and old.doc_rows["d03"] == (6, 8) and old.row_of["d03#1"] == 7
    old.close()

    # the KnowledgeBase reads it and builds the next version (format 2) on top of it
    kb = KnowledgeBase.open("f", cfg, encoder=FakeEncoder(64))
    assert kb.version.path == path and len(kb.manifest["documents"]) == 60
    r = kb.add_documents([mkdoc("new", "新文档：上海举办进博会。")])
    assert r.added == ["new"]
    assert kb.version.format == 2 and (kb.version.path / DOCUMENTS).exists()
    assert kb.version.row_of["new#0"] == 120 and len(kb.documents()) == 61


def test_an_unknown_format_is_refused_with_what_to_do(cfg):
    kb_dir = cfg.paths.kb_dir("g")
    path, _ = build_version(kb_dir, None, [mkdoc("a", DOCS["d01"])], cfg, FakeEncoder(64),
                            chunk_fn=para_chunker, analyzer="bigram")
    manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    manifest["format"] = 3
    del manifest["files"]
    seal(path, manifest)
    with pytest.raises(IndexMissing, match=r"format 3.*reads formats 1, 2.*--rebuild"):
        IndexVersion(path)


def test_damaged_format_2_side_files_are_named(cfg):
    from rag.errors import IndexDamaged

    kb_dir = cfg.paths.kb_dir("h")
    path, _ = build_version(kb_dir, None, [mkdoc(k, t) for k, t in list(DOCS.items())[:5]], cfg, FakeEncoder(64),
                            chunk_fn=para_chunker, analyzer="bigram")
    for name in (DOCUMENTS, CHUNK_IDS, vectors.COARSE, vectors.SCALE):
        data = (path / name).read_bytes()
        (path / name).write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
        with pytest.raises(IndexDamaged, match=name.replace(".", r"\.")):
            IndexVersion(path)
        (path / name).write_bytes(data)
    IndexVersion(path).close()


def test_an_opened_version_is_freed_without_the_cycle_collector(cfg):
    # KnowledgeBase.refresh replaces versions: a reference cycle would keep every old index in
    # memory until a full garbage collection
    import gc
    import weakref

    path, _ = build_version(cfg.paths.kb_dir("w"), None, [mkdoc("a", DOCS["d01"])], cfg, FakeEncoder(64),
                            chunk_fn=para_chunker, analyzer="bigram")
    gc.disable()
    try:
        v = IndexVersion(path)
        assert v.manifest["documents"][0]["doc_id"] == "a" and v.row_of["a#0"] == 0
        ref = weakref.ref(v)
        del v
        assert ref() is None
    finally:
        gc.enable()
