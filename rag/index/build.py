"""The on-disk index of one knowledge base: versioned, atomic, incremental.

Layout of a knowledge-base folder (`cfg.paths.kb_dir(name)`):

    CURRENT              the active version folder's name, then `previous <name>` lines: the kept
                         versions, newest first, at most KEEP_VERSIONS (replaced atomically)
    .lock                fcntl lock held by whoever writes (two indexers never collide)
    v<time>-<pid>/       one complete index version:
        chunks.jsonl       row i = FAISS row i = BM25 row i (rows of one document are contiguous)
        chunks.offsets.npy byte offset of every line, so a chunk is read without parsing the rest
        chunks.ids.json    the chunk id of every row (fusion ranks by id; read at open)
        documents.json     the document table (source, sha256, chunk ids, rows, where its text is),
                           parsed on first use
        texts.zlib         every document's original text, one zlib stream each (rag.index.doc_texts)
        vectors.faiss      faiss.IndexFlatIP over L2-normalised vectors (cosine): the exact vectors
        vectors.i8.faiss, vectors.i8.scale.npy   their int8 copy, scanned first (rag.index.vectors)
        bm25_params.json, bm25_tokens.npy, bm25_offsets.npy, bm25s/   (rag.index.bm25)
        config.json        the resolved rag.config.Config
        manifest.json      format, embedding model + dim, chunker settings, corpus hash, package
                           versions, build time, and `files`:
                           size and sha256 of every other file (rag.index.verify)
        COMPLETE           written last, holds the manifest's size and sha256; a folder without it
                           is never loaded

Atomicity: a build writes a hidden `.tmp-…` folder, seals it (manifest, then COMPLETE), renames
it to its final name, then swaps CURRENT with `os.replace` (atomic on POSIX). A crash or Ctrl-C
at any point leaves CURRENT naming the previous, complete version. Directories cannot be swapped
atomically over a non-empty one (rename(2) fails with ENOTEMPTY), hence the pointer file. The
previous complete, undamaged version is kept (a reader in another process may still be using it,
and opening falls back to it when the current one is damaged); older ones are removed.

Integrity (rag.index.verify, rag.index.version): opening a version checks every file's size and
the checksums of small files and raises IndexDamaged naming a damaged file; `open_latest` then
falls back to the previous version. A build given `drop` (versions found damaged) marks them
DAMAGED once the new version is published, so nothing falls back to them again.

Incremental updates reuse, for every unchanged document, its chunks, vectors (read back from
FAISS), BM25 token ids and stored text (copied as compressed bytes); changed documents are re-chunked and only chunks whose text is new
are embedded (vectors of identical text come from the old index or the embeddings vector cache).
BM25's IDF depends on the whole corpus, so its score matrix is rebuilt from the kept token ids
(cheap: no re-tokenising). `build_version` runs these as named steps: `_plan` (kept / changed /
removed), `_chunk`, `_embed_new`, then the rows, BM25, `_texts`, `_entries` and `_manifest`.

Dense search is exact: a flat int8 scan for candidates, then exact float32 rescoring
(rag.index.vectors). At 100k chunks × 384 dims the scan is ≈2 ms (benchmarks/results/scale.md),
needs no training and gives the exact top-k; an HNSW/IVF index would only pay off well beyond that.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from rag.index.bm25 import DEFAULT_ANALYZER, BM25Index, tokenize
from rag.index.doc_texts import INDEXED_FILE, indexed_file, pack, write_texts
from rag.index.embed_batches import embed_missing, open_vector_cache
from rag.index.kb_folder import LOCK  # noqa: F401  (re-exported with the API)
from rag.index.provenance import (check_model, chunker_settings, corpus_hash, doc_sha256,  # noqa: F401
                                  package_versions, text_hash)  # (check_model re-exported with the API)
from rag.errors import ModelMismatch, RagError
from rag.index.verify import COMPLETE, CURRENT, cleanup, fallback_names, publish, read_history, seal
from rag.index.version import (  # noqa: F401  (the reading side, re-exported: rag.index.build is the API)
    CHUNK_IDS,
    DOCUMENTS,
    FORMAT,
    ChunkStore,
    IndexVersion,
    check_kb,
    current_version_path,
    open_current,
    open_latest,
)
from rag.types import Chunk, Document
from rag.index import vectors as dense_files

log = logging.getLogger(__name__)

__all__ = ["COMPLETE", "CURRENT", "FORMAT", "LOCK", "ChunkStore", "IndexVersion", "BuildStats", "build_version",
           "write_version", "check_kb", "current_version_path", "open_current", "open_latest", "check_model"]


# ------------------------------------------------------------------ building


@dataclass
class BuildStats:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    embedded: int = 0  # chunks sent to the encoder
    reused_vectors: int = 0  # chunks whose vector came from the old index or the vector cache
    n_chunks: int = 0


@dataclass
class _Plan:
    """Which documents a build keeps as they were, (re-)chunks, or drops (build_version, step 1)."""

    incoming: dict[str, Document]  # the given documents by id (a later duplicate id wins)
    kept: list[dict] = field(default_factory=list)  # manifest entries of unchanged docs, old order
    new: list[tuple[Document, str, dict | None]] = field(default_factory=list)  # (doc, sha, old entry)

    def kept_rows(self) -> list[int]:
        return [r for e in self.kept for r in range(e["first_row"], e["first_row"] + e["n_chunks"])]

    def legacy(self) -> list[dict]:
        """Kept entries without a stored text (a version written before texts were stored) whose
        document was given again: the build stores its text, so it is not "nothing changed"."""
        return [e for e in self.kept if not e.get("text") and e["doc_id"] in self.incoming]


def _with_indexed_file(doc: Document) -> Document:
    f = indexed_file(doc)
    return doc if f is None else dataclasses.replace(doc, metadata={**doc.metadata, INDEXED_FILE: f})


def _plan(old: IndexVersion | None, docs: Sequence[Document], remove: Iterable[str], keep_only: set[str] | None,
          same_chunker: bool, stats: BuildStats) -> _Plan:
    """Sort the old version's documents and the given ones into kept / new-or-changed / removed."""
    old_docs: dict[str, dict] = {d["doc_id"]: d for d in old.manifest["documents"]} if old else {}
    gone = set(remove)
    if keep_only is not None:
        gone |= {d for d in old_docs if d not in keep_only}
    plan = _Plan({d.doc_id: d for d in docs})
    for doc_id, entry in old_docs.items():
        if doc_id in gone and doc_id not in plan.incoming:
            stats.removed.append(doc_id)
            continue
        d = plan.incoming.get(doc_id)
        if d is None:
            plan.kept.append(entry)
            continue
        sha = doc_sha256(d)
        if sha == entry["sha256"] and same_chunker:
            plan.kept.append(entry)
            stats.unchanged.append(doc_id)
        else:
            plan.new.append((_with_indexed_file(d), sha, entry))
            stats.updated.append(doc_id)
    for doc_id, d in plan.incoming.items():
        if doc_id not in old_docs:
            plan.new.append((_with_indexed_file(d), doc_sha256(d), None))
            stats.added.append(doc_id)
    return plan


