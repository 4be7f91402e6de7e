"""Reading one index version: the chunk store and `IndexVersion` (FAISS + BM25 + manifest), and
finding the version to open in a knowledge-base folder (see rag.index.build for the layout).

Opening verifies before it parses (rag.index.verify: sizes always, checksums of files up to
HASH_ON_OPEN_MAX), then cross-checks counts and lengths, and turns any parse failure into
IndexDamaged naming the file. `open_latest` falls back to an older complete version when the
current one is damaged; it never writes (repairing is a build's job, under the write lock).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from pathlib import Path
from collections.abc import Mapping
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from rag.index.bm25 import BM25Index
from rag.index.doc_texts import TextFile
from rag.errors import IndexDamaged, IndexMissing, RagError
from rag.index.verify import (
    COMPLETE,
    CURRENT,
    Problem,
    candidates,
    check_files,
    read_history,
    read_manifest,
    version_problems,
)
from rag.types import Chunk

# Format 2 (this code writes it): the document table lives in documents.json, parsed on first use,
# and the chunk ids in chunks.ids.json, so opening parses neither 100k document entries nor a
# 25 MB manifest. Format 1 (the document table inside manifest.json) is still read. Sealed
# versions (a `files` table), the int8 vector copy (rag.index.vectors) and the documents' texts
# (rag.index.doc_texts) are optional parts of both.
FORMAT = 2
READABLE = (1, 2)
DOCUMENTS = "documents.json"
CHUNK_IDS = "chunks.ids.json"


@contextlib.contextmanager
def _reading(path: Path, what: str) -> Iterator[None]:
    """Turn any failure to parse a version's file into IndexDamaged naming the file (a version
    that passed the size checks can still be a legacy one, or be altered in a large file)."""
    try:
        yield
    except RagError:
        raise
    except Exception as e:
        raise Problem(path.name, what, f"cannot be read ({type(e).__name__}: {str(e)[:200]})").error(path) from e


# ------------------------------------------------------------------ chunk store


class ChunkStore:
    """chunks.jsonl with a byte-offset table: `get(row)` reads one line (os.pread, thread-safe),
    so opening a 100k-chunk index does not parse 100k JSON objects; `all()` parses once, cached."""

    def __init__(self, path: Path):
        self.path = path
        self.offsets = np.load(path.with_name("chunks.offsets.npy"))
        self._fd = os.open(path, os.O_RDONLY)
        self._all: list[Chunk] | None = None
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def get(self, row: int) -> Chunk:
        if self._all is not None:
            return self._all[row]
        if not 0 <= row < len(self):
            raise IndexError(row)
        a, b = int(self.offsets[row]), int(self.offsets[row + 1])
        try:
            return Chunk.from_dict(json.loads(os.pread(self._fd, b - a, a).decode("utf-8")))
        except (ValueError, KeyError, TypeError) as e:  # the file changed under us after it was verified
            raise IndexDamaged(f"index {self.path.parent.parent.name}/{self.path.parent.name} is damaged: "
                               f"chunks.jsonl row {row} cannot be read ({e}); rebuild it with "
                               "`rag index PATH --rebuild`", file="chunks.jsonl", version=self.path.parent.name) from e

    def all(self) -> list[Chunk]:
        if self._all is None:
            with self._lock:
                if self._all is None:
                    with open(self.path, encoding="utf-8") as f:
                        self._all = [Chunk.from_dict(json.loads(line)) for line in f]
        return self._all

    def close(self) -> None:
        """Idempotent: a second close (e.g. __del__ after close()) must not close a descriptor
        number the process has since reused for another file."""
        fd, self._fd = getattr(self, "_fd", -1), -1
        if fd >= 0:
            try:
                os.close(fd)
            except OSError:
                pass

    def __del__(self):  # pragma: no cover - best effort
        self.close()

    @staticmethod
    def write(path: Path, chunks: Iterable[Chunk]) -> int:
        offsets = [0]
        with open(path, "wb") as f:
            for c in chunks:
                line = (json.dumps(c.to_dict(), ensure_ascii=False) + "\n").encode("utf-8")
                f.write(line)
                offsets.append(offsets[-1] + len(line))
            f.flush()
            os.fsync(f.fileno())
        np.save(path.with_name("chunks.offsets.npy"), np.asarray(offsets, dtype=np.int64))
        return len(offsets) - 1


# ------------------------------------------------------------------ one opened version


class _DocumentTable:
    """documents.json of one version, parsed once, on first use (thread-safe); format 1: the
    manifest's own table."""

    def __init__(self, path: Path, meta: dict[str, Any]):
        self.path, self.meta = path, meta
        self._docs: list[dict[str, Any]] | None = meta.get("documents")
        self._lock = threading.Lock()

    def get(self) -> list[dict[str, Any]]:
        if self._docs is None:
            with self._lock:
                if self._docs is None:
                    with _reading(self.path, DOCUMENTS):
                        docs = json.loads((self.path / DOCUMENTS).read_bytes())
                        n = self.meta.get("n_chunks")
                        if not isinstance(docs, list) or sum(d["n_chunks"] for d in docs) != n:
                            raise ValueError(f"the documents do not cover the {n} rows")
                    self._docs = docs
        return self._docs


