"""A knowledge base's index in Milvus: reading one version (`MilvusVersion`) and publishing a new
one (`write_milvus_version`), the counterparts of rag.index.version / rag.index.build.write_version.

Versions (rag.index.milvus.schema): a build writes a NEW collection `<base>_v<stamp>` (chunks, vectors,
BM25 token text), its texts collection (each document's original text: rag.index.doc_texts) and its
manifest collection, flushes and loads them, and only then points the
alias `<base>` at it (`alter_alias`: one metadata operation on the server). Readers always search
through the alias, so they see the old version or the new one, never a half-written one. A build
that fails or is interrupted drops what it wrote (best effort; a crash leaves an unaliased
collection that the next successful build removes). The previous version is kept (a reader may
be in the middle of a search on it); older ones are dropped.

`MilvusVersion` duck-types the parts of `IndexVersion` that `KnowledgeBase` and
`rag.index.build.build_version` use (manifest, row maps, `store.get/all`, `vectors`, `bm25.subset`,
`text_blobs`, `document_text`), so incremental updates, the manifest and model checks are the local backend's own code. Rows
are fetched from Milvus on demand (a small cache) or all at once by `preload` (builds).

Deliberate compromise: every update copies the kept rows into the new collection (as the local
backend rewrites its FAISS file): simple and atomic through the alias; not incremental on disk.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from rag.errors import IndexDamaged, RagError
from rag.index.doc_texts import check_blobs, unpack, without_text
from rag.index.milvus.schema import (
    CHUNK_FIELDS,
    MANIFEST_PART,
    META_SUFFIX,
    SUFFIXES,
    TEXT_SUFFIX,
    chunk_row,
    create_chunk_collection,
    create_meta_collection,
    row_to_chunk,
)

log = logging.getLogger(__name__)

BATCH = 1000  # rows per insert / query (well under gRPC's message limit at 384-1024 dims)
TEXT_BATCH = 200  # text parts per insert / query (each at most MANIFEST_PART characters: ≤ 12 MB)


def current_collection(client, base: str) -> str | None:
    """The collection the alias `base` points at, or None (no version yet)."""
    try:
        if base not in client.list_aliases().get("aliases", []):
            return None
        return client.describe_alias(base)["collection_name"]
    except Exception as e:
        if "not exist" in str(e) or "not found" in str(e).lower():
            return None
        raise RagError(f"cannot read Milvus alias {base}: {e}") from e


def read_manifest(client, name: str) -> dict[str, Any]:
    meta = name + META_SUFFIX
    try:
        client.load_collection(meta)
        rows = client.query(meta, filter="part >= 0", output_fields=["part", "text"], limit=16384)
        m = json.loads("".join(r["text"] for r in sorted(rows, key=lambda r: r["part"])))
    except Exception as e:
        raise IndexDamaged(f"Milvus collection {name}: its manifest ({meta}) cannot be read ({str(e)[:200]}); "
                           "rebuild it with `rag index PATH --rebuild`", file=meta, version=name) from e
    if m.get("milvus", {}).get("collection") != name:
        raise IndexDamaged(f"Milvus collection {name}: its manifest names {m.get('milvus', {}).get('collection')!r}",
                           file=meta, version=name)
    return m


class TokenLists:
    """The BM25 side of a Milvus version as build_version needs it: the analyzer, k1/b and each
    row's tokens (read back from the `tokens` field, so updates never re-tokenise kept chunks)."""

    def __init__(self, lists: Sequence[Sequence[str]] | None, analyzer: str, k1: float, b: float, version=None):
        self._lists, self.analyzer, self.k1, self.b, self._version = lists, analyzer, k1, b, version

    @property
    def lists(self) -> Sequence[Sequence[str]]:
        if self._lists is None:
            self._lists = self._version.preload()["tokens"]
        return self._lists

    @property
    def n_docs(self) -> int:
        return len(self.lists)

    def tokens(self, row: int) -> list[str]:
        return list(self.lists[row])

    def subset(self, rows: Sequence[int], new_token_lists: Sequence[Sequence[str]] = ()) -> "TokenLists":
        lists = self.lists
        return TokenLists([lists[r] for r in rows] + [list(t) for t in new_token_lists], self.analyzer, self.k1, self.b)


