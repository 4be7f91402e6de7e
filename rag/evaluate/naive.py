"""A deliberately plain LangChain RAG, scored through the same harness as the assistant.

The issue's yardstick ("a 30-line LangChain RAG over the same model and encoder"): what a
tutorial writes, nothing more —
  langchain_text_splitters.RecursiveCharacterTextSplitter(chunk_size=500, chunk_overlap=50)
  over each corpus document's full text → langchain_community FAISS with the project's own
  encoder as LangChain `Embeddings` (rag.retrieve.langchain.EncoderEmbeddings; the encoder adds the e5
  prefixes) → top-4 similarity search → one "stuff" prompt (system: answer from the context, the
  4 chunks joined by blank lines; human: the question) → the same chat model the assistant uses
  (`Assistant.chat_model`). No condensation, no reranking, no citations, no refusal threshold.

`NaiveRAG.ask` yields the assistant's event stream (Status, Evidence, Token, Final(Answer)) so
the harness computes every metric the same way. Its hits are `Hit(Chunk)`s with real spans into
the document text (the splitter's `start_index`, checked against the text), so chunk-level
recall uses the same evidence quotes; `refused = rag.answer.assistant.is_refusal(text)`.

In `rag eval` it is the backend spec `naive:BACKEND[:MODEL]`, e.g.
`--compare llm=local:qwen2.5-1.5b,naive:local:qwen2.5-1.5b`; its configuration is always named
`naive:…/dense/k4` (mode and k are fixed by the recipe).

Deliberate compromises
- The prompt is the LangChain tutorial's RAG prompt in Chinese, with one change: "if you don't
  know, say 无法回答" instead of "say that you don't know" — 无法回答 is a phrase
  `is_refusal` recognises, so the baseline's refusals are counted rather than scored as wrong
  answers ("我不知道" would not be detected).
- No conversation memory: a follow-up is searched and answered as asked (tutorial RAG has none);
  the per-type table shows follow-ups apart.
- Its chunks are named `{doc_id}#lc{n}` so they are never mistaken for the index's chunks; the
  harness derives their relevance from the evidence quotes exactly as for the index's chunks.
- The depth-20 retrieval numbers come from the same FAISS store searched to depth 20 (an exact
  search: its top 4 are the 4 the model sees); the index's bm25/dense/hybrid sweep is not run for it.
- Cache: the chunks (JSON) and their vectors (.npy) per corpus key, beside the harness's index;
  the FAISS store is rebuilt from them with `FAISS.from_embeddings` (no pickle to trust).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np

from rag.errors import RagError
from rag.types import Answer, Chunk, Event, Evidence, Final, Hit, Status, Token

log = logging.getLogger(__name__)

PREFIX = "naive:"
CHUNK_SIZE, CHUNK_OVERLAP = 500, 50
K = 4
MODE = "dense"  # what its configuration is named with: FAISS similarity search
VERSION = 1  # bump when the splitting or the cached files change

# LangChain's RAG tutorial prompt, in Chinese; "无法回答" is what rag.answer.assistant.is_refusal detects
SYSTEM_PROMPT = (
    "你是问答助手。请使用下面检索到的上下文回答问题。如果不知道答案，就说“无法回答”。"
    "最多用三句话，回答要简洁。\n\n{context}"
)


def inner_backend(spec: str | None) -> str | None:
    """The answer backend of a `naive:BACKEND[:MODEL]` spec, None for any other spec.

    >>> inner_backend("naive:local:qwen2.5-1.5b"), inner_backend("Naive:fake"), inner_backend("local")
    ('local:qwen2.5-1.5b', 'fake', None)
    """
    s = (spec or "").strip()
    return s[len(PREFIX):].strip() if s.lower().startswith(PREFIX) else None


def is_naive(spec: str | None) -> bool:
    return inner_backend(spec) is not None


def normalise_spec(spec: str) -> str:
    """`naive:BACKEND[:MODEL]` checked with rag.answer.assistant.parse_backend (handled here, before it:
    it knows no `naive:`). ConfigError for an unknown backend or one without a chat model.

    >>> normalise_spec(" Naive:Local:qwen2.5-1.5b ")
    'naive:local:qwen2.5-1.5b'
    """
    from rag.answer.assistant import parse_backend
    from rag.errors import ConfigError

    kind, model = parse_backend(inner_backend(spec) or "")
    if kind == "extractive":
        raise ConfigError("the naive baseline answers with a chat model: naive:local[:MODEL], naive:openai or naive:fake")
    return f"{PREFIX}{kind}:{model}" if model else f"{PREFIX}{kind}"


# ---------------------------------------------------------------------------- splitting + store


def split_texts(texts: Mapping[str, str], titles: Mapping[str, str] | None = None,
                chunk_size: int = CHUNK_SIZE, chunk_overlap: int = CHUNK_OVERLAP) -> list[Chunk]:
    """RecursiveCharacterTextSplitter over each document's full text → Chunks whose `start`/`end`
    index that text (`text[c.start:c.end] == c.text`), in document-id order."""
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(chunk_size=chunk_size, chunk_overlap=chunk_overlap, add_start_index=True)
    out: list[Chunk] = []
    for did in sorted(texts):
        text = texts[did]
        pos = 0
        for n, d in enumerate(splitter.create_documents([text])):
            piece = d.page_content
            start = int(d.metadata.get("start_index", -1))
            if start < 0 or text[start:start + len(piece)] != piece:  # never seen; kept honest anyway
                start = text.find(piece, pos)
                if start < 0:
                    log.warning("naive: a chunk of %s is not in its text; skipped", did)
                    continue
            out.append(Chunk(f"{did}#lc{n}", did, n, (titles or {}).get(did, ""), (), piece, start, start + len(piece),
                             f"{did}.txt", {"splitter": f"recursive-{chunk_size}/{chunk_overlap}"}))
            pos = start + 1
    return out


def _key(texts: Mapping[str, str], encoder: Any, chunk_size: int, chunk_overlap: int) -> str:
    h = hashlib.sha1(json.dumps([VERSION, chunk_size, chunk_overlap, str(getattr(encoder, "name", type(encoder).__name__))]).encode())
    for did in sorted(texts):
        h.update(json.dumps([did, texts[did]], ensure_ascii=False).encode())
    return h.hexdigest()[:12]


class NaiveStore:
    """The naive stack's chunks in a langchain_community FAISS store (default L2 index)."""

    def __init__(self, chunks: Sequence[Chunk], vectors: np.ndarray, encoder: Any, path: Path | None = None):
        from langchain_community.vectorstores import FAISS

        from rag.retrieve.langchain import EncoderEmbeddings

        self.chunks = list(chunks)
        self.path = path
        pairs = [(c.text, [float(x) for x in v]) for c, v in zip(self.chunks, np.asarray(vectors, np.float32))]
        self.vectorstore = FAISS.from_embeddings(pairs, EncoderEmbeddings(encoder), metadatas=[{"i": i} for i in range(len(pairs))])

    @classmethod
    def build(cls, texts: Mapping[str, str], encoder: Any, *, titles: Mapping[str, str] | None = None,
              cache_dir: str | Path | None = None, chunk_size: int = CHUNK_SIZE, chunk_overlap: int = CHUNK_OVERLAP) -> "NaiveStore":
        """Split and embed `texts` (doc id → full text), or load them from `cache_dir/naive-<key>/`."""
        folder = Path(cache_dir) / f"naive-{_key(texts, encoder, chunk_size, chunk_overlap)}" if cache_dir else None
        if folder is not None and (folder / "vectors.npy").exists():
            rows = json.loads((folder / "chunks.json").read_text(encoding="utf-8"))
            return cls([Chunk.from_dict(r) for r in rows], np.load(folder / "vectors.npy"), encoder, folder)
        chunks = split_texts(texts, titles, chunk_size, chunk_overlap)
        if not chunks:
            raise RagError("naive baseline: the corpus produced no chunks")
        from rag.retrieve.langchain import EncoderEmbeddings

        vectors = np.asarray(EncoderEmbeddings(encoder).embed_documents([c.text for c in chunks]), np.float32)
        if folder is not None:
            tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
            tmp.mkdir(parents=True, exist_ok=True)
            (tmp / "chunks.json").write_text(json.dumps([c.to_dict() for c in chunks], ensure_ascii=False), encoding="utf-8")
            np.save(tmp / "vectors.npy", vectors)
            if folder.exists():  # a concurrent run finished first
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.rename(folder)
        return cls(chunks, vectors, encoder, folder)

    def search(self, query: str, k: int = K) -> list[Hit]:
        """Top-k similarity search. Score: cosine (the encoder's vectors are unit length, and
        FAISS's L2 index returns squared distances d², so cos = 1 − d²/2)."""
        if not query.strip():
            return []
        out = []
        for rank, (doc, d2) in enumerate(self.vectorstore.similarity_search_with_score(query, k=k), 1):
            cos = 1.0 - float(d2) / 2.0
            out.append(Hit(self.chunks[int(doc.metadata["i"])], cos, rank, {"dense": rank}, {"dense": cos}))
        return out


