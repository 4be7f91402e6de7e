"""Each document's original text (`Document.text`: the text chunk spans `start/end` point into),
stored with every index version, so an exact quote never re-reads — or guesses the place of —
the user's file.

A document's text is kept as one zlib stream (a "blob", `pack`). The local backend concatenates
the blobs of a version into TEXTS and records each document's `[offset, length]` in its
documents.json entry (`text`); the Milvus backend keeps them in a companion collection
(rag.index.milvus.store). A build copies an unchanged document's blob from the old version as
bytes, never recompressing it, the way unchanged chunks are copied. A scan also gets, in its
entry's and chunks' metadata, where its file was (`INDEXED_FILE`, `indexed_file`): the page crop
re-renders the cited page from it.

Versions written before texts were stored have entries without `text`: `document_text` is None
there (quotes fall back to the chunk text) and the next build fills in the text of every
document it is given (`rag index PATH` on the same files), without re-chunking or re-embedding.

Size on the seed corpus (5 files, 139 KB of UTF-8 text, 281 chunks): texts.zlib is 60 KB, 0.43 of
the text and 2.9 % of the 2.0 MB version folder (zlib level 9; measured with a 384-dim encoder).
Deliberate compromise: a scan's file is not stored, only where it was (`INDEXED_FILE`, for the
page crop); page images would cost far more than the texts.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path
from typing import Any, Mapping, Sequence

from rag.errors import IndexDamaged, RagError

TEXTS = "texts.zlib"
INDEXED_FILE = "indexed_file"  # metadata key: a scan's file, as an absolute path taken at index time


def pack(text: str) -> bytes:
    """The stored form of a document's text.

    >>> unpack(pack("安达市委『六学』措施\\r\\n")) == "安达市委『六学』措施\\r\\n"
    True
    """
    return zlib.compress(text.encode("utf-8"), 9)


def unpack(blob: bytes) -> str:
    """The text of a blob; ValueError if it is damaged (zlib checks its own adler32)."""
    try:
        return zlib.decompress(blob).decode("utf-8")
    except zlib.error as e:
        raise ValueError(str(e)) from None


def without_text(entry: Mapping[str, Any]) -> dict[str, Any]:
    """A document entry without its `text` place (each backend's writer records its own)."""
    return {k: v for k, v in entry.items() if k != "text"}


def check_blobs(documents: Sequence[Any], blobs: Sequence[bytes | None]) -> list[bytes | None]:
    """`blobs` as a writer takes them: one per document (() means none is known)."""
    blobs = list(blobs) or [None] * len(documents)
    if len(blobs) != len(documents):
        raise RagError(f"internal error: {len(blobs)} texts for {len(documents)} documents")
    return blobs


def write_texts(folder: Path, documents: Sequence[Mapping[str, Any]], blobs: Sequence[bytes | None]) -> list[dict]:
    """Write the blobs of a version's documents (same order; None: no text known; (): none) to
    `folder`/TEXTS. Returns the entries, each with its `text` = `[offset, length]` (none where None)."""
    out: list[dict] = []
    offset = 0
    with open(Path(folder) / TEXTS, "wb") as f:
        for entry, blob in zip(documents, check_blobs(documents, blobs)):
            out.append(without_text(entry))
            if blob is not None:
                f.write(blob)
                out[-1]["text"] = [offset, len(blob)]
                offset += len(blob)
    return out


def indexed_file(doc) -> str | None:
    """Where a scanned document's file is, as an absolute path taken when it is indexed: the page
    crop re-renders the cited page from it (rag.ingest.ocr.crop), whatever the working directory
    is later. None for other documents: their text is stored, nothing re-reads their files.

    >>> from rag.types import Document
    >>> scan = Document("s", "/data/s.pdf", "s", "字", "字", [0], {"ocr_lines": [[0, 1, 1]]})
    >>> indexed_file(scan), indexed_file(Document("t", "t.txt", "t", "字", "字", [0]))
    ('/data/s.pdf', None)
    """
    if "ocr_lines" not in (doc.metadata or {}) or not doc.source:
        return None
    return os.path.abspath(doc.source)


class TextFile:
    """TEXTS of one opened local version: `blobs(entries)` reads the entries' blobs. The file is
    opened per call (a quote asks for one document, a build for all its kept ones, both rarely),
    so an opened version holds no descriptor for it and search never touches it."""

    def __init__(self, folder: Path):
        self.path = Path(folder) / TEXTS

    def _damaged(self, why: str) -> IndexDamaged:
        v = self.path.parent
        return IndexDamaged(f"index {v.parent.name}/{v.name} is damaged: {TEXTS} {why}; rebuild it with "
                            f"`rag index PATH --kb {v.parent.name} --rebuild`", file=TEXTS, version=v.name)

    def blobs(self, entries: Sequence[Mapping[str, Any]]) -> list[bytes | None]:
        """The blob of each entry (None: the version stores no text for it)."""
        spans = [e.get("text") for e in entries]
        if not any(spans):
            return [None] * len(spans)
        out: list[bytes | None] = []
        try:
            with open(self.path, "rb") as f:
                for span in spans:
                    if span:
                        f.seek(int(span[0]))
                        out.append(f.read(int(span[1])))
                        if len(out[-1]) != int(span[1]):
                            raise self._damaged(f"is shorter than its table ({int(span[0]) + int(span[1])} bytes expected)")
                    else:
                        out.append(None)
        except OSError as e:
            raise self._damaged(f"cannot be read ({e.strerror or e})") from None
        return out

    def text(self, entry: Mapping[str, Any]) -> str | None:
        blob = self.blobs([entry])[0]
        if blob is None:
            return None
        try:
            return unpack(blob)
        except ValueError as e:
            raise self._damaged(f"holds a damaged text for {entry.get('doc_id')!r} ({e})") from None
