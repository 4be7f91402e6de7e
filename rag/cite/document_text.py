"""Original document text for exact quotes in citations (rag.cite.resolve `text_source`): asked of
the knowledge base, which stores each document's text with its index version
(`KnowledgeBase.document_text`, rag.index.doc_texts); kept for a few documents (LRU).

None — no exact quote, the citation quotes the chunk text — when the KB has no text for the
document (a version built before texts were stored), the text is damaged (logged once per
document), or it is shorter than the chunk's span (it cannot be the text the span points into).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import Any

from rag.errors import IndexDamaged
from rag.types import Chunk

log = logging.getLogger("rag.answer.assistant")  # the name these messages were logged under before the split


class DocumentTextSource:
    """`source(chunk)` → the original text of the chunk's document, or None (see the module docstring).
    `kb`: anything with `document_text(doc_id) -> str | None` (a KnowledgeBase)."""

    def __init__(self, kb: Any, size: int = 32):
        self.kb = kb
        self.size = size
        self.cache: OrderedDict[str, str | None] = OrderedDict()
        self.lock = threading.Lock()

    def _fetch(self, doc_id: str) -> str | None:
        try:
            return self.kb.document_text(doc_id)
        except IndexDamaged as e:  # a damaged text loses the exact quote, not the answer
            log.warning("no original text for %s: %s", doc_id, e)
            return None

    def __call__(self, chunk: Chunk) -> str | None:
        with self.lock:
            if chunk.doc_id in self.cache:
                self.cache.move_to_end(chunk.doc_id)
                text = self.cache[chunk.doc_id]
            else:
                text = self._fetch(chunk.doc_id)
                self.cache[chunk.doc_id] = text
                while len(self.cache) > self.size:
                    self.cache.popitem(last=False)
        if text is None or len(text) < chunk.end:
            return None
        return text
