"""Original document text for exact quotes in citations (rag.cite.resolve `text_source`): asked of the
knowledge base, else re-read from the indexed file when its sha256 still matches the manifest;
kept for a few documents (LRU).

Compromise: the index keeps cleaned chunks, not the original text, so a relative source path is
looked up under the working directory and then the repo root (where the default seeds/ live) —
a guess that goes once the index stores each document's text (issue 14).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from rag.errors import RagError
from rag.types import Chunk

log = logging.getLogger("rag.answer.assistant")  # the name these messages were logged under before the split


class DocumentTextSource:
    """Original document text for exact quotes, fetched from the KB and kept for a few docs."""

    def __init__(self, kb: Any, size: int = 32):
        self.kb = kb
        self.size = size
        self.cache: OrderedDict[str, str | None] = OrderedDict()
        self.lock = threading.Lock()
        self.repo_root = Path(__file__).resolve().parents[2]  # the default seeds/ live here

    def _fetch(self, doc_id: str) -> str | None:
        for name in ("document_text", "original_text"):
            fn = getattr(self.kb, name, None)
            if callable(fn):
                try:
                    t = fn(doc_id)
                    if isinstance(t, str):
                        return t
                except Exception as e:  # a missing file loses the exact quote, not the answer
                    log.debug("no original text for %s: %s", doc_id, e)
        fn = getattr(self.kb, "get_document", None)
        if callable(fn):
            try:
                doc = fn(doc_id)
                t = getattr(doc, "text", None)
                if isinstance(t, str):
                    return t
            except Exception as e:
                log.debug("no original document for %s: %s", doc_id, e)
        return None

    def _from_file(self, chunk: Chunk) -> str | None:
        """Re-read the indexed file (the index stores cleaned chunks, not the original text).
        The file's sha256 must still match the manifest, else the spans would point into a
        different text and no exact quote is given."""
        if not chunk.source:
            return None
        from rag.ingest.load import load_file

        expected = None
        try:
            for d in (getattr(self.kb, "manifest", None) or {}).get("documents", []):
                if d.get("doc_id") == chunk.doc_id:
                    expected = d.get("sha256")
                    break
        except Exception:
            expected = None
        p = Path(chunk.source)
        cands = [p] if p.is_absolute() else [Path.cwd() / p, self.repo_root / p]
        for c in cands:
            if not c.is_file():
                continue
            try:
                doc = load_file(c)
            except RagError as e:
                log.debug("cannot re-read %s: %s", c, e)
                continue
            if expected and doc.metadata.get("sha256") not in (None, expected):
                log.info("%s changed since it was indexed; quotes fall back to the indexed text", c)
                return None
            return doc.text
        return None

    def __call__(self, chunk: Chunk) -> str | None:
        with self.lock:
            if chunk.doc_id in self.cache:
                self.cache.move_to_end(chunk.doc_id)
                text = self.cache[chunk.doc_id]
            else:
                text = self._fetch(chunk.doc_id)
                if text is None:
                    text = self._from_file(chunk)
                self.cache[chunk.doc_id] = text
                while len(self.cache) > self.size:
                    self.cache.popitem(last=False)
        if text is None or len(text) < chunk.end:
            return None
        return text