class Manifest(Mapping):
    """A version's manifest as every reader knows it, `documents` included; in format 2 the
    document table is read from documents.json only when `documents` is asked for (so checking
    the model of a KB on open never parses it). Read-only.

    >>> m = Manifest({"format": 2, "n_chunks": 1}, lambda: [{"doc_id": "a"}])
    >>> m.get("n_chunks"), list(m), m["documents"][0]["doc_id"]
    (1, ['format', 'n_chunks', 'documents'], 'a')
    """

    def __init__(self, meta: dict[str, Any], documents: Callable[[], list[dict[str, Any]]]):
        self._meta, self._documents = meta, documents

    def __getitem__(self, key: str) -> Any:
        if key == "documents" and key not in self._meta:
            return self._documents()
        return self._meta[key]

    def __iter__(self) -> Iterator[str]:
        yield from self._meta
        if "documents" not in self._meta:
            yield "documents"

    def __len__(self) -> int:
        return len(self._meta) + ("documents" not in self._meta)



class IndexVersion:
    """One complete, immutable index version, opened for reading (thread-safe).

    Opening verifies the version (rag.index.verify): the manifest against COMPLETE, every file's
    size, and the checksums of files up to HASH_ON_OPEN_MAX (`verify="full"`: of every file).
    Any damaged, missing or unparsable file raises IndexDamaged naming it — never a raw
    traceback from faiss, numpy or json, and never a hit that lands in a lost part of a file."""

    def __init__(self, path: Path, verify: str = "open"):
        path = Path(path)
        if not (path / COMPLETE).exists():  # a missing manifest is damage: read_manifest names it
            raise IndexMissing(f"{path} is not a complete index (interrupted build?); run `rag index` again")
        import faiss

        from rag.index.vectors import DenseStore

        # One query at a time is memory-bound: OpenMP's thread wake-ups cost more than they save,
        # and on a busy machine spinning threads made a 10k flat search take ~60 ms instead of <2.
        faiss.omp_set_num_threads(1)
        self.path = path
        self.meta: dict[str, Any] = read_manifest(path)  # manifest.json as stored (format 2: small)
        self._table = _DocumentTable(path, self.meta)
        self.manifest = Manifest(self.meta, self._table.get)  # (no reference back to self: no cycle)
        self.format = self.meta.get("format")
        if self.format not in READABLE:
            raise IndexMissing(f"{path} uses index format {self.format}, this version of rag-zh reads formats "
                               f"{', '.join(map(str, READABLE))}; rebuild it with `rag index PATH --kb "
                               f"{path.parent.name} --rebuild` (or use the rag-zh version that wrote it)")
        self._documents: list[dict[str, Any]] | None = self.meta.get("documents")  # format 1
        self._doc_rows: dict[str, tuple[int, int]] | None = None
        self._entry_of: dict[str, int] = {}  # doc_id → its index in `documents` (with _doc_rows)
        self._row_of: dict[str, int] | None = None
        self.texts = TextFile(path)
        check_files(path, self.meta, full=verify == "full")
        with _reading(path, "vectors.faiss / vectors.i8.*"):
            self.dense = DenseStore(path, self.meta.get("faiss"))
        with _reading(path, "bm25 files (bm25_*.json/npy, bm25s/)"):
            self.bm25 = BM25Index.load(path)
        with _reading(path, "chunks.jsonl / chunks.offsets.npy"):
            self.store = ChunkStore(path / "chunks.jsonl")
        try:
            self._check_structure()
            with _reading(path, CHUNK_IDS if self.format >= 2 else "manifest.json"):
                self._map_rows()
        except BaseException:
            self.store.close()  # a refused version keeps no file descriptor open
            raise

    def _check_structure(self) -> None:
        """Counts and lengths that must agree: catches damage in a legacy version (no checksums)
        and in a large file whose checksum is not computed on open, e.g. a cut chunks.jsonl."""
        path, n, want = self.path, len(self.store), self.meta.get("n_chunks")
        counts = [*self.dense.counts(), ("chunks.offsets.npy", n), ("bm25_offsets.npy", self.bm25.n_docs)]
        for name, got in counts:
            if got != want:
                raise Problem(path.name, name, f"is inconsistent with the manifest (chunks {n}, vectors "
                                               f"{dict(self.dense.counts())}, bm25 {self.bm25.n_docs}, manifest {want})"
                              ).error(path)
        checks = [("chunks.jsonl", int(self.store.offsets[-1]), (path / "chunks.jsonl").stat().st_size),
                  ("bm25_tokens.npy", int(self.bm25.offsets[-1]), len(self.bm25.flat))]
        for name, expected, actual in checks:
            if expected != actual:
                raise Problem(path.name, name, f"is inconsistent with its offsets table ({actual}, expected "
                                               f"{expected}: truncated or overwritten)").error(path)

    def _map_rows(self) -> None:
        """ids_by_row: the chunk id of every row (what fusion ranks by). Format 2 reads it from
        chunks.ids.json; format 1 from the manifest's document table (parsed at open)."""
        n = len(self.store)
        if self.format >= 2:
            ids = json.loads((self.path / CHUNK_IDS).read_bytes())
            if not isinstance(ids, list) or len(ids) != n or not all(isinstance(c, str) for c in ids[:1]):
                raise ValueError(f"{CHUNK_IDS} lists {len(ids) if isinstance(ids, list) else '?'} ids, the index has {n}")
            self.ids_by_row: list[str] = ids
            return
        self._documents = self.meta["documents"]
        self.ids_by_row = [""] * n
        self._rows_of_documents()
        if len(self.ids_by_row) != n:
            raise ValueError(f"documents cover {len(self.ids_by_row)} rows, the index has {n}")

    def _rows_of_documents(self) -> None:
        doc_rows: dict[str, tuple[int, int]] = {}
        for i, d in enumerate(self.documents):
            first = d["first_row"]
            doc_rows[d["doc_id"]] = (first, first + d["n_chunks"])
            self._entry_of[d["doc_id"]] = i
            if self.format < 2:
                self.ids_by_row[first : first + d["n_chunks"]] = d["chunk_ids"]
        self._doc_rows = doc_rows

    @property
    def documents(self) -> list[dict[str, Any]]:
        """The document table (doc_id, source, sha256, first_row, n_chunks, chunk_ids, …), in row
        order; parsed on first use (search never needs it)."""
        if self._documents is None:
            self._documents = self._table.get()
        return self._documents

    @property
    def doc_rows(self) -> dict[str, tuple[int, int]]:
        """doc_id → (first row, end row)."""
        if self._doc_rows is None:
            with _reading(self.path, DOCUMENTS if self.format >= 2 else "manifest.json"):
                self._rows_of_documents()
        return self._doc_rows  # type: ignore[return-value]

    @property
    def row_of(self) -> dict[str, int]:
        """chunk id → row (built on first use)."""
        if self._row_of is None:
            self._row_of = {cid: i for i, cid in enumerate(self.ids_by_row)}
        return self._row_of

    @property
    def n_chunks(self) -> int:
        return len(self.store)

    @property
    def dim(self) -> int:
        return self.dense.d

    def vectors(self, rows: Sequence[int]) -> np.ndarray:
        """The exact float32 vectors of `rows`."""
        return self.dense.vectors(rows)

    def text_blobs(self, entries: Sequence[Mapping[str, Any]]) -> list[bytes | None]:
        """The stored texts of these document entries, as blobs (rag.index.doc_texts; for a build)."""
        return self.texts.blobs(entries)

    def document_text(self, doc_id: str) -> str | None:
        """The document's original text; None if this version stores none for it (or has no such document)."""
        self.doc_rows  # noqa: B018 - maps the documents on first use (_entry_of with them)
        i = self._entry_of.get(doc_id)
        return None if i is None else self.texts.text(self.documents[i])

    def dense_search(self, qvec: np.ndarray, k: int) -> list[tuple[int, float]]:
        """Top-k by exact inner product (int8 scan + exact rescoring, rag.index.vectors); ties → lower row."""
        if self.n_chunks == 0:
            return []
        return self.dense.search(qvec, k)

    def close(self) -> None:
        self.store.close()


