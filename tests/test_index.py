"""rag.index.build: FAISS top-k vs brute force, atomic publishing (crash mid-build), half-written
versions never load, model checks."""

from __future__ import annotations

import os

import numpy as np
import pytest

import rag.index.build as index_mod
from embeddings import FakeEncoder
from rag.index.bm25 import BM25Index
from rag.config import load_config
from rag.errors import IndexMissing, ModelMismatch
from rag.index.build import COMPLETE, CURRENT, IndexVersion, build_version, check_model, current_version_path, open_current
from rag.index.kb import KnowledgeBase
from test_kb import DOCS, CountingEncoder, mkdoc, para_chunker


@pytest.fixture
def cfg(tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_HOME", str(tmp_path / "home"))
    return load_config(overrides={"embed": {"model": "fake-64"}})


class RandomEncoder:
    """Random unit vectors keyed by text (for brute-force comparisons at a larger size)."""

    name, dim = "random-32", 32

    def _vec(self, texts):
        out = []
        for t in texts:
            rng = np.random.default_rng(abs(hash(t)) % (2**32))
            v = rng.normal(size=self.dim).astype(np.float32)
            out.append(v / np.linalg.norm(v))
        return np.stack(out)

    encode_queries = _vec

    def encode_passages(self, texts, show_progress=False):
        return self._vec(texts)


def test_faiss_topk_equals_bruteforce(tmp_path, cfg):
    enc = RandomEncoder()
    docs = [mkdoc(f"d{i:03d}", f"第{i}段。\n\n另一段{i}。") for i in range(150)]
    path, stats = build_version(tmp_path / "kb", None, docs, cfg, enc, chunk_fn=para_chunker)
    v = IndexVersion(path)
    assert v.n_chunks == 300 == stats.n_chunks
    allv = v.vectors(list(range(v.n_chunks)))
    np.testing.assert_allclose(np.linalg.norm(allv, axis=1), 1.0, atol=1e-5)
    rng = np.random.default_rng(0)
    for _ in range(20):
        q = rng.normal(size=enc.dim).astype(np.float32)
        q /= np.linalg.norm(q)
        brute = allv @ q
        order = sorted(range(len(brute)), key=lambda i: (-brute[i], i))[:10]
        got = v.dense_search(q, 10)
        assert [r for r, _ in got] == order
        np.testing.assert_allclose([s for _, s in got], brute[order], rtol=1e-5, atol=1e-6)
    # rows line up: FAISS row i is chunk row i
    c = v.store.get(17)
    np.testing.assert_allclose(allv[17], enc.encode_passages([c.embed_text])[0], atol=1e-6)


def _kb_with_one_version(cfg):
    kb = KnowledgeBase.open("t", cfg, encoder=CountingEncoder(), create=True)
    kb.chunk_fn = para_chunker
    kb.add_documents([mkdoc("a", DOCS["a"])])
    return kb


@pytest.mark.parametrize("exc", [RuntimeError("disk full"), KeyboardInterrupt()])
def test_crash_mid_build_keeps_old_index(cfg, monkeypatch, exc):
    kb = _kb_with_one_version(cfg)
    old = kb.version.path
    before = sorted(p.name for p in kb.path.iterdir())

    def boom(self, folder):
        raise exc

    monkeypatch.setattr(BM25Index, "save", boom)  # fails after chunks and vectors were written
    with pytest.raises(type(exc)):
        kb.add_documents([mkdoc("b", DOCS["b"])])
    monkeypatch.undo()
    # CURRENT still names the old, complete version; no temp folder is left behind
    assert current_version_path(kb.path) == old
    assert sorted(p.name for p in kb.path.iterdir()) == before
    fresh = KnowledgeBase.open("t", cfg, encoder=CountingEncoder())
    assert {d.doc_id for d in fresh.documents()} == {"a"}
    assert fresh.search("学习型党组织", k=1)[0].chunk.doc_id == "a"
    # and the in-memory KB kept serving the old version too
    assert kb.version.path == old and kb.get_chunk("b#0") is None


def test_crash_before_publish_leaves_unloadable_temp_only(cfg, monkeypatch):
    kb = _kb_with_one_version(cfg)
    old = kb.version.path
    monkeypatch.setattr(index_mod, "_publish", lambda kb_dir, name: (_ for _ in ()).throw(OSError("power cut")))
    with pytest.raises(OSError):
        kb.add_documents([mkdoc("b", DOCS["b"])])
    monkeypatch.undo()
    # the new version folder exists and is complete, but CURRENT was never switched: old one loads
    assert current_version_path(kb.path) == old
    assert open_current(kb.path).path == old
    assert {d.doc_id for d in KnowledgeBase.open("t", cfg, encoder=CountingEncoder()).documents()} == {"a"}
    # the next successful build cleans the orphan up
    kb.add_documents([mkdoc("b", DOCS["b"])])
    versions = [p for p in kb.path.iterdir() if p.is_dir()]
    assert len(versions) == 2  # new current + previous


def test_half_written_version_is_never_loaded(cfg):
    kb = _kb_with_one_version(cfg)
    v = kb.version.path
    (v / COMPLETE).unlink()
    with pytest.raises(IndexMissing):
        IndexVersion(v)
    with pytest.raises(IndexMissing, match="rag index"):
        KnowledgeBase.open("t", cfg, encoder=CountingEncoder())
    # CURRENT pointing at a missing folder, or empty
    (v / COMPLETE).write_text("x")
    (kb.path / CURRENT).write_text("v-does-not-exist\n")
    with pytest.raises(IndexMissing):
        KnowledgeBase.open("t", cfg, encoder=CountingEncoder())
    (kb.path / CURRENT).write_text("")
    assert current_version_path(kb.path) is None


def test_inconsistent_version_is_refused(cfg, tmp_path):
    kb = _kb_with_one_version(cfg)
    v = kb.version.path
    with open(v / "chunks.jsonl", "a", encoding="utf-8"):
        pass
    np.save(v / "chunks.offsets.npy", np.array([0], dtype=np.int64))  # claims 0 chunks
    with pytest.raises(IndexMissing, match="inconsistent"):
        IndexVersion(v)


def test_only_current_and_previous_versions_are_kept(cfg):
    kb = _kb_with_one_version(cfg)
    for key in ["b", "c"]:
        kb.add_documents([mkdoc(key, DOCS[key])])
    dirs = sorted(p.name for p in kb.path.iterdir() if p.is_dir())
    assert len(dirs) == 2 and kb.version.path.name in dirs
    assert not any(n.startswith(".tmp-") for n in os.listdir(kb.path))


def test_check_model():
    m = {"embedding": {"model": "multilingual-e5-small", "config_model": "multilingual-e5-small", "dim": 384}}
    check_model(m, "kb", config_model="multilingual-e5-small")
    check_model(m, "kb", encoder_name="multilingual-e5-small", encoder_dim=384)
    with pytest.raises(ModelMismatch, match=r"indexed with embedding model 'multilingual-e5-small' \(384 dims\)"):
        check_model(m, "kb", encoder_name="bge-m3", encoder_dim=1024)
    with pytest.raises(ModelMismatch, match="rag index --kb kb --rebuild"):
        check_model(m, "kb", config_model="bge-large-zh")


def test_dim_mismatch_on_incremental_build(cfg, tmp_path):
    path, _ = build_version(tmp_path / "kb", None, [mkdoc("a", DOCS["a"])], cfg, FakeEncoder(64), chunk_fn=para_chunker)
    with pytest.raises(ModelMismatch):
        build_version(tmp_path / "kb", IndexVersion(path), [mkdoc("b", DOCS["b"])], cfg, FakeEncoder(32), chunk_fn=para_chunker)
