"""Retrieval over one index version: dense (FAISS), BM25, and their fusion; LangChain adapters.

`HybridSearcher.search(query, k, mode)` returns `Hit`s. Every hit records each retriever's own
rank (1-based, among that retriever's `candidates`) when the retriever returned it, and each
retriever's exact score (cosine for dense, BM25 for bm25) for every hit — computed for the union
of candidates, which is what lets `fusion = "convex"` normalise without guessing missing scores.
Both the query embedding and BM25 tokens are computed from the same question; script
normalisation happens inside the encoder and the BM25 analyzer, so a traditional and a
simplified question reach the same passages.

LangChain: `KBRetriever` (a `BaseRetriever` over a `KnowledgeBase`) and `ChunkVectorStore`, a
`VectorStore` over the dense side (the KB's FAISS index read-only, or an in-memory FAISS index
built by `from_texts`/`add_texts`), plus `EncoderEmbeddings`, our encoder as LangChain
`Embeddings`.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from rag.index.bm25 import top_k
from rag.errors import ConfigError, RagError
from rag.retrieve.fusion import convex, rrf
from rag.types import Chunk, Hit

from rag.config import RETRIEVE_MODES as MODES  # noqa: E402 - one home: rag.config


class HybridSearcher:
    """Dense, BM25 and hybrid search over an `rag.index.build.IndexVersion` (thread-safe, read-only).

    `encoder` is an Encoder or a zero-argument callable returning one (so BM25-only use never
    loads the embedding model)."""

    def __init__(self, version, encoder, rcfg):
        self.version = version
        self._encoder = encoder
        self.rcfg = rcfg
        self._ids = version.ids_by_row

    @property
    def encoder(self):
        return self._encoder() if callable(self._encoder) and not hasattr(self._encoder, "encode_queries") else self._encoder

    def embed_query(self, query: str) -> np.ndarray:
        return np.asarray(self.encoder.encode_queries([query]), dtype=np.float32)[0]

    def _request(self, query: str, k: int | None, mode: str | None) -> tuple[int, str] | None:
        """(k, mode) of a search, defaults filled in and validated (ConfigError for an unknown
        mode); None when there is nothing to search (no query, k ≤ 0, an empty index). One
        home for the checks of every backend's `search`."""
        rc = self.rcfg
        k = rc.k if k is None else int(k)
        mode = (mode or rc.mode).lower()
        if mode not in MODES:
            raise ConfigError(f"unknown retrieval mode {mode!r}; use one of {', '.join(MODES)}")
        if k <= 0 or not query or not query.strip() or self.version.n_chunks == 0:
            return None
        return k, mode

    def search(self, query: str, k: int | None = None, mode: str | None = None,
               candidates: int | None = None) -> list[Hit]:
        rc = self.rcfg
        req = self._request(query, k, mode)
        if req is None:
            return []
        k, mode = req
        n_cand = max(int(candidates or rc.candidates), k)

        dense: list[tuple[int, float]] = []
        bm: list[tuple[int, float]] = []
        qv = None
        bm_scores = None
        if mode in ("dense", "hybrid"):
            qv = self.embed_query(query)
            dense = self.version.dense_search(qv, n_cand if mode == "hybrid" else k)
        if mode in ("bm25", "hybrid"):
            bm_scores = self.version.bm25.get_scores(query)
            bm = top_k(bm_scores, n_cand if mode == "hybrid" else k)

        ranks: dict[int, dict[str, int]] = {}
        for name, lst in (("dense", dense), ("bm25", bm)):
            for r, (row, _) in enumerate(lst, 1):
                ranks.setdefault(row, {})[name] = r

        if mode == "dense":
            order = dense
        elif mode == "bm25":
            order = bm
        else:
            order = self._fuse(dense, bm, qv, bm_scores)
        order = order[:k]
        rows = [row for row, _ in order]
        # every retriever's exact score for every returned row
        dscores = (self.version.vectors(rows) @ qv) if qv is not None else None
        out: list[Hit] = []
        for i, (row, fused) in enumerate(order):
            scores: dict[str, float] = {}
            if dscores is not None:
                scores["dense"] = float(dscores[i])
            if bm_scores is not None:
                scores["bm25"] = float(bm_scores[row])
            out.append(Hit(chunk=self.version.store.get(row), score=float(fused), rank=i + 1,
                           ranks=dict(ranks.get(row, {})), scores=scores))
        return out

    def _fuse(self, dense, bm, qv, bm_scores) -> list[tuple[int, float]]:
        rc = self.rcfg
        weights = {"dense": rc.w_dense, "bm25": rc.w_bm25}
        ids = self._ids
        if rc.fusion == "rrf":
            fused = rrf({"dense": [ids[r] for r, _ in dense], "bm25": [ids[r] for r, _ in bm]},
                        k=rc.rrf_k, weights=weights)
        elif rc.fusion == "convex":
            # exact scores of both retrievers over the union of candidates (no guessing)
            union = sorted({r for r, _ in dense} | {r for r, _ in bm})
            qd = {r: s for r, s in dense}
            qb = {r: s for r, s in bm}
            missing_d = [r for r in union if r not in qd]
            if missing_d:
                for r, s in zip(missing_d, self.version.vectors(missing_d) @ qv):
                    qd[r] = float(s)
            for r in union:
                if r not in qb:
                    qb[r] = float(bm_scores[r])
            fused = convex({"dense": {ids[r]: s for r, s in qd.items()}, "bm25": {ids[r]: s for r, s in qb.items()}},
                           weights=weights, norm=rc.norm)
        else:
            raise ConfigError(f"unknown fusion {rc.fusion!r}; use rrf or convex")
        row_of = {ids[r]: r for lst in (dense, bm) for r, _ in lst}  # only the candidates' rows
        return [(row_of[cid], s) for cid, s in fused]