def _chunk(plan: _Plan, chunk_fn: Callable[[Document, Any], list[Chunk]], cfg, progress: bool) -> list[list[Chunk]]:
    """The chunks of every new/changed document, in plan order."""
    it = plan.new
    if progress and plan.new:
        from tqdm import tqdm

        it = tqdm(plan.new, desc="chunking", unit="doc")
    return [list(chunk_fn(d, cfg.chunk)) for d, _, _ in it]


def _embed_new(old: IndexVersion | None, plan: _Plan, texts: Sequence[str], encoder, cfg, stats: BuildStats,
               progress: bool) -> np.ndarray:
    """L2-normalised vectors of the new chunks' embed `texts`: an old row's vector where the text is
    identical (a changed document keeps its unchanged paragraphs' vectors), else the vector cache
    or the encoder (rag.index.embed_batches)."""
    old_text_rows: dict[str, int] = {}
    if old is not None:
        for _, _, e in plan.new:
            if e is not None:
                for r in range(e["first_row"], e["first_row"] + e["n_chunks"]):
                    old_text_rows.setdefault(text_hash(old.store.get(r).embed_text), r)
    vecs = np.zeros((len(texts), encoder.dim), np.float32)
    todo: list[int] = []
    reuse_rows: list[tuple[int, int]] = []
    for i, t in enumerate(texts):
        r = old_text_rows.get(text_hash(t))
        if r is not None:
            reuse_rows.append((i, r))
        else:
            todo.append(i)
    if reuse_rows:
        vecs[[i for i, _ in reuse_rows]] = old.vectors([r for _, r in reuse_rows])
    # encoded in batches, each cached as soon as it is done: an interrupted run resumes there
    cache = open_vector_cache(cfg) if todo else None
    if todo:
        vecs[todo], stats.embedded = embed_missing(encoder, [texts[i] for i in todo], cache, progress=progress)
    stats.reused_vectors = len(texts) - stats.embedded
    # guard against an encoder that forgot to normalise: IP must be cosine
    norms = np.linalg.norm(vecs, axis=1, keepdims=True)
    return vecs / np.where(norms > 0, norms, 1.0)


