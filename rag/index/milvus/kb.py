"""`MilvusKnowledgeBase`: the `KnowledgeBase` facade over a Milvus index (`index.backend = "milvus"`).

`KnowledgeBase.open` returns one when the config says so; everything above it (ask, chat, serve,
eval) is unchanged. What differs from the local backend:
- the current version is the collection the KB's alias points at (rag.index.milvus.store); a reader
  picks up a new one on its next search (`refresh`, checked at most once a second);
- builds run the local backend's own `rag.index.build.build_version` (which documents are unchanged,
  which chunks need embedding, the manifest, model checks) with `write_milvus_version` as the
  writer, under the same fcntl lock on the KB folder (one machine; across machines the alias is
  compared before it is switched, see docs/milvus.md);
- the first Milvus build of a KB that has a local index copies it (chunks, vectors, BM25 tokens,
  documents' texts, manifest) instead of re-embedding: `rag index --backend milvus` migrates.
"""

from __future__ import annotations

import functools
import logging
import time
from pathlib import Path

from rag.errors import IndexDamaged, IndexMissing, RagError
from rag.index.build import BuildStats, build_version, check_model
from rag.index.bm25 import warm_jieba
from rag.index.kb import IndexReport, KnowledgeBase, resolve_kb_dir

log = logging.getLogger(__name__)


