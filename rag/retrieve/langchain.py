"""LangChain adapters over the retrieval stage: `KBRetriever` (a `BaseRetriever` over a
`rag.index.kb.KnowledgeBase`), `ChunkVectorStore` (a `VectorStore` over the dense side: the KB's
FAISS index read-only, or an in-memory FAISS index built by `from_texts`/`add_texts`),
`EncoderEmbeddings` (our encoder as LangChain `Embeddings`), and the Hit/Chunk ↔ LangChain
`Document` conversions.

Reached through `KnowledgeBase.as_retriever()` / `KnowledgeBase.vectorstore()` and the naive
baseline of the evaluation (rag.evaluate.naive: `EncoderEmbeddings`). A module of its own, split
out of rag/retrieve/searcher.py (which still re-exports these names, on first use): importing
langchain_core costs seconds on a busy machine, and the CLI, the benchmarks and BM25-only
callers never import this module.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any, Callable, Iterable, Sequence

import numpy as np
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document as LCDocument
from langchain_core.embeddings import Embeddings
from langchain_core.retrievers import BaseRetriever
from langchain_core.vectorstores import VectorStore

from rag.errors import RagError
from rag.types import Chunk, Hit

__all__ = ["KBRetriever", "ChunkVectorStore", "EncoderEmbeddings", "hit_to_document", "document_to_chunk"]


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
