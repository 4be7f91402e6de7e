"""`KnowledgeBase`: the facade the answer stage, the web chat, the REST API and the eval harness use.

    kb = KnowledgeBase.open("seeds", cfg)              # IndexMissing if never indexed
    kb = KnowledgeBase.open("mydocs", cfg, create=True)
    report = kb.add_paths(["docs/"])                    # incremental: new/changed files only
    hits = kb.search("创先争优活动的主题是什么", k=5)      # hybrid by default

    text = kb.document_text("000_dc80a8aaf43bbf11")   # the original text chunk spans point into

Where a KB lives, which KBs there are and the write lock are rag.index.kb_folder's.

Reads are thread-safe and lock-free: an opened index version is immutable and a write swaps in
a new one (the web chat serves several users while someone uploads a file). Writes take an
fcntl lock on the KB folder, so two indexers (two processes, or two threads) never collide; a
reader in another process picks up a new version on its next search (`refresh`, checked at most
once a second).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from rag.config import Config, load_config
from rag.errors import IndexDamaged, IndexMissing, RagError
from rag.index.build import (
    BuildStats,
    IndexVersion,
    build_version,
    check_model,
    current_version_path,
    open_latest,
)
from rag.index.bm25 import warm_jieba
from rag.index.kb_folder import list_kbs, resolve_kb_dir, write_lock  # noqa: F401  (list_kbs: re-exported)
from rag.index.verify import candidates, fallback_names, file_problems, publish, read_history, version_problems
from rag.types import Chunk, Hit

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DocInfo:
    doc_id: str
    title: str
    source: str
    n_chunks: int
    date: str
    added: str


@dataclass
class IndexReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failures: list[Any] = field(default_factory=list)  # rag.ingest.load.IngestFailure(path, error)
    n_chunks: int = 0  # chunks in the index after the operation
    embedded: int = 0  # chunks that went through the encoder
    reused_vectors: int = 0  # chunks whose vectors were reused (old index / vector cache)
    seconds: float = 0.0
    version: str = ""  # the index version folder now current
    repaired: list[str] = field(default_factory=list)  # damage found (and built around), one line each

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "added": self.added, "updated": self.updated, "removed": self.removed, "unchanged": self.unchanged,
            "failures": [{"path": str(getattr(f, "path", f)), "error": str(getattr(f, "error", ""))} for f in self.failures],
            "n_chunks": self.n_chunks, "embedded": self.embedded, "reused_vectors": self.reused_vectors,
            "seconds": round(self.seconds, 3), "version": self.version, "repaired": self.repaired,
        }


class KnowledgeBase:
    """One named knowledge base (see the module docstring)."""

    def __init__(self, name: str, path: Path, cfg: Config, encoder=None):
        self.name = name
        self.path = Path(path)
        self.cfg = cfg
        self._encoder = encoder
        self._enc_lock = threading.Lock()
        self._write_tlock = threading.Lock()
        self._version: IndexVersion | None = None
        self._searcher = None
        self._checked_at = 0.0
        self._bad_version: Path | None = None  # a published version found damaged: not retried
        self.damage: list[IndexDamaged] = []  # found when opened (see `open`)
        self.chunk_fn = None  # None: rag.chunk.sections.chunk_document; tests may plug a simpler chunker

    # ------------------------------------------------------------ opening
    @classmethod
    def open(cls, name_or_dir: str | os.PathLike | None = None, cfg: Config | None = None, encoder=None,
             create: bool = False, check_model_: bool = True, load: bool = True) -> "KnowledgeBase":
        """Open the newest undamaged version. A damaged current version is reported (a warning
        naming the file, and `kb.damage`) and the previous complete one is used; if none opens,
        the IndexDamaged is raised — unless `create`, which gives an empty KB whose next build
        starts afresh. `load=False` reads nothing of the folder (`rag index --rebuild`)."""
        cfg = cfg or load_config()
        if cls is KnowledgeBase and cfg.index.backend == "milvus":
            from rag.index.milvus.kb import MilvusKnowledgeBase  # docs/milvus.md

            return MilvusKnowledgeBase.open(name_or_dir, cfg, encoder, create, check_model_, load)
        name, path = resolve_kb_dir(name_or_dir or cfg.paths.kb, cfg)
        kb = cls(name, path, cfg, encoder)
        v, kb.damage = open_latest(path) if load else (None, [])
        if v is None and not create:
            if kb.damage:  # the damage of a version says more than that of CURRENT
                raise next((e for e in kb.damage if e.version), kb.damage[0])
            hint = f"run `rag index PATH --kb {name}`"
            raise IndexMissing(f"knowledge base '{name}' has no index at {path}; {hint}")
        kb._warn_damage(kb.damage, v)  # only when not raising: the error itself is the one line
        if v is None:
            path.mkdir(parents=True, exist_ok=True)
            return kb
        kb._install(v)
        if check_model_:
            kb._check_model()
        return kb

    def _warn_damage(self, damage: Sequence[IndexDamaged], using: IndexVersion | None) -> None:
        then = f"using the previous version {using.path.name}" if using is not None else "no undamaged version left"
        for e in damage:
            log.warning("knowledge base '%s': %s (%s)", self.name, e, then)

    def _load(self, vpath: Path, verify: str = "open") -> None:
        self._install(IndexVersion(vpath, verify=verify))

    def _install(self, v: IndexVersion) -> None:
        from rag.retrieve.searcher import HybridSearcher

        s = HybridSearcher(v, self._get_encoder, self.cfg.retrieve)
        warm_jieba()
        self._version, self._searcher = v, s  # readers pick up the new pair on their next call
        self._checked_at = time.monotonic()

    def _check_model(self) -> None:
        if self._version is None:
            return
        enc = self._encoder
        check_model(self._version.manifest, self.name, config_model=self.cfg.embed.model,
                    encoder_name=getattr(enc, "name", None), encoder_dim=getattr(enc, "dim", None))

    def refresh(self) -> bool:
        """Reload if another process published a new version. Returns True if it did."""
        vpath = current_version_path(self.path)
        self._checked_at = time.monotonic()
        if vpath is None or vpath == self._bad_version or (self._version is not None and vpath == self._version.path):
            return False
        try:
            self._load(vpath)
        except IndexDamaged as e:  # keep serving what we have; say so once, not every second
            self._bad_version = vpath
            log.warning("knowledge base '%s': %s (still serving %s)", self.name, e,
                        self._version.path.name if self._version else "nothing")
            return False
        self._check_model()
        return True

    def _maybe_refresh(self) -> None:
        if time.monotonic() - self._checked_at > 1.0:
            try:
                self.refresh()
            except RagError:
                raise
            except OSError as e:  # a concurrent cleanup: keep serving the version we have
                log.debug("refresh skipped: %s", e)

    # ------------------------------------------------------------ encoder
    def _get_encoder(self):
        if self._encoder is None:
            with self._enc_lock:
                if self._encoder is None:
                    from embeddings import load_encoder

                    enc = load_encoder(self.cfg.embed, models_dir=self.cfg.paths.models_dir)
                    if self._version is not None:
                        check_model(self._version.manifest, self.name, encoder_name=enc.name, encoder_dim=enc.dim)
                    self._encoder = enc
        return self._encoder

    @property
    def encoder(self):
        return self._get_encoder()

    # ------------------------------------------------------------ reading
    @property
    def version(self) -> IndexVersion | None:
        return self._version

    @property
    def manifest(self) -> dict[str, Any]:
        return dict(self._version.manifest) if self._version else {}

    @property
    def chunks(self) -> list[Chunk]:
        return list(self._version.store.all()) if self._version else []

    def __len__(self) -> int:
        return self._version.n_chunks if self._version else 0

    def get_chunk(self, chunk_id: str) -> Chunk | None:
        """The chunk with this id, or None if the index has no such chunk."""
        v = self._version
        if v is None:
            return None
        row = v.row_of.get(chunk_id)
        return None if row is None else v.store.get(row)

    def neighbours(self, chunk_id: str, before: int = 1, after: int = 1) -> list[Chunk]:
        """Chunks n-before … n+after of the same document, in order, the chunk itself included
        (for merging context around a hit). Unknown id → []."""
        v = self._version
        if v is None or chunk_id not in v.row_of:
            return []
        row = v.row_of[chunk_id]
        doc = v.store.get(row).doc_id
        lo, hi = v.doc_rows[doc]
        return [v.store.get(r) for r in range(max(lo, row - before), min(hi, row + after + 1))]

    def document_text(self, doc_id: str) -> str | None:
        """The document's original text as it was indexed (the text chunk spans point into), or None:
        no such document, or a version built before texts were stored (the next `rag index` of its
        files stores them). IndexDamaged if the stored text is damaged."""
        v = self._version
        return None if v is None else v.document_text(doc_id)

    def documents(self) -> list[DocInfo]:
        if self._version is None:
            return []
        return [DocInfo(d["doc_id"], d.get("title", ""), d.get("source", ""), int(d["n_chunks"]),
                        d.get("date", ""), d.get("added", "")) for d in self._version.manifest["documents"]]

    def search(self, query: str, k: int | None = None, mode: str | None = None) -> list[Hit]:
        self._maybe_refresh()
        s = self._searcher
        if s is None:
            return []
        return s.search(query, k=k, mode=mode)

    def as_retriever(self, k: int | None = None, mode: str | None = None):
        from rag.retrieve.langchain import KBRetriever

        return KBRetriever(kb=self, k=k, mode=mode)

    def vectorstore(self):
        from rag.retrieve.langchain import ChunkVectorStore

        if self._version is None:
            raise IndexMissing(f"knowledge base '{self.name}' is empty; run `rag index PATH --kb {self.name}`")
        return ChunkVectorStore.from_version(self._version, self._get_encoder())

    # ------------------------------------------------------------ writing
    def _write_lock(self, timeout: float = 600.0):
        """Hold the KB's fcntl lock and this object's thread lock (rag.index.kb_folder.write_lock). The
        version to build on is chosen after it is taken (`_base_for_update`): another process may have published."""
        return write_lock(self.path, self.name, self._write_tlock, timeout)

    def _base_for_update(self) -> tuple[IndexVersion | None, list[IndexDamaged]]:
        """The version an incremental build starts from, fully verified (checksums of every file:
        the build copies its vectors, token ids and chunks into the new version), and the damage
        found. Damaged → the previous undamaged version, else None (build from the documents)."""
        v, damage = self._version, list(self.damage)
        latest = current_version_path(self.path)
        if v is None or (latest is not None and latest != v.path):
            # another process published while we waited, or nothing usable was open
            v, more = open_latest(self.path, verify="full")
            damage += more
        else:
            problems = file_problems(v.path, v.manifest, full=True)
            if problems:
                damage.append(problems[0].error(v.path))
                v, more = open_latest(self.path, verify="full", skip={v.path.name})
                damage += more
        if v is not None and v is not self._version:
            self._install(v)
        seen: set[str] = set()
        damage = [e for e in damage if not (str(e) in seen or seen.add(str(e)))]
        known = {str(e) for e in self.damage}  # already warned about when opened
        self._warn_damage([e for e in damage if str(e) not in known], v)
        return v, damage

    def _apply(self, docs, failures, *, keep_only=None, remove=(), rebuild=False, progress=False,
               drop=()) -> IndexReport:
        t0 = time.time()
        with self._write_lock():
            enc = self._get_encoder()
            # a rebuild reads nothing of the old versions: whatever their state, it cannot fail on them
            old, damage = (None, []) if rebuild else self._base_for_update()
            if old is not None:
                check_model(old.manifest, self.name, encoder_name=enc.name, encoder_dim=enc.dim)
            if keep_only is not None and old is not None:
                keep_only = set(keep_only) | self._failed_doc_ids(failures)
            path, st = build_version(self.path, old, docs, self.cfg, enc, remove=remove, keep_only=keep_only,
                                     progress=progress, chunk_fn=self.chunk_fn,
                                     analyzer=None if old else self.cfg.retrieve.bm25_analyzer,
                                     drop=sorted({e.version for e in damage if e.version} | set(drop)))
            if path is not None:
                self._load(path)
                self.damage, self._bad_version = [], None
        rep = self._report(st, failures, t0)
        rep.repaired = [str(getattr(e, "problem", e)) for e in damage]  # "version/file: reason"
        return rep

    def _failed_doc_ids(self, failures) -> set[str]:
        """Docs whose file failed to load this time are kept as they were (a failure loses nothing)."""
        if not failures or self._version is None:
            return set()
        stems = {Path(str(getattr(f, "path", f))).with_suffix("").as_posix() for f in failures}
        out = set()
        for d in self._version.manifest["documents"]:
            src = Path(d.get("source", "")).with_suffix("").as_posix()
            if any(s == src or s.endswith("/" + d["doc_id"]) or src.endswith(s) for s in stems if s):
                out.add(d["doc_id"])
        return out

    def _report(self, st: BuildStats, failures, t0: float) -> IndexReport:
        return IndexReport(added=st.added, updated=st.updated, removed=st.removed, unchanged=st.unchanged,
                           failures=list(failures), n_chunks=st.n_chunks, embedded=st.embedded,
                           reused_vectors=st.reused_vectors, seconds=time.time() - t0,
                           version=self._version.path.name if self._version else "")

    @staticmethod
    def _load_paths(paths: Sequence[str | os.PathLike], progress: bool = False):
        from rag.ingest.load import load_paths
        from rag.ingest.ocr.document import ocr_progress

        missing = [str(p) for p in paths if not Path(p).exists()]
        if missing:
            raise RagError(f"no such file or folder: {', '.join(missing)}")
        with ocr_progress(progress):  # scanned pages show a bar per page
            return load_paths([Path(p) for p in paths])

    def add_paths(self, paths: Sequence[str | os.PathLike], progress: bool = True) -> IndexReport:
        """Index new and changed files under `paths`; unchanged files are not re-chunked or
        re-embedded; nothing is removed."""
        docs, failures = self._load_paths(paths, progress)
        return self._apply(docs, failures, progress=progress)

    def add_documents(self, docs, progress: bool = False) -> IndexReport:
        """Index already-ingested `Document`s (e.g. an upload the UI has parsed)."""
        return self._apply(list(docs), [], progress=progress)

    def sync(self, paths: Sequence[str | os.PathLike], progress: bool = True) -> IndexReport:
        """Make the KB mirror `paths`: add new/changed files and remove documents whose files
        are gone (a file that fails to load this time keeps its old version)."""
        docs, failures = self._load_paths(paths, progress)
        return self._apply(docs, failures, keep_only={d.doc_id for d in docs}, progress=progress)

    def rebuild(self, paths: Sequence[str | os.PathLike], progress: bool = True) -> IndexReport:
        """Index `paths` from scratch (new embedding model or chunker); the old version stays
        current until the new one is complete."""
        docs, failures = self._load_paths(paths, progress)
        return self._apply(docs, failures, rebuild=True, progress=progress)

    def repair(self) -> IndexReport:
        """Make the newest undamaged version (the one opening falls back to) current again, under
        the write lock, and remove every damaged version: a damaged version means a fresh copy is
        built (like any update), a damaged CURRENT only is rewritten. Raises IndexDamaged when no
        undamaged version is left: then only `rebuild(paths)` can help."""
        t0 = time.time()
        drop = [p.name for p in candidates(self.path) if version_problems(p, full=True)]
        v, damage = open_latest(self.path, verify="full")
        if v is None:
            if damage:
                raise next((e for e in damage if e.version), damage[0])
            raise IndexMissing(f"knowledge base '{self.name}' has no index to repair; run `rag index PATH --kb {self.name}`")
        if drop:
            v.close()
            return self._apply([], [], drop=drop)
        if read_history(self.path)[1] is not None:  # only CURRENT is damaged: point it at v again
            with self._write_lock():
                publish(self.path, v.path.name, fallback_names(self.path, v.path.name))
            self._install(v)
        rep = self._report(BuildStats(n_chunks=v.n_chunks), [], t0)
        rep.repaired = [str(getattr(e, "problem", e)) for e in damage]  # "version/file: reason"
        return rep

    def delete_document(self, doc_id: str) -> IndexReport:
        if self._version is None or doc_id not in self._version.doc_rows:
            raise RagError(f"knowledge base '{self.name}' has no document '{doc_id}'")
        return self._apply([], [], remove={doc_id})