class MilvusKnowledgeBase(KnowledgeBase):
    """A knowledge base whose index lives in Milvus (see the module docstring)."""

    def __init__(self, name: str, path: Path, cfg, encoder=None):
        from rag.index.milvus.schema import collection_base, milvus_uri

        super().__init__(name, path, cfg, encoder)
        self.uri = milvus_uri(cfg, self.path)
        self.base = collection_base(name, cfg.index.milvus_collection)
        self._client = None

    @property
    def client(self):
        if self._client is None:
            from rag.index.milvus.schema import connect

            self._client = connect(self.uri, self.cfg.index.milvus_token)
        return self._client

    # ------------------------------------------------------------ opening
    @classmethod
    def open(cls, name_or_dir=None, cfg=None, encoder=None, create: bool = False, check_model_: bool = True,
             load: bool = True) -> "MilvusKnowledgeBase":
        from rag.config import load_config
        from rag.index.milvus.schema import is_lite_path

        cfg = cfg or load_config()
        name, path = resolve_kb_dir(name_or_dir or cfg.paths.kb, cfg)
        kb = cls(name, path, cfg, encoder)
        if not create and is_lite_path(kb.uri) and not Path(kb.uri).exists():
            raise IndexMissing(kb._missing())  # never create a Lite folder just to find it empty
        if create:
            path.mkdir(parents=True, exist_ok=True)
        v = kb._open_current() if load else None
        if v is None and not create:
            raise IndexMissing(kb._missing())
        if v is not None:
            kb._install(v)
            if check_model_:
                kb._check_model()
        return kb

    def _missing(self) -> str:
        from rag.index.build import current_version_path

        hint = f"run `rag index PATH --kb {self.name} --backend milvus`"
        if current_version_path(self.path) is not None:
            hint += " (it copies the local index, no re-embedding)"
        return f"knowledge base '{self.name}' has no Milvus index ({self.uri}, collection {self.base}); {hint}"

    def _open_current(self):
        from rag.index.milvus.store import MilvusVersion, current_collection

        name = current_collection(self.client, self.base)
        return None if name is None else MilvusVersion(self.client, name, self.path)

    def _install(self, v) -> None:
        from rag.retrieve.milvus import MilvusSearcher

        s = MilvusSearcher(v, self._get_encoder, self.cfg.retrieve)
        warm_jieba()
        self._version, self._searcher = v, s
        self._checked_at = time.monotonic()

    def refresh(self) -> bool:
        """Reload if another process switched the alias. Returns True if it did."""
        from rag.index.milvus.store import MilvusVersion, current_collection

        self._checked_at = time.monotonic()
        name = current_collection(self.client, self.base)
        if name is None or (self._version is not None and name == self._version.name) or name == self._bad_version:
            return False
        try:
            self._install(MilvusVersion(self.client, name, self.path))
        except IndexDamaged as e:
            self._bad_version = name
            log.warning("knowledge base '%s': %s (still serving %s)", self.name, e,
                        self._version.name if self._version else "nothing")
            return False
        self._check_model()
        return True

    def vectorstore(self):
        raise RagError("the LangChain vector store wraps the local FAISS index; with index.backend = milvus "
                       "use kb.as_retriever() (or langchain-milvus on the collection alias)")

    # ------------------------------------------------------------ writing
    def _apply(self, docs, failures, *, keep_only=None, remove=(), rebuild=False, progress=False,
               drop=()) -> IndexReport:
        from rag.index.milvus.store import current_collection, write_milvus_version

        t0 = time.time()
        migrated = 0
        with self._write_lock():
            enc = self._get_encoder()
            expect = current_collection(self.client, self.base)
            old = None
            if not rebuild:
                if expect is not None and (self._version is None or self._version.name != expect):
                    self._install(self._open_current())  # another process published meanwhile
                old = self._version if expect is not None else None
                if old is None:
                    old, migrated = self._migrate_local(enc), 0
                    if old is not None:
                        migrated, expect = old.n_chunks, old.name
                        self._install(old)  # published: current even if nothing else changes
                        self._write_marker()
            if old is not None:
                check_model(old.manifest, self.name, encoder_name=enc.name, encoder_dim=enc.dim)
                old.preload()  # kept rows are copied into the new version: read them in one pass
            if keep_only is not None and old is not None:
                keep_only = set(keep_only) | self._failed_doc_ids(failures)
            writer = functools.partial(write_milvus_version, self.client, self.base, expect)
            path, st = build_version(self.path, old, docs, self.cfg, enc, remove=remove, keep_only=keep_only,
                                     progress=progress, chunk_fn=self.chunk_fn, writer=writer,
                                     analyzer=None if old else self.cfg.retrieve.bm25_analyzer)
            if path is not None:
                from rag.index.milvus.store import MilvusVersion

                self._install(MilvusVersion(self.client, path.name, self.path))
                self._write_marker()
                self.damage, self._bad_version = [], None
        rep = self._report(st, failures, t0)
        rep.reused_vectors += migrated
        return rep

    def _write_marker(self) -> None:
        """MILVUS in the KB folder: lists the KB (rag.index.kb.list_kbs) and says where its index is."""
        import json
        import os

        tmp = self.path / ".MILVUS.tmp"
        uri = self.uri if "@" not in self.uri else "(remote)"  # never a credential in the folder
        tmp.write_text(json.dumps({"uri": uri, "alias": self.base}, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(tmp, self.path / "MILVUS")

    def _migrate_local(self, enc):
        """Copy the KB folder's local index (if any) into Milvus as its first version: the same
        chunks, vectors and BM25 tokens, so nothing is re-embedded. Returns the opened version."""
        from rag.index.build import open_latest
        from rag.index.milvus.store import MilvusVersion, write_milvus_version

        local, _ = open_latest(self.path)
        if local is None:
            return None
        try:
            check_model(local.manifest, self.name, encoder_name=enc.name, encoder_dim=enc.dim)
            n = local.n_chunks
            log.info("knowledge base '%s': copying the local index (%d chunks) into Milvus", self.name, n)
            chunks = local.store.all()
            vecs = local.vectors(list(range(n)))
            manifest = {**local.manifest, "migrated_from": local.path.name}
            manifest.pop("files", None)
            texts = local.text_blobs(manifest["documents"])  # the stored texts, copied as they are
            path = write_milvus_version(self.client, self.base, None, self.path, chunks, vecs, local.bm25,
                                        manifest, self.cfg, time.time(), texts=texts)
        finally:
            local.close()
        return MilvusVersion(self.client, path.name, self.path)

    def repair(self) -> IndexReport:
        t0 = time.time()
        v = self._open_current()
        if v is None:
            raise IndexMissing(self._missing())
        v.preload()  # reads every row: a missing row is damage (IndexDamaged names it)
        self._install(v)
        return self._report(BuildStats(n_chunks=v.n_chunks), [], t0)

    def drop_index(self) -> None:
        """Remove every Milvus collection of this KB and its alias (tests, `rag kb delete`)."""
        from rag.index.milvus.store import cleanup, current_collection

        with self._write_lock():
            cur = current_collection(self.client, self.base)
            if cur is not None:
                self.client.drop_alias(self.base)
            cleanup(self.client, self.base, keep=set())
            self._version = self._searcher = None