def _texts(old: IndexVersion | None, plan: _Plan) -> tuple[list[bytes | None], dict[str, str]]:
    """The stored text (rag.index.doc_texts blob) of every document of the new version, in entry
    order — a kept document's copied from the old version, or packed from the given document
    where the old version stored none — and the indexed files of kept scans that get theirs now."""
    blobs = old.text_blobs(plan.kept) if old is not None and plan.kept else []
    files: dict[str, str] = {}
    for i, e in enumerate(plan.kept):
        d = plan.incoming.get(e["doc_id"])
        if blobs[i] is None and d is not None:
            blobs[i] = pack(d.text)
            f = indexed_file(d)
            if f is not None and INDEXED_FILE not in e.get("metadata", {}):
                files[e["doc_id"]] = f
    return blobs + [pack(d.text) for d, _, _ in plan.new], files


def _entries(plan: _Plan, new_chunks: Sequence[Sequence[Chunk]], files: Mapping[str, str], now: str) -> list[dict]:
    """The new version's document table: kept documents (old order), then the new/changed ones."""
    entries: list[dict] = []
    row = 0
    for e in plan.kept:
        e = {**e, "first_row": row}
        if e["doc_id"] in files:
            e["metadata"] = {**e.get("metadata", {}), INDEXED_FILE: files[e["doc_id"]]}
        entries.append(e)
        row += e["n_chunks"]
    for (d, sha, olde), cs in zip(plan.new, new_chunks):
        md = dict(d.metadata or {})
        entries.append({
            "doc_id": d.doc_id,
            "source": d.source,
            "title": d.title,
            "sha256": sha,
            "date": str(md.get("date", "") or ""),
            "added": olde["added"] if olde else now,
            "updated": now,
            "n_chunks": len(cs),
            "first_row": row,
            "chunk_ids": [c.chunk_id for c in cs],
            "metadata": {k: v for k, v in md.items() if isinstance(v, (str, int, float, bool)) or v is None},
        })
        row += len(cs)
    return entries


def _rows(old: IndexVersion | None, kept_rows: Sequence[int], new: Sequence[Chunk],
          files: Mapping[str, str]) -> list[Chunk]:
    """The new version's chunks in row order: the kept rows (a scan that gets its indexed file now
    gets it in its chunks' metadata too, where citations find it), then the new chunks."""
    out: list[Chunk] = []
    for r in kept_rows if old is not None else ():
        c = old.store.get(r)
        f = files.get(c.doc_id)
        out.append(c if f is None else dataclasses.replace(c, metadata={**c.metadata, INDEXED_FILE: f}))
    return out + list(new)