def current_version_path(kb_dir: Path) -> Path | None:
    """The folder CURRENT names, if it is complete; None if there is no usable index (or CURRENT
    is damaged: `open_latest` then finds the newest complete version on disk)."""
    names, problem = read_history(Path(kb_dir))
    if problem or not names:
        return None
    p = Path(kb_dir) / names[0]
    return p if (p / COMPLETE).exists() and (p / "manifest.json").exists() else None


def open_current(kb_dir: Path) -> IndexVersion:
    p = current_version_path(kb_dir)
    if p is None:
        raise IndexMissing(f"no index in {kb_dir}")
    return IndexVersion(p)


def open_latest(kb_dir: Path, verify: str = "open", skip: Iterable[str] = ()) -> tuple[IndexVersion | None,
                                                                                       list[IndexDamaged]]:
    """The newest version that opens undamaged — CURRENT's, else the previous complete one, else
    any complete one on disk — and the damage met on the way (the caller warns, naming the
    files). (None, damage) when no version opens; (None, []) when there is none at all."""
    kb_dir = Path(kb_dir)
    damage: list[IndexDamaged] = []
    names, problem = read_history(kb_dir)
    if problem and (names or candidates(kb_dir)):
        damage.append(IndexDamaged(f"index {kb_dir.name}: {CURRENT} {problem}; if no older version is left, rebuild "
                                   f"it with `rag index PATH --kb {kb_dir.name} --rebuild`", file=CURRENT))
    skipped = set(skip)
    for p in candidates(kb_dir):
        if p.name in skipped:
            continue
        try:
            return IndexVersion(p, verify=verify), damage
        except IndexDamaged as e:
            damage.append(e)
    return None, damage


