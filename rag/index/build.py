"""The on-disk index of one knowledge base: versioned, atomic, incremental.

Layout of a knowledge-base folder (`cfg.paths.kb_dir(name)`):

    CURRENT              the active version folder's name, then `previous <name>` lines: the kept
                         versions, newest first, at most KEEP_VERSIONS (replaced atomically)
    .lock                fcntl lock held by whoever writes (two indexers never collide)
    v<time>-<pid>/       one complete index version:
        chunks.jsonl       row i = FAISS row i = BM25 row i (rows of one document are contiguous)
        chunks.offsets.npy byte offset of every line, so a chunk is read without parsing the rest
        chunks.ids.json    the chunk id of every row (fusion ranks by id; read at open)
        documents.json     the document table (source, sha256, chunk ids, rows), parsed on first use
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
FAISS) and BM25 token ids; changed documents are re-chunked and only chunks whose text is new
are embedded (vectors of identical text come from the old index or the embeddings vector cache).
BM25's IDF depends on the whole corpus, so its score matrix is rebuilt from the kept token ids
(cheap: no re-tokenising).

Dense search is exact: a flat int8 scan for candidates, then exact float32 rescoring
(rag.index.vectors). At 100k chunks × 384 dims the scan is ≈2 ms (benchmarks/results/scale.md),
needs no training and gives the exact top-k; an HNSW/IVF index would only pay off well beyond that.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import platform
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from rag.index.bm25 import DEFAULT_ANALYZER, BM25Index, tokenize
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

LOCK = ".lock"
__all__ = ["COMPLETE", "CURRENT", "FORMAT", "LOCK", "ChunkStore", "IndexVersion", "BuildStats", "build_version",
           "write_version", "check_kb", "current_version_path", "open_current", "open_latest", "check_model"]


def text_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def doc_sha256(doc: Document) -> str:
    """Content hash of a document: the ingest-provided file hash when present, else of its text."""
    sha = (doc.metadata or {}).get("sha256")
    return str(sha) if sha else hashlib.sha256(doc.text.encode("utf-8")).hexdigest()


def package_versions() -> dict[str, str]:
    from importlib import metadata

    out = {"python": platform.python_version()}
    for pkg in ("rag-zh", "faiss-cpu", "bm25s", "jieba", "opencc", "numpy", "sentence-transformers", "torch"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


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


def _chunker_settings(cfg) -> dict[str, Any]:
    """The chunker's settings and its rule version: a rule change re-chunks every document on the
    next `rag index` (vectors of unchanged chunk texts still come from the cache)."""
    from rag.chunk.sections import CHUNKER_VERSION

    return {**dataclasses.asdict(cfg.chunk), "version": CHUNKER_VERSION}


def corpus_hash(docs: Sequence[Mapping[str, Any]], chunker: Mapping[str, Any], model: str) -> str:
    h = hashlib.sha256()
    h.update(json.dumps([chunker, model], sort_keys=True).encode())
    for d in sorted(docs, key=lambda d: d["doc_id"]):
        h.update(f"{d['doc_id']}\t{d['sha256']}\n".encode())
    return h.hexdigest()


def _open_vector_cache(cfg):
    """The embeddings package's vector cache if it is there and enabled, else None."""
    if not getattr(cfg.embed, "cache", False):
        return None
    try:
        from embeddings.cache import VectorCache
    except ImportError:
        return None
    folder = Path(cfg.paths.home) / "cache" / "vectors"
    for attempt in (1, 2):
        try:
            return VectorCache(folder)
        except Exception as e:  # a broken cache must never stop indexing
            if attempt == 1 and _set_cache_aside(folder, e):
                continue  # a fresh, empty cache: this build re-embeds, the next ones hit it again
            log.warning("vector cache unavailable: %s", e)
            return None
    return None