def _manifest(cfg, encoder, analyzer: str, bm25, chunker: dict[str, Any], entries: list[dict], n_chunks: int,
              now: str) -> dict:
    return {
        "format": FORMAT,
        "embedding": {"model": encoder.name, "config_model": cfg.embed.model, "dim": int(encoder.dim),
                      "normalized": True},
        "faiss": {"index": "IndexFlatIP", "metric": "inner_product"},  # + `coarse`: set by write_version
        "bm25": {"analyzer": analyzer, "k1": bm25.k1, "b": bm25.b, "library": "bm25s"},
        "chunker": chunker,
        "n_chunks": int(n_chunks),
        "n_documents": len(entries),
        "corpus_hash": corpus_hash(entries, chunker, encoder.name),
        "documents": entries,
        "versions": package_versions(),
        "built_at": now,
        "build_seconds": None,
    }


def build_version(
    kb_dir: Path,
    old: IndexVersion | None,
    docs: Sequence[Document],
    cfg,
    encoder,
    *,
    remove: Iterable[str] = (),
    keep_only: set[str] | None = None,
    chunk_fn: Callable[[Document, Any], list[Chunk]] | None = None,
    progress: bool = False,
    analyzer: str | None = None,
    drop: Iterable[str] = (),
    writer: Callable[..., Path] | None = None,
) -> tuple[Path | None, BuildStats]:
    """Write a new index version for `kb_dir` from `old` plus `docs` and make it current.

    - a document whose id is known and whose sha256 and chunker settings are unchanged is kept;
    - `remove`: doc ids to drop; `keep_only`: if given, every old doc id not in it is dropped
      (sync). Returns (new version path or None if nothing changed, stats). The caller holds the
      write lock.
    - `drop`: names of versions found damaged (see write_version); a new version is written even
      if nothing changed relative to `old`, so CURRENT stops naming a damaged one.
    - `writer`: publishes the version (default `write_version`, same signature); the Milvus
      backend passes rag.index.milvus.store.write_milvus_version (`old` is then a MilvusVersion).
    """
    drop = list(drop)
    t0 = time.time()
    stats = BuildStats()
    chunker = chunker_settings(cfg)
    if chunk_fn is None:
        from rag.chunk.sections import chunk_document as chunk_fn  # owned by the chunking module
    same_chunker = bool(old) and old.manifest.get("chunker") == chunker
    analyzer = analyzer or (old.bm25.analyzer if old else getattr(cfg.retrieve, "bm25_analyzer", DEFAULT_ANALYZER))
    if old is not None and old.dim != encoder.dim:
        raise ModelMismatch(f"the index has {old.dim}-dim vectors, the encoder {encoder.name} gives {encoder.dim}")
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    plan = _plan(old, docs, remove, keep_only, same_chunker, stats)
    if old is not None and not plan.new and not stats.removed and not drop and not plan.legacy():
        stats.n_chunks = old.n_chunks
        return None, stats

    new_chunks = _chunk(plan, chunk_fn, cfg, progress)
    flat_new = [c for cs in new_chunks for c in cs]
    texts = [c.embed_text for c in flat_new]
    vecs = _embed_new(old, plan, texts, encoder, cfg, stats, progress)
    # rows: kept docs (old order), then new/changed docs
    kept_rows = plan.kept_rows()
    all_vecs = np.concatenate([old.vectors(kept_rows) if old is not None else np.zeros((0, encoder.dim), np.float32),
                               vecs]) if kept_rows else vecs
    new_tokens = [tokenize(t, analyzer) for t in texts]
    bm25 = old.bm25.subset(kept_rows, new_tokens) if old is not None else BM25Index.from_token_lists(new_tokens, analyzer)
    blobs, files = _texts(old, plan)
    entries = _entries(plan, new_chunks, files, now)
    manifest = _manifest(cfg, encoder, analyzer, bm25, chunker, entries, len(all_vecs), now)
    stats.n_chunks = int(len(all_vecs))
    path = (writer or write_version)(kb_dir, _rows(old, kept_rows, flat_new, files), all_vecs, bm25, manifest, cfg,
                                     t0, drop=drop, texts=blobs)
    return path, stats