class _Store:
    """`store.get(row)` / `store.all()` over a Milvus version (rows cached, LRU)."""

    def __init__(self, version: "MilvusVersion", size: int = 4096):
        self.v, self._cache, self._size, self._lock = version, OrderedDict(), size, threading.Lock()

    def get(self, row: int):
        if self.v._all is not None:
            return self.v._all["chunks"][row]
        with self._lock:
            c = self._cache.get(row)
            if c is not None:
                self._cache.move_to_end(row)
                return c
        got = self.v.fetch([row], CHUNK_FIELDS)
        if not got:
            raise IndexError(row)
        c = row_to_chunk(got[0])
        with self._lock:
            self._cache[row] = c
            while len(self._cache) > self._size:
                self._cache.popitem(last=False)
        return c

    def all(self) -> list:
        return self.v.preload()["chunks"]

    def close(self) -> None:
        pass


class MilvusVersion:
    """One published Milvus version, opened for reading (see the module docstring)."""

    def __init__(self, client, name: str, kb_dir: Path):
        self.client, self.name = client, name
        self.path = Path(kb_dir) / name  # not a folder: its .name identifies the version (rag.apps.service)
        self.manifest = read_manifest(client, name)
        try:
            client.load_collection(name)  # a reopened collection is NotLoad until loaded
        except Exception as e:
            raise IndexDamaged(f"Milvus collection {name} cannot be loaded ({str(e)[:200]})", version=name) from e
        self._all: dict[str, Any] | None = None
        self._lock = threading.Lock()
        self._texts_loaded = False
        self._map_rows()
        bm = self.manifest.get("bm25", {})
        self.bm25 = TokenLists(None, bm.get("analyzer", "jieba+bigram"), bm.get("k1", 1.2), bm.get("b", 0.75), self)
        self.store = _Store(self)

    def _map_rows(self) -> None:
        n = int(self.manifest["n_chunks"])
        self.ids_by_row: list[str] = [""] * n
        self.doc_rows: dict[str, tuple[int, int]] = {}
        self._entry_of: dict[str, dict] = {}
        for d in self.manifest["documents"]:
            first = d["first_row"]
            self.doc_rows[d["doc_id"]] = (first, first + d["n_chunks"])
            self._entry_of[d["doc_id"]] = d
            self.ids_by_row[first : first + d["n_chunks"]] = d["chunk_ids"]
        self.row_of: dict[str, int] = {cid: i for i, cid in enumerate(self.ids_by_row)}

    @property
    def n_chunks(self) -> int:
        return len(self.ids_by_row)

    @property
    def dim(self) -> int:
        return int(self.manifest["embedding"]["dim"])

    def fetch(self, rows: Sequence[int], fields: Iterable[str]) -> list[dict]:
        """Records of `rows`, in the order given (missing rows left out)."""
        out: dict[int, dict] = {}
        rows = [int(r) for r in rows]
        fields = list(dict.fromkeys([*fields, "row"]))
        for i in range(0, len(rows), BATCH):
            part = rows[i : i + BATCH]
            lo, hi = min(part), max(part)
            expr = f"row >= {lo} and row <= {hi}" if hi - lo + 1 == len(set(part)) else f"row in {sorted(set(part))}"
            for e in self.client.query(self.name, filter=expr, output_fields=fields, limit=len(set(part))):
                out[int(e["row"])] = e
        return [out[r] for r in rows if r in out]

    def preload(self) -> dict[str, Any]:
        """Every row's chunk, vector and tokens, read once (for a build, or `store.all()`)."""
        with self._lock:
            if self._all is None:
                got = self.fetch(range(self.n_chunks), [*CHUNK_FIELDS, "tokens", "vec"])
                if len(got) != self.n_chunks:
                    raise IndexDamaged(f"Milvus collection {self.name} has {len(got)} rows, its manifest "
                                       f"{self.n_chunks}; rebuild it with `rag index PATH --rebuild`", version=self.name)
                self._all = {"chunks": [row_to_chunk(e) for e in got],
                             "vecs": np.asarray([e["vec"] for e in got], np.float32).reshape(len(got), self.dim),
                             "tokens": [e["tokens"].split() for e in got]}
        return self._all

    def vectors(self, rows: Sequence[int]) -> np.ndarray:
        if len(rows) == 0:
            return np.zeros((0, self.dim), np.float32)
        if self._all is not None:
            return self._all["vecs"][np.asarray(rows, dtype=np.int64)]
        got = self.fetch(rows, ["vec"])
        return np.asarray([e["vec"] for e in got], np.float32).reshape(len(got), self.dim)

    def _damaged(self, why: str) -> IndexDamaged:
        return IndexDamaged(f"Milvus collection {self.name}{TEXT_SUFFIX}: {why}; rebuild it with `rag index PATH "
                            "--rebuild`", file=self.name + TEXT_SUFFIX, version=self.name)

    def _text_parts(self, ids: Sequence[int]) -> dict[int, str]:
        """The base64 parts with these ids (read in windows of at most TEXT_BATCH ids)."""
        if not self._texts_loaded:
            try:
                self.client.load_collection(self.name + TEXT_SUFFIX)
            except Exception as e:
                raise self._damaged(f"cannot be loaded ({str(e)[:200]})") from e
            self._texts_loaded = True
        ids, out, i = sorted(set(ids)), {}, 0
        while i < len(ids):
            lo = ids[i]
            while i < len(ids) and ids[i] < lo + TEXT_BATCH:
                i += 1
            hi = ids[i - 1]
            for r in self.client.query(self.name + TEXT_SUFFIX, filter=f"part >= {lo} and part <= {hi}",
                                       output_fields=["part", "text"], limit=hi - lo + 1):
                out[int(r["part"])] = r["text"]
        return out

    def text_blobs(self, entries: Sequence[dict]) -> list[bytes | None]:
        """The stored texts of these document entries (rag.index.doc_texts blobs; None: none stored)."""
        spans = [e.get("text") for e in entries]
        parts = self._text_parts([a + j for a, n in filter(None, spans) for j in range(n)]) if any(spans) else {}
        out: list[bytes | None] = []
        for e, span in zip(entries, spans):
            got = [parts.get(span[0] + j) for j in range(span[1])] if span else None
            if got is not None and None in got:
                raise self._damaged(f"misses part of the text of {e.get('doc_id')!r}")
            out.append(None if got is None else base64.b64decode("".join(got)))
        return out

    def document_text(self, doc_id: str) -> str | None:
        """The document's original text; None if this version stores none for it (or has no such document)."""
        e = self._entry_of.get(doc_id)
        blob = None if e is None else self.text_blobs([e])[0]
        try:
            return None if blob is None else unpack(blob)
        except ValueError as err:
            raise self._damaged(f"holds a damaged text for {doc_id!r} ({err})") from None

    def close(self) -> None:
        pass