def _set_cache_aside(folder: Path, error: Exception) -> bool:
    """A damaged SQLite vector cache is renamed aside (never deleted: it is the user's disk, but it
    is only a cache) so a new one can start; otherwise every later build would re-embed every
    passage. Only for SQLite's own corruption errors, not for e.g. a permission problem."""
    import sqlite3

    cause = error.__cause__ if error.__cause__ is not None else error
    if not isinstance(cause, sqlite3.DatabaseError):
        return False
    # an OperationalError is set aside only when it reports damage: a cut header under a WAL can
    # surface as SQLITE_IOERR ("disk I/O error"); "locked", "readonly", "unable to open" are not damage
    if isinstance(cause, sqlite3.OperationalError) and not any(
        w in str(cause) for w in ("disk I/O error", "malformed", "not a database")
    ):
        return False
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime())
    moved = False
    for p in sorted(folder.glob("vectors.sqlite*")):
        if ".damaged-" not in p.name:
            try:
                os.replace(p, p.with_name(f"{p.name}.damaged-{stamp}"))
                moved = True
            except OSError:
                return False
    if moved:
        log.warning("vector cache %s is damaged (%s); set aside as *.damaged-%s, starting a new one",
                    folder, cause, stamp)
    return moved


def _cache_get(cache, model: str, texts: Sequence[str]) -> list[np.ndarray | None]:
    if cache is None or not texts:
        return [None] * len(texts)
    try:
        if hasattr(cache, "get_many"):
            got = cache.get_many(model, list(texts))
            return [None if v is None else np.asarray(v, np.float32) for v in got]
        return [cache.get(model, t) for t in texts]
    except Exception as e:
        log.warning("vector cache read failed: %s", e)
        return [None] * len(texts)


def _cache_put(cache, model: str, texts: Sequence[str], vecs: np.ndarray) -> None:
    if cache is None or not len(texts):
        return
    try:
        if hasattr(cache, "put_many"):
            cache.put_many(model, list(texts), vecs)
        else:
            for t, v in zip(texts, vecs):
                cache.put(model, t, v)
    except Exception as e:
        log.warning("vector cache write failed: %s", e)


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
    chunker = _chunker_settings(cfg)
    if chunk_fn is None:
        from rag.chunk.sections import chunk_document as chunk_fn  # owned by the chunking module
    old_docs: dict[str, dict] = {d["doc_id"]: d for d in old.manifest["documents"]} if old else {}
    same_chunker = bool(old) and old.manifest.get("chunker") == chunker
    analyzer = analyzer or (old.bm25.analyzer if old else getattr(cfg.retrieve, "bm25_analyzer", DEFAULT_ANALYZER))
    if old is not None and old.dim != encoder.dim:
        raise ModelMismatch(f"the index has {old.dim}-dim vectors, the encoder {encoder.name} gives {encoder.dim}")

    gone = set(remove)
    if keep_only is not None:
        gone |= {d for d in old_docs if d not in keep_only}
    incoming: dict[str, Document] = {}
    for d in docs:
        incoming[d.doc_id] = d  # a later duplicate id wins (same file given twice)

    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    kept_entries: list[dict] = []  # manifest entries of unchanged docs, old order
    new_docs: list[tuple[Document, str, dict | None]] = []  # (doc, sha, old entry)
    for doc_id, entry in old_docs.items():
        if doc_id in gone and doc_id not in incoming:
            stats.removed.append(doc_id)
            continue
        d = incoming.get(doc_id)
        if d is None:
            kept_entries.append(entry)
            continue
        sha = doc_sha256(d)
        if sha == entry["sha256"] and same_chunker:
            kept_entries.append(entry)
            stats.unchanged.append(doc_id)
        else:
            new_docs.append((d, sha, entry))
            stats.updated.append(doc_id)
    for doc_id, d in incoming.items():
        if doc_id not in old_docs:
            new_docs.append((d, doc_sha256(d), None))
            stats.added.append(doc_id)

    if old is not None and not new_docs and not stats.removed and not drop:
        stats.n_chunks = old.n_chunks
        return None, stats

    # --- chunk the new/changed documents
    new_chunks: list[list[Chunk]] = []
    it = new_docs
    if progress and new_docs:
        from tqdm import tqdm

        it = tqdm(new_docs, desc="chunking", unit="doc")
    for d, _, _ in it:
        new_chunks.append(list(chunk_fn(d, cfg.chunk)))

    # --- vectors: kept rows from the old index; new chunks from identical old text, cache, encoder
    kept_rows: list[int] = []
    for e in kept_entries:
        kept_rows.extend(range(e["first_row"], e["first_row"] + e["n_chunks"]))
    old_text_rows: dict[str, int] = {}
    if old is not None:
        for _, _, e in new_docs:
            if e is not None:
                for r in range(e["first_row"], e["first_row"] + e["n_chunks"]):
                    old_text_rows.setdefault(text_hash(old.store.get(r).embed_text), r)
    flat_new = [c for cs in new_chunks for c in cs]
    texts = [c.embed_text for c in flat_new]
    vecs = np.zeros((len(flat_new), encoder.dim), np.float32)
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
    from rag.index.embed_batches import embed_missing

    cache = _open_vector_cache(cfg) if todo else None
    if todo:
        vecs[todo], stats.embedded = embed_missing(encoder, [texts[i] for i in todo], cache, progress=progress)
    stats.reused_vectors = len(flat_new) - stats.embedded
    # guard against an encoder that forgot to normalise: IP must be cosine
    norms = np.linalg.norm(vecs, axis=1, keepdims=True)
    vecs = vecs / np.where(norms > 0, norms, 1.0)

    # --- assemble rows: kept docs (old order), then new/changed docs
    all_vecs = np.concatenate([old.vectors(kept_rows) if old is not None else np.zeros((0, encoder.dim), np.float32),
                               vecs]) if kept_rows else vecs
    new_tokens = [tokenize(t, analyzer) for t in texts]
    if old is not None:
        bm25 = old.bm25.subset(kept_rows, new_tokens)
    else:
        bm25 = BM25Index.from_token_lists(new_tokens, analyzer)

    entries: list[dict] = []
    row = 0
    for e in kept_entries:
        entries.append({**e, "first_row": row})
        row += e["n_chunks"]
    for (d, sha, olde), cs in zip(new_docs, new_chunks):
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

    def chunk_iter():
        if old is not None:
            for r in kept_rows:
                yield old.store.get(r)
        yield from flat_new

    manifest = {
        "format": FORMAT,
        "embedding": {"model": encoder.name, "config_model": cfg.embed.model, "dim": int(encoder.dim),
                      "normalized": True},
        "faiss": {"index": "IndexFlatIP", "metric": "inner_product"},  # + `coarse`: set by write_version
        "bm25": {"analyzer": analyzer, "k1": bm25.k1, "b": bm25.b, "library": "bm25s"},
        "chunker": chunker,
        "n_chunks": int(len(all_vecs)),
        "n_documents": len(entries),
        "corpus_hash": corpus_hash(entries, chunker, encoder.name),
        "documents": entries,
        "versions": package_versions(),
        "built_at": now,
        "build_seconds": None,
    }
    stats.n_chunks = int(len(all_vecs))
    path = (writer or write_version)(kb_dir, list(chunk_iter()), all_vecs, bm25, manifest, cfg, t0, drop=drop)
    return path, stats


