"""Retrieval over one index version: dense (FAISS), BM25, and their fusion.

`HybridSearcher.search(query, k, mode)` returns `Hit`s. Every hit records each retriever's own
rank (1-based, among that retriever's `candidates`) when the retriever returned it, and each
retriever's exact score (cosine for dense, BM25 for bm25) for every hit — computed for the union
of candidates, which is what lets `fusion = "convex"` normalise without guessing missing scores.
Both the query embedding and BM25 tokens are computed from the same question; script
normalisation happens inside the encoder and the BM25 analyzer, so a traditional and a
simplified question reach the same passages.

The LangChain adapters (`KBRetriever`, `ChunkVectorStore`, `EncoderEmbeddings`) live in
rag.retrieve.langchain; they are re-exported here on first use.
"""

from __future__ import annotations

import numpy as np

from rag.index.bm25 import top_k
from rag.errors import ConfigError
from rag.retrieve.fusion import Candidates, fuse
from rag.types import Hit

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

    def candidates(self, query: str, n_cand: int | None = None, qv: np.ndarray | None = None) -> Candidates:
        """The hybrid candidates of `query` (rag.retrieve.fusion.Candidates): each retriever's top
        `n_cand` and both exact scores over their union; `qv` is the query's embedding if the
        caller has it (a benchmark embeds its questions in one batch)."""
        n = int(n_cand or self.rcfg.candidates)
        qv = self.embed_query(query) if qv is None else qv
        bm_scores = self.version.bm25.get_scores(query)
        return self._candidates(self.version.dense_search(qv, n), top_k(bm_scores, n), qv, bm_scores)

    def _candidates(self, dense, bm, qv, bm_scores) -> Candidates:
        ids = self._ids
        union = sorted({r for r, _ in dense} | {r for r, _ in bm})
        qd = {r: s for r, s in dense}
        missing = [r for r in union if r not in qd]
        if missing:  # exact scores of both retrievers over the union of candidates (no guessing)
            for r, s in zip(missing, self.version.vectors(missing) @ qv):
                qd[r] = float(s)
        qb = {r: s for r, s in bm}
        return Candidates(
            dense=[(ids[r], s) for r, s in dense], bm25=[(ids[r], s) for r, s in bm],
            dense_all={ids[r]: qd[r] for r in union},
            bm25_all={ids[r]: qb[r] if r in qb else float(bm_scores[r]) for r in union},
        )

    def _fuse(self, dense, bm, qv, bm_scores) -> list[tuple[int, float]]:
        rc = self.rcfg
        if rc.fusion not in ("rrf", "convex"):
            raise ConfigError(f"unknown fusion {rc.fusion!r}; use rrf or convex")
        fused = fuse(self._candidates(dense, bm, qv, bm_scores), rc.fusion,
                     {"dense": rc.w_dense, "bm25": rc.w_bm25}, rrf_k=rc.rrf_k, norm=rc.norm)
        row_of = {self._ids[r]: r for lst in (dense, bm) for r, _ in lst}  # only the candidates' rows
        return [(row_of[cid], s) for cid, s in fused]


# ------------------------------------------------------------------ LangChain adapters
# They live in rag.retrieve.langchain and are re-exported here on first use (PEP 562 module
# __getattr__): importing langchain_core costs seconds on a busy machine, and the CLI, the
# benchmark and BM25-only callers never need it.

_LC_NAMES = ("KBRetriever", "ChunkVectorStore", "EncoderEmbeddings", "hit_to_document", "document_to_chunk")


def __getattr__(name: str):
    if name in _LC_NAMES:
        from rag.retrieve import langchain

        return getattr(langchain, name)
    raise AttributeError(f"module 'rag.retrieve.searcher' has no attribute {name!r}")
