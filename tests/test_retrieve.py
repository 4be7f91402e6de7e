"""rag.retrieve.searcher: hit bookkeeping per mode, fusion config; rag.retrieve.langchain: LangChain retriever and vector store;
plus a slow end-to-end test with the real e5 model on the seeds (both scripts, same passages)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from langchain_core.documents import Document as LCDocument
from langchain_core.retrievers import BaseRetriever
from langchain_core.vectorstores import VectorStore

from embeddings import FakeEncoder
from rag.config import load_config
from rag.errors import ConfigError, RagError
from rag.index.kb import KnowledgeBase
from rag.retrieve.langchain import ChunkVectorStore, EncoderEmbeddings, KBRetriever, document_to_chunk
from rag.text.norm import s2t
from test_kb import DOCS, CountingEncoder, mkdoc, para_chunker

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def kb(tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_HOME", str(tmp_path / "home"))
    cfg = load_config(overrides={"embed": {"model": "fake-64"}})
    kb = KnowledgeBase.open("t", cfg, encoder=CountingEncoder(), create=True)
    kb.chunk_fn = para_chunker
    kb.add_documents([mkdoc(k, v) for k, v in DOCS.items()])
    return kb


def test_modes_record_ranks_and_scores(kb):
    q = "冰雪大世界占地多少平方米"
    bm = kb.search(q, k=3, mode="bm25")
    assert bm[0].chunk.chunk_id == "b#1" and bm[0].ranks == {"bm25": 1} and set(bm[0].scores) == {"bm25"}
    assert [h.rank for h in bm] == list(range(1, len(bm) + 1))
    de = kb.search(q, k=3, mode="dense")
    assert de[0].ranks == {"dense": 1} and set(de[0].scores) == {"dense"}
    assert de[0].score == pytest.approx(de[0].scores["dense"])
    kb.cfg.retrieve.fusion, kb.cfg.retrieve.rrf_k = "rrf", 60
    kb.cfg.retrieve.w_dense = kb.cfg.retrieve.w_bm25 = 1.0
    hy = kb.search(q, k=3, mode="hybrid")
    top = hy[0]
    assert top.chunk.chunk_id == "b#1" and top.ranks == {"dense": 1, "bm25": 1}
    assert set(top.scores) == {"dense", "bm25"} and top.scores["bm25"] == pytest.approx(bm[0].score)
    assert top.score == pytest.approx(1 / 61 + 1 / 61)  # RRF k=60, equal weights: rank 1 in both
    # every hit carries both retrievers' exact scores even where one did not rank it
    assert all(set(h.scores) == {"dense", "bm25"} for h in hy)


def test_bm25_mode_never_loads_the_encoder(tmp_path, monkeypatch, kb):
    fresh = KnowledgeBase.open("t", kb.cfg)  # no encoder given: loaded lazily
    assert fresh.search("冰雪节", k=2, mode="bm25")[0].chunk.doc_id == "b"
    assert fresh._encoder is None


def test_traditional_and_simplified_question_same_hits(kb):
    simp = "安达市委组织部推进学习型党组织建设"
    trad = s2t(simp)
    for mode in ("bm25", "dense", "hybrid"):
        a = [(h.chunk.chunk_id, round(h.score, 6)) for h in kb.search(simp, k=4, mode=mode)]
        b = [(h.chunk.chunk_id, round(h.score, 6)) for h in kb.search(trad, k=4, mode=mode)]
        assert a == b and a[0][0] == "a#0", mode


def test_convex_fusion_and_bad_settings(kb):
    kb.cfg.retrieve.fusion, kb.cfg.retrieve.norm = "convex", "minmax"
    kb.cfg.retrieve.w_dense, kb.cfg.retrieve.w_bm25 = 0.3, 0.7
    hits = kb.search("iPhone 15 售价多少", k=3)
    assert hits[0].chunk.chunk_id == "c#0" and hits[0].score == pytest.approx(1.0)  # top on both → 0.3·1 + 0.7·1
    kb.cfg.retrieve.norm = "zscore"  # the default: same winner, score = Σ w·(s − mean)/std
    assert kb.search("iPhone 15 售价多少", k=3)[0].chunk.chunk_id == "c#0"
    kb.cfg.retrieve.fusion = "magic"
    with pytest.raises(ConfigError):
        kb.search("问题")
    with pytest.raises(ConfigError):
        kb.search("问题", mode="sparse")
    assert kb.search("   ") == [] and kb.search("问题", k=0) == []


def test_kb_retriever_is_a_langchain_retriever(kb):
    r = kb.as_retriever(k=2)
    assert isinstance(r, BaseRetriever) and isinstance(r, KBRetriever)
    docs = r.invoke("哈尔滨冰雪节")
    assert len(docs) == 2 and isinstance(docs[0], LCDocument)
    md = docs[0].metadata
    assert md["chunk_id"].startswith("b#") and md["rank"] == 1 and "dense" in md["scores"] and "ranks" in md
    c = document_to_chunk(docs[0])
    assert c == kb.get_chunk(md["chunk_id"])  # metadata round-trips to the Chunk



def test_searcher_still_exports_the_langchain_adapters():
    from rag.retrieve import langchain, searcher

    for name in langchain.__all__:
        assert getattr(searcher, name) is getattr(langchain, name)
    with pytest.raises(AttributeError):
        searcher.NoSuchName  # noqa: B018


def test_kb_vectorstore_matches_dense_search(kb):
    vs = kb.vectorstore()
    assert isinstance(vs, VectorStore)
    got = vs.similarity_search_with_score("冰雪大世界", k=3)
    dense = kb.search("冰雪大世界", k=3, mode="dense")
    assert [d.metadata["chunk_id"] for d, _ in got] == [h.chunk.chunk_id for h in dense]
    assert [s for _, s in got] == pytest.approx([h.score for h in dense])
    assert vs.get_by_ids(["c#0"])[0].page_content == DOCS["c"]
    with pytest.raises(RagError, match="rag index"):
        vs.add_texts(["新文本"])
    rel = vs.similarity_search_with_relevance_scores("冰雪大世界", k=1)
    assert 0.0 <= rel[0][1] <= 1.0


def test_in_memory_vectorstore_from_texts():
    enc = FakeEncoder(64)
    texts = ["哈尔滨冰雪节", "苹果发布手机", "黑龍江水稻新品種"]
    vs = ChunkVectorStore.from_texts(texts, EncoderEmbeddings(enc), metadatas=[{"i": i} for i in range(3)], ids=["x", "y", "z"])
    top = vs.similarity_search("黑龙江水稻", k=1)[0]
    assert top.page_content == "黑龍江水稻新品種" and top.metadata == {"i": 2} and top.id == "z"
    # brute-force check of the scores
    q = enc.encode_queries(["苹果手机"])[0]
    brute = enc.encode_passages(texts) @ q
    got = vs.similarity_search_with_score("苹果手机", k=3)
    assert [d.id for d, _ in got] == [["x", "y", "z"][i] for i in np.argsort(-brute, kind="stable")]
    ids = vs.add_texts(["上海进博会"])
    assert len(ids) == 1 and vs.similarity_search("进博会", k=1)[0].page_content == "上海进博会"
    assert ChunkVectorStore(enc).similarity_search("空", k=3) == []


# ------------------------------------------------------------------ real model, seeds


def _e5_available() -> bool:
    try:
        from embeddings.install import E5_NAME, e5_dir, is_built

        return is_built(e5_dir(load_config().paths.models_dir))
    except Exception:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not _e5_available(), reason="multilingual-e5-small not built: run `rag models install`")
def test_seed_question_same_top_passages_in_both_scripts(tmp_path, monkeypatch):
    models_dir = load_config().paths.models_dir  # the installed models, before RAG_HOME moves
    monkeypatch.setenv("RAG_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RAG_MODELS_DIR", models_dir)
    cfg = load_config()
    kb = KnowledgeBase.open("seeds", cfg, create=True)
    report = kb.add_paths([ROOT / "seeds"], progress=False)
    assert report.n_chunks > 20 and not report.failures
    # questions about the seeds (the 东北网 Party-building report is in traditional script)
    for simp in ["安达市委如何推进学习型党组织建设", "创先争优活动座谈会是什么时候召开的"]:
        trad = s2t(simp)
        a = [h.chunk.chunk_id for h in kb.search(simp, k=5)]
        b = [h.chunk.chunk_id for h in kb.search(trad, k=5)]
        assert a[:3] == b[:3], (simp, a, b)
        assert len(set(a) & set(b)) >= 4
    # the top passage is about the question
    top = kb.search("创先争优活动座谈会是什么时候召开的", k=3)
    assert any("座談會" in h.chunk.text or "座谈会" in h.chunk.text for h in top)
