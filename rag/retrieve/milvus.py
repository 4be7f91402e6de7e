"""Dense, BM25 and hybrid search over a `rag.index.milvus.store.MilvusVersion`, fused by OUR code.

Milvus returns the two ranked lists (FLAT/IP over the L2-normalised vectors; the BM25 Function
over our analyzer's tokens, the query tokenised by the same `rag.index.bm25.tokenize_query`), and the
fusion is `rag.retrieve.fusion` with the same settings the local `HybridSearcher` uses, so the tuned
fusion carries over. As on the local backend every returned hit carries each retriever's exact
score, computed for the union of candidates (vectors fetched for BM25-only candidates; a BM25
search restricted to the dense-only candidates) — what `fusion = "convex"` needs.

BM25 scores: Milvus Lite returns distances = −score (smaller is better), a Milvus server the
score itself. We take the magnitude and rely on the order of the list, never on the sign.
Ties: higher score, then lower row, like the local backend.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from rag.index.bm25 import tokenize_query
from rag.errors import ConfigError
from rag.retrieve.fusion import Candidates, fuse
from rag.index.milvus.schema import CHUNK_FIELDS, row_to_chunk, token_text
from rag.retrieve.searcher import HybridSearcher
from rag.types import Hit

SLACK = 8  # extra candidates so rows tied at the k-th place are seen (as IndexVersion.dense_search)


def _in(ids) -> str:
    return f"chunk_id in {json.dumps(sorted(ids), ensure_ascii=False)}"


class MilvusSearcher(HybridSearcher):
    """`search(query, k, mode)` → Hits, like `HybridSearcher` (whose encoder handling it reuses)."""

    def __init__(self, version, encoder, rcfg):
        super().__init__(version, encoder, rcfg)
        self.client, self.name = version.client, version.name

    # ---- the two retrievers
    def _dense(self, qv: np.ndarray, n: int, expr: str = "") -> list[tuple[int, float, dict]]:
        res = self.client.search(self.name, data=[qv.astype(np.float32).tolist()], anns_field="vec",
                                 limit=min(n, max(1, self.version.n_chunks)), filter=expr,
                                 output_fields=list(CHUNK_FIELDS), search_params={"metric_type": "IP"})
        return self._sorted(res, negate=False)

    def _bm25(self, query: str, n: int, expr: str = "") -> list[tuple[int, float, dict]]:
        q = token_text(tokenize_query(query, self.version.bm25.analyzer))
        if not q:
            return []
        res = self.client.search(self.name, data=[q], anns_field="sparse", limit=min(n, max(1, self.version.n_chunks)),
                                 filter=expr, output_fields=list(CHUNK_FIELDS), search_params={"metric_type": "BM25"})
        return [t for t in self._sorted(res, negate=True) if t[1] > 0]

    @staticmethod
    def _sorted(res, negate: bool) -> list[tuple[int, float, dict]]:
        out = []
        for h in res[0] if res else []:
            e = h.get("entity", h)
            s = float(h["distance"])
            out.append((int(e["row"]), abs(s) if negate else s, e))
        out.sort(key=lambda t: (-t[1], t[0]))
        return out

    # ---- search
    def search(self, query: str, k: int | None = None, mode: str | None = None,
               candidates: int | None = None) -> list[Hit]:
        rc = self.rcfg
        req = self._request(query, k, mode)
        if req is None:
            return []
        k, mode = req
        n = max(int(candidates or rc.candidates), k) if mode == "hybrid" else k
        qv = self.embed_query(query) if mode in ("dense", "hybrid") else None
        dense = self._dense(qv, n + SLACK)[:n] if qv is not None else []
        bm = self._bm25(query, n + SLACK)[:n] if mode in ("bm25", "hybrid") else []
        ranks: dict[int, dict[str, int]] = {}
        ents: dict[int, dict] = {}
        qd: dict[int, float] = {}
        qb: dict[int, float] = {}
        for name, lst, sc in (("dense", dense, qd), ("bm25", bm, qb)):
            for r, (row, s, e) in enumerate(lst, 1):
                ranks.setdefault(row, {})[name] = r
                ents.setdefault(row, e)
                sc[row] = s
        if mode == "hybrid":
            self._fill(query, qv, qd, qb)
            order = self._fuse_rows(dense, bm, qd, qb)
        else:
            order = [(row, s) for row, s, _ in (dense or bm)]
        out: list[Hit] = []
        for i, (row, fused) in enumerate(order[:k]):
            scores: dict[str, float] = {}
            if qv is not None:
                scores["dense"] = float(qd.get(row, 0.0))
            if mode in ("bm25", "hybrid"):
                scores["bm25"] = float(qb.get(row, 0.0))
            out.append(Hit(chunk=row_to_chunk(ents[row]), score=float(fused), rank=i + 1,
                           ranks=dict(ranks.get(row, {})), scores=scores))
        return out

    def _fill(self, query: str, qv: np.ndarray, qd: dict[int, float], qb: dict[int, float]) -> None:
        """Exact dense and BM25 scores for the whole union of candidates (convex fusion needs
        them; every hit reports them)."""
        ids = self._ids
        miss_d = [r for r in qb if r not in qd]
        if miss_d:
            vecs = self.version.vectors(miss_d)
            for r, s in zip(miss_d, vecs @ qv):
                qd[r] = float(s)
        miss_b = [r for r in qd if r not in qb]
        if miss_b:
            for row, s, _ in self._bm25(query, len(miss_b), _in(ids[r] for r in miss_b)):
                qb[row] = s
            for r in miss_b:
                qb.setdefault(r, 0.0)  # no query term in it: BM25 0, as on the local backend

    def _fuse_rows(self, dense, bm, qd: dict[int, float], qb: dict[int, float]) -> list[tuple[int, float]]:
        rc, ids = self.rcfg, self._ids
        if rc.fusion not in ("rrf", "convex"):
            raise ConfigError(f"unknown fusion {rc.fusion!r}; use rrf or convex")
        c = Candidates(dense=[(ids[r], s) for r, s, _ in dense], bm25=[(ids[r], s) for r, s, _ in bm],
                       dense_all={ids[r]: s for r, s in qd.items()}, bm25_all={ids[r]: s for r, s in qb.items()})
        fused = fuse(c, rc.fusion, {"dense": rc.w_dense, "bm25": rc.w_bm25}, rrf_k=rc.rrf_k, norm=rc.norm)
        row_of = self.version.row_of
        return [(row_of[cid], s) for cid, s in fused]

    def info(self) -> dict[str, Any]:
        return {"collection": self.name, "n_chunks": self.version.n_chunks}