def check_kb(kb_dir: Path) -> tuple[list[str], list[str]]:
    """Verify every version folder of a KB completely (checksums of every file, then a full open).
    Returns (lines about sound versions, lines about problems: one per problem). For `rag kb check`;
    read-only, like opening."""
    kb_dir = Path(kb_dir)
    ok: list[str] = []
    bad: list[str] = []
    names, problem = read_history(kb_dir)
    if problem:
        bad.append(f"{kb_dir.name}/{CURRENT}: {problem}")
    try:
        folders = sorted((p for p in kb_dir.iterdir() if p.is_dir() and p.name.startswith("v")),
                         key=lambda p: (p.name not in names, names.index(p.name) if p.name in names else 0, p.name))
    except OSError as e:
        return ok, bad + [f"{kb_dir.name}: cannot be listed ({e.strerror or e})"]
    for p in folders:
        role = "current" if names[:1] == [p.name] else "previous" if p.name in names else "not in CURRENT"
        problems = version_problems(p, full=True)
        if not problems:
            try:
                v = IndexVersion(p, verify="full")
                n_docs = len(v.documents)  # a full check parses the document table too
            except IndexMissing as e:  # IndexDamaged included: a parse failure the checksums missed
                bad.append(f"{kb_dir.name}/{p.name} ({role}): {e}")
                continue
            sealed = isinstance(v.meta.get("files"), dict)
            what = f"{len(v.meta['files'])} files verified" if sealed else "no checksums recorded (built " \
                   "before they existed; structure checked; the next build adds them)"
            ok.append(f"{kb_dir.name}/{p.name} ({role}): ok, {v.n_chunks} chunks, "
                      f"{n_docs} documents, {what}")
            v.close()
        for pr in problems:
            bad.append(f"{kb_dir.name}/{pr} ({role})")
    return ok, bad