def write_version(kb_dir: Path, chunks: Sequence[Chunk], vectors: np.ndarray, bm25: BM25Index,
                  manifest: dict, cfg, t0: float | None = None, drop: Iterable[str] = ()) -> Path:
    """Write a complete version into a temp folder, then publish it atomically (see module doc).
    `drop`: versions found damaged; they are never kept as the fallback of the new one."""
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


def check_model(manifest: Mapping[str, Any], kb: str, config_model: str | None = None,
                encoder_name: str | None = None, encoder_dim: int | None = None) -> None:
    """Raise ModelMismatch if the index was built with another embedding model."""
    emb = manifest.get("embedding", {})
    built, built_cfg, dim = emb.get("model"), emb.get("config_model"), emb.get("dim")
    wrong = None
    if encoder_name is not None and encoder_name != built:
        wrong = encoder_name
    elif encoder_dim is not None and dim is not None and encoder_dim != dim:
        wrong = f"{encoder_name} ({encoder_dim} dims)"
    elif encoder_name is None and config_model is not None and config_model not in (built, built_cfg):
        wrong = config_model
    if wrong is not None:
        raise ModelMismatch(
            f"knowledge base '{kb}' was indexed with embedding model '{built_cfg or built}' ({dim} dims) "
            f"but '{wrong}' is configured; its vectors are not comparable. Either set embed.model = "
            f"'{built_cfg or built}' (RAG_EMBED_MODEL) or re-index with `rag index --kb {kb} --rebuild`."
        )