# ------------------------------------------------------------------ LangChain adapters
# Defined on first use (PEP 562 module __getattr__): importing langchain_core costs seconds on a
# busy machine, and the CLI, the benchmark and BM25-only callers never need it.

_LC_NAMES = ("KBRetriever", "ChunkVectorStore", "EncoderEmbeddings", "hit_to_document", "document_to_chunk")
_lc_lock = threading.Lock()
_lc: dict[str, Any] = {}


def __getattr__(name: str):
    if name in _LC_NAMES:
        with _lc_lock:
            if not _lc:
                _lc.update(_define_langchain_adapters())
        return _lc[name]
    raise AttributeError(f"module 'rag.retrieve.searcher' has no attribute {name!r}")


def _define_langchain_adapters() -> dict[str, Any]:
    from langchain_core.callbacks import CallbackManagerForRetrieverRun
    from langchain_core.documents import Document as LCDocument
    from langchain_core.embeddings import Embeddings
    from langchain_core.retrievers import BaseRetriever
    from langchain_core.vectorstores import VectorStore

    def hit_to_document(hit: Hit) -> LCDocument:
        """A LangChain Document whose metadata holds the Chunk fields and the retrieval scores."""
        md = hit.chunk.to_dict()
        text = md.pop("text")
        md.update({"score": hit.score, "rank": hit.rank, "ranks": dict(hit.ranks), "scores": dict(hit.scores)})
        return LCDocument(page_content=text, metadata=md, id=hit.chunk.chunk_id)


    def document_to_chunk(doc: LCDocument) -> Chunk:
        md = dict(doc.metadata)
        md["text"] = doc.page_content
        return Chunk.from_dict(md)


    class KBRetriever(BaseRetriever):
        """LangChain retriever over a `rag.index.kb.KnowledgeBase`: `retriever.invoke("问题")`."""

        kb: Any
        k: int | None = None
        mode: str | None = None

        def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[LCDocument]:
            return [hit_to_document(h) for h in self.kb.search(query, k=self.k, mode=self.mode)]


    class EncoderEmbeddings(Embeddings):
        """Our `Encoder` (prefixes, script normalisation, L2 norm inside) as LangChain `Embeddings`."""

        def __init__(self, encoder):
            self.encoder = encoder

        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return np.asarray(self.encoder.encode_passages(list(texts)), np.float32).tolist()

        def embed_query(self, text: str) -> list[float]:
            return np.asarray(self.encoder.encode_queries([text]), np.float32)[0].tolist()


    def _as_embeddings(e) -> Embeddings:
        return e if isinstance(e, Embeddings) else EncoderEmbeddings(e)


    class ChunkVectorStore(VectorStore):
        """The dense side as a LangChain `VectorStore` (cosine = inner product of L2-normalised vectors).

        Two backings: `ChunkVectorStore.from_version(version, encoder)` wraps a knowledge base's
        FAISS index read-only (add it documents through `KnowledgeBase.add_paths`, which keeps FAISS,
        BM25 and the chunk store in step); `from_texts` / `add_texts` build an in-memory FAISS index.
        """

        def __init__(self, embedding, *, version=None, dim: int | None = None):
            import faiss

            self._embedding = _as_embeddings(embedding)
            self._version = version
            self._lock = threading.Lock()
            self._docs: list[LCDocument] = []
            self._index = None
            if version is None:
                self._dim = dim
                self._index = faiss.IndexFlatIP(dim) if dim else None

        @classmethod
        def from_version(cls, version, encoder) -> "ChunkVectorStore":
            return cls(encoder, version=version)

        @property
        def embeddings(self) -> Embeddings:
            return self._embedding

        # -- writing (in-memory stores only)
        def add_texts(self, texts: Iterable[str], metadatas: list[dict] | None = None, *, ids: list[str] | None = None,
                      **kwargs: Any) -> list[str]:
            import faiss

            if self._version is not None:
                raise RagError("this vector store wraps a knowledge base index; add files with "
                               "`rag index PATH --kb NAME` (KnowledgeBase.add_paths) so BM25 stays in step")
            texts = list(texts)
            if not texts:
                return []
            metadatas = metadatas or [{} for _ in texts]
            ids = list(ids) if ids else [str(uuid.uuid4()) for _ in texts]
            if not (len(metadatas) == len(ids) == len(texts)):
                raise ValueError("texts, metadatas and ids must have the same length")
            vecs = np.asarray(self._embedding.embed_documents(texts), dtype=np.float32)
            vecs /= np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
            with self._lock:
                if self._index is None:
                    self._dim = vecs.shape[1]
                    self._index = faiss.IndexFlatIP(self._dim)
                self._index.add(np.ascontiguousarray(vecs))
                self._docs.extend(LCDocument(page_content=t, metadata=dict(m), id=i) for t, m, i in zip(texts, metadatas, ids))
            return ids

        @classmethod
        def from_texts(cls, texts: list[str], embedding, metadatas: list[dict] | None = None, *,
                       ids: list[str] | None = None, **kwargs: Any) -> "ChunkVectorStore":
            store = cls(embedding)
            store.add_texts(texts, metadatas, ids=ids)
            return store

        # -- reading
        def _select_relevance_score_fn(self) -> Callable[[float], float]:
            return lambda s: max(0.0, min(1.0, float(s)))  # cosine of normalised vectors, clipped to [0, 1]

        def similarity_search_by_vector_with_score(self, embedding: Sequence[float], k: int = 4) -> list[tuple[LCDocument, float]]:
            q = np.asarray(embedding, dtype=np.float32).reshape(-1)
            if self._version is not None:
                out = []
                for row, s in self._version.dense_search(q, k):
                    c = self._version.store.get(row)
                    hit = Hit(chunk=c, score=s, rank=len(out) + 1, ranks={"dense": len(out) + 1}, scores={"dense": s})
                    out.append((hit_to_document(hit), s))
                return out
            with self._lock:
                if self._index is None or self._index.ntotal == 0 or k <= 0:
                    return []
                D, I = self._index.search(q.reshape(1, -1), min(k, self._index.ntotal))
                pairs = sorted(((float(s), int(i)) for s, i in zip(D[0], I[0]) if i >= 0), key=lambda p: (-p[0], p[1]))
                return [(self._docs[i], s) for s, i in pairs]

        def similarity_search_with_score(self, query: str, k: int = 4, **kwargs: Any) -> list[tuple[LCDocument, float]]:
            return self.similarity_search_by_vector_with_score(self._embedding.embed_query(query), k)

        def similarity_search(self, query: str, k: int = 4, **kwargs: Any) -> list[LCDocument]:
            return [d for d, _ in self.similarity_search_with_score(query, k, **kwargs)]

        def similarity_search_by_vector(self, embedding: list[float], k: int = 4, **kwargs: Any) -> list[LCDocument]:
            return [d for d, _ in self.similarity_search_by_vector_with_score(embedding, k)]

        def get_by_ids(self, ids: Sequence[str], /) -> list[LCDocument]:
            if self._version is not None:
                rows = [self._version.row_of[i] for i in ids if i in self._version.row_of]
                return [hit_to_document(Hit(chunk=self._version.store.get(r), score=0.0, rank=0)) for r in rows]
            want = set(ids)
            with self._lock:
                return [d for d in self._docs if d.id in want]

    ns = locals()  # (a comprehension has its own locals())
    return {n: ns[n] for n in _LC_NAMES}