def _write_texts(client, name: str, documents: Sequence[dict], blobs: Sequence[bytes | None]) -> tuple[list[dict], int]:
    """Store the documents' blobs in the collection `name` as base64 parts; returns the entries,
    each with its `text` = `[first part, number of parts]` (none where no text is known), and the
    number of parts."""
    create_meta_collection(client, name)
    rows: list[dict] = []
    out: list[dict] = []
    for entry, blob in zip(documents, check_blobs(documents, blobs)):
        out.append(without_text(entry))
        if blob is not None:
            b64 = base64.b64encode(blob).decode("ascii")
            parts = [b64[i : i + MANIFEST_PART] for i in range(0, len(b64), MANIFEST_PART)]
            first = len(rows)
            out[-1]["text"] = [first, len(parts)]
            rows += [{"part": first + j, "text": t, "v": [0.0, 0.0]} for j, t in enumerate(parts)]
    for i in range(0, len(rows), TEXT_BATCH):
        client.insert(name, rows[i : i + TEXT_BATCH])
    client.flush(name)
    return out, len(rows)


def _drop(client, name: str) -> None:
    for n in (name, *(name + s for s in SUFFIXES)):
        try:
            if client.has_collection(n):
                client.drop_collection(n)
        except Exception as e:  # best effort: the next build retries
            log.warning("could not drop Milvus collection %s: %s", n, e)