def write_version(kb_dir: Path, chunks: Sequence[Chunk], vectors: np.ndarray, bm25: BM25Index,
                  manifest: dict, cfg, t0: float | None = None, drop: Iterable[str] = (),
                  texts: Sequence[bytes | None] = ()) -> Path:
    """Write a complete version into a temp folder, then publish it atomically (see module doc).
    `drop`: versions found damaged; they are never kept as the fallback of the new one. `texts`:
    each document's stored text (rag.index.doc_texts blobs, in manifest order; () or None: none)."""
    kb_dir = Path(kb_dir)
    kb_dir.mkdir(parents=True, exist_ok=True)
    # one clock reading for both parts: the names sort by build time (a second ticking over
    # between two readings made a newer version sort first: older code read the clock twice)
    ns = time.time_ns()
    name = f"v{time.strftime('%Y%m%d%H%M%S', time.gmtime(ns // 10**9))}-{ns % 10**9:09d}-{os.getpid()}"
    tmp = kb_dir / f".tmp-{name}"
    tmp.mkdir()
    try:
        n = ChunkStore.write(tmp / "chunks.jsonl", chunks)
        if n != len(vectors) or n != bm25.n_docs:
            raise RagError(f"internal error: {n} chunks, {len(vectors)} vectors, {bm25.n_docs} BM25 rows")
        # format 2: the document table and the chunk ids beside the manifest (rag.index.version)
        documents = manifest.pop("documents", [])
        ids = [c.chunk_id for c in chunks]
        if ids != [cid for d in documents for cid in d["chunk_ids"]]:
            raise RagError("internal error: the documents' chunk ids are not the chunks' ids in row order")
        manifest["format"] = FORMAT
        documents = write_texts(tmp, documents, texts)  # each entry gets its text's place
        (tmp / DOCUMENTS).write_bytes(json.dumps(documents, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
        (tmp / CHUNK_IDS).write_bytes(json.dumps(ids, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
        dim = int(vectors.shape[1]) if vectors.ndim == 2 and vectors.shape[1] else int(manifest["embedding"]["dim"])
        manifest["faiss"] = dense_files.write(tmp, vectors, dim)  # vectors.faiss + its int8 copy
        bm25.save(tmp)
        cfg.save(tmp / "config.json")
        if t0 is not None:
            manifest["build_seconds"] = round(time.time() - t0, 3)
        seal(tmp, manifest)  # file table into manifest.json, then COMPLETE (rag.index.verify)
        final = kb_dir / name
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # also on Ctrl-C: CURRENT still names the old version
        raise
    _quarantine(kb_dir, drop)
    _publish(kb_dir, name)
    cleanup(kb_dir, keep=set(read_history(kb_dir)[0]) | {name})
    return final


def _quarantine(kb_dir: Path, names: Iterable[str]) -> None:
    """Versions found damaged lose their COMPLETE marker (renamed DAMAGED, kept for inspection
    until cleanup), so nothing falls back to them; done only after the new version is whole."""
    for n in names:
        p = Path(kb_dir) / n
        if n and "/" not in n and (p / COMPLETE).exists():
            try:
                os.replace(p / COMPLETE, p / "DAMAGED")
            except OSError as e:
                log.warning("could not mark %s as damaged: %s", n, e)


def _publish(kb_dir: Path, name: str) -> None:
    """CURRENT := `name` plus the newest complete earlier versions (bounded; rag.index.verify)."""
    publish(kb_dir, name, fallback_names(kb_dir, name))