class NaiveSearch:
    """The harness's searcher interface, `(query, mode) -> (hits, seconds)`, over a NaiveStore
    (mode is ignored: the store has one), memoised per query like the harness's MemoSearcher."""

    def __init__(self, store: NaiveStore, depth: int):
        self.store, self.depth = store, depth
        self.memo: dict[str, tuple[list[Hit], float]] = {}

    def __call__(self, query: str, mode: str | None = None) -> tuple[list[Hit], float]:
        if query not in self.memo:
            t = time.perf_counter()
            hits = self.store.search(query, self.depth)
            self.memo[query] = (hits, time.perf_counter() - t)
        return self.memo[query]


# ---------------------------------------------------------------------------- answering


def stuff_messages(question: str, hits: Sequence[Hit]) -> list[Any]:
    """The "stuff" prompt: the retrieved chunks joined by blank lines into the system message."""
    from langchain_core.prompts import ChatPromptTemplate

    prompt = ChatPromptTemplate.from_messages([("system", SYSTEM_PROMPT), ("human", "{question}")])
    return prompt.format_messages(context="\n\n".join(h.chunk.text for h in hits), question=question)


@dataclass
class NaiveRAG:
    """Answers like a tutorial RAG chain; `ask` has the signature and events of `Assistant.ask`.

    `model`: a LangChain chat model used for every call, or `get_model(backend)` returning the
    model for the spec's inner backend (the harness passes `Assistant.chat_model`)."""

    store: NaiveStore
    model: Any = None
    get_model: Callable[[str], Any] | None = None
    model_name: Callable[[str], str] | None = None
    k: int = K

    def _model(self, backend: str) -> Any:
        m = self.model if self.model is not None else (self.get_model(backend) if self.get_model else None)
        if m is None:
            raise RagError(f"the naive baseline needs a chat model; {backend!r} has none (use naive:local or naive:openai)")
        return m

    def ask(self, question: str, history: Sequence[Any] = (), *, llm_backend: str | None = None,
            k: int | None = None, mode: str | None = None) -> Iterator[Event]:
        """History, k and mode are accepted for the harness and ignored: the recipe is fixed."""
        from rag.answer.assistant import validate_question

        q = validate_question(question)
        backend = inner_backend(llm_backend) or (llm_backend or "")
        return self._ask(q, backend)

    def _ask(self, q: str, backend: str) -> Iterator[Event]:
        from rag.answer.assistant import is_refusal

        t0 = time.perf_counter()
        yield Status("retrieve", f"检索：{q}")
        hits = tuple(self.store.search(q, self.k))
        timings = {"retrieve": time.perf_counter() - t0}
        yield Evidence(hits)
        yield Status("generate", "生成回答")
        model = self._model(backend)
        tg = time.perf_counter()
        first = None
        parts: list[str] = []
        try:
            for chunk in model.stream(stuff_messages(q, hits)):
                piece = chunk.content if isinstance(chunk.content, str) else str(chunk.content)
                if not piece:
                    continue
                if first is None:
                    first = time.perf_counter() - t0
                parts.append(piece)
                yield Token(piece)
        except RagError:
            raise
        except Exception as e:
            raise RagError(f"the naive baseline's model ({backend}) failed: {e}") from None
        text = "".join(parts).strip()
        timings.update(generate=time.perf_counter() - tg, first_token=first if first is not None else time.perf_counter() - t0,
                       total=time.perf_counter() - t0)
        name = self.model_name(backend) if self.model_name else str(getattr(model, "model_name", "") or backend)
        yield Final(Answer(question=q, text=text, citations=(), refused=is_refusal(text), hits=hits,
                           timings={k_: round(v, 4) for k_, v in timings.items()}, model=f"naive+{name}",
                           standalone_question=q, grounded=False))


def for_harness(texts: Mapping[str, str], encoder: Any, assistant: Any, *, titles: Mapping[str, str] | None = None,
                cache_dir: str | Path | None = None) -> tuple[NaiveRAG, dict[str, Any]]:
    """The NaiveRAG the harness asks — over the harness's document texts with the index's encoder,
    answering with the assistant's chat models (same weights, loaded once) — and the run.json
    record of it."""
    t = time.perf_counter()
    store = NaiveStore.build(texts, encoder, titles=titles, cache_dir=cache_dir)
    rag = NaiveRAG(store, get_model=lambda b: assistant.chat_model(assistant.backend(b)),
                   model_name=lambda b: assistant.model_name(assistant.backend(b)))
    info = {"n_chunks": len(store.chunks), "chunk_size": CHUNK_SIZE, "chunk_overlap": CHUNK_OVERLAP, "k": K,
            "cache": str(store.path) if store.path else None, "seconds": round(time.perf_counter() - t, 2)}
    return rag, info