def write_milvus_version(client, base: str, expect: str | None, kb_dir: Path, chunks: Sequence, vectors: np.ndarray,
                         bm25, manifest: dict, cfg, t0: float | None = None, drop: Iterable[str] = (),
                         texts: Sequence[bytes | None] = ()) -> Path:
    """Write a complete version into new collections, then switch the alias `base` to it (see the
    module docstring). `expect`: the collection the alias named when the build started; if
    another writer moved it meanwhile, nothing is published (RagError). Signature as
    rag.index.build.write_version (`texts`: the documents' stored texts, in manifest order), so
    build_version can call either. Returns the version's pseudo path."""
    n = len(chunks)
    if n != len(vectors) or n != bm25.n_docs:
        raise RagError(f"internal error: {n} chunks, {len(vectors)} vectors, {bm25.n_docs} BM25 rows")
    name = f"{base}_v{time.strftime('%Y%m%d%H%M%S', time.gmtime())}_{time.time_ns() % 10**9:09d}"
    dim = int(vectors.shape[1]) if getattr(vectors, "ndim", 1) == 2 else int(manifest["embedding"]["dim"])
    try:
        tok = create_chunk_collection(client, name, dim, bm25.k1, bm25.b)
        # one insert stream and one flush: Milvus Lite keeps BM25 statistics per segment, so many
        # small flushes would make the IDF drift from the corpus-wide one (docs/milvus.md)
        for i in range(0, n, BATCH):
            client.insert(name, [chunk_row(chunks[j], j, bm25.tokens(j), vectors[j]) for j in range(i, min(n, i + BATCH))])
        client.flush(name)
        manifest = dict(manifest)
        manifest["documents"], n_parts = _write_texts(client, name + TEXT_SUFFIX, manifest.get("documents", []), texts)
        manifest.pop("faiss", None)
        manifest["milvus"] = {"collection": name, "alias": base, "dense": "FLAT/IP", "tokenizer": tok,
                              "bm25": "BM25 function over our analyzer's tokens", "text_parts": n_parts}
        manifest["bm25"] = {**manifest.get("bm25", {}), "library": "milvus"}
        if t0 is not None:
            manifest["build_seconds"] = round(time.time() - t0, 3)
        text = json.dumps(manifest, ensure_ascii=True)
        create_meta_collection(client, name + META_SUFFIX)
        parts = [text[i : i + MANIFEST_PART] for i in range(0, len(text), MANIFEST_PART)] or [""]
        client.insert(name + META_SUFFIX, [{"part": i, "text": p, "v": [0.0, 0.0]} for i, p in enumerate(parts)])
        client.flush(name + META_SUFFIX)
        client.load_collection(name)
        now = current_collection(client, base)
        if now != expect:
            raise RagError(f"knowledge base collection {base} was updated by another indexer while this one ran "
                           f"({expect} → {now}); run `rag index` again")
        if now is None:
            client.create_alias(name, base)
        else:
            client.alter_alias(name, base)
    except BaseException:
        _drop(client, name)  # also on Ctrl-C: the alias still names the previous version
        raise
    cleanup(client, base, keep={name, expect})
    return Path(kb_dir) / name


def cleanup(client, base: str, keep: set) -> None:
    """Drop this KB's versions other than `keep` (older ones, and leftovers of crashed builds).
    Only names of exactly this base's version pattern: KB "a" never touches KB "a_v2"."""
    import re

    pat = re.compile(re.escape(base) + r"_v\d{14}_\d{9}")
    try:
        names = client.list_collections()
    except Exception as e:
        log.warning("could not list Milvus collections: %s", e)
        return
    for n in names:
        v = next((n[: -len(s)] for s in SUFFIXES if n.endswith(s) and pat.fullmatch(n[: -len(s)])), n)
        if pat.fullmatch(v) and v not in keep:
            _drop(client, v)
