"""Ingestion: files and folders → `rag.types.Document` (original text + cleaned text + offset map).

Supported: .txt .md/.markdown .html/.htm .docx .pdf (text layer; scanned pages are OCR'd) and
images .png .jpg .jpeg .tif .tiff .bmp .webp (OCR, rag.ingest.ocr). One bad file (binary renamed
.txt, empty, truncated PDF, undecodable bytes, a symlink loop, a FIFO or device named `x.txt`)
raises `IngestError` with a message saying what is wrong and what to do; `load_paths` /
`iter_documents` report it as an `IngestFailure` (one line per file in the CLI and the web chat)
and go on with the other files.

Where the parts live: decoding text bytes (UTF-8/GB18030/Big5 detection) in `rag.ingest.decode`;
the HTML/DOCX/PDF readers in `rag.ingest.formats`; which entries of a folder are files that may be read
(symlinks followed once with loop detection, special files never opened, bounded reads) in
`rag.ingest.walk`. This module turns a readable file into a Document and a list of paths into
documents plus failures. `decode_bytes`, `plausibility` and `SUPPORTED_SUFFIXES` stay importable
from here.

`Document.text` is the decoded file text for .txt/.md (CRLF kept, so offsets match the file);
for .html/.docx/.pdf it is the text extracted from the file, since those files have no character
stream a user could point into. Offsets are into `Document.text`.

Deliberate compromise: a file is read and decoded in one go (a 50 MB file costs a few hundred MB
transiently); every file above `MAX_BYTES` (256 MB) is refused with a message naming its size and
the limit instead of exhausting memory — a streaming reader would complicate the offset map for
files nobody should index whole (at ≈10–17 passages/s a 256 MB text embeds for many hours; the
web chat's own upload limit, `ui.max_upload_mb`, is much lower).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

from rag.ingest.decode import decode_bytes, plausibility
from rag.errors import IngestError
from rag.ingest.ocr.pages import IMAGE_SUFFIXES
from rag.types import Document
from rag.ingest.walk import NotAFile, check_entry, read_regular_file, walk_folder

__all__ = [
    "IngestFailure", "MAX_BYTES", "SUPPORTED_SUFFIXES", "decode_bytes", "doc_id_for", "iter_documents",
    "load_file", "load_paths", "plausibility",
]

log = logging.getLogger(__name__)

TEXT_SUFFIXES = {".txt", ".md", ".markdown"}
HTML_SUFFIXES = {".html", ".htm"}
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES | {".docx", ".pdf"} | set(IMAGE_SUFFIXES)
MAX_BYTES = 256 * 1024 * 1024  # refuse larger files rather than exhaust memory


@dataclass(frozen=True)
class IngestFailure:
    """A file that could not be ingested, and why (the message is meant for the user)."""

    path: str
    error: str

    def __str__(self) -> str:
        return f"{self.path}: {self.error}"


# ---------------------------------------------------------------------------------------------
# documents


def _relative(path: Path, root: Path) -> Path:
    """`path` relative to `root`: lexically first (a file reached through a symlinked folder keeps
    the link's path, `linked/a.txt`), then with symlinks resolved, else just the file name."""
    try:
        return Path(os.path.abspath(path)).relative_to(os.path.abspath(root))
    except ValueError:
        pass
    try:
        return path.resolve().relative_to(root.resolve())
    except (ValueError, OSError, RuntimeError):  # RuntimeError: a symlink loop (Python < 3.13)
        return Path(path.name)


def doc_id_for(path: Path, root: Path | None) -> str:
    """Stable id: the path relative to `root` without its suffix, '/'-separated.

    If a sibling with the same stem and another supported suffix exists (a.txt and a.md), the
    suffix is kept so the two never collide.
    >>> doc_id_for(Path("seeds/000_x.txt"), Path("seeds"))
    '000_x'
    """
    rel = _relative(path, root) if root is not None else Path(path.name)
    stem = rel.with_suffix("").as_posix()
    siblings = [s for s in SUPPORTED_SUFFIXES if s != path.suffix.lower() and path.with_suffix(s).exists()]
    if siblings:
        return rel.as_posix()
    return stem


def _read(p: Path, name: str) -> bytes:
    """The file's bytes; special files, loops and oversized files are refused before any read."""
    try:
        data = read_regular_file(p, MAX_BYTES)
    except NotAFile as e:
        raise IngestError(f"{name}: {e}") from None
    except FileNotFoundError:
        raise IngestError(f"{name}: file not found") from None
    except IsADirectoryError:
        raise IngestError(f"{name}: is a folder; pass it to load_paths") from None
    except OSError as e:
        raise IngestError(f"{name}: cannot read the file ({e.strerror or e})") from None
    if not data.strip():
        raise IngestError(f"{name}: the file is empty")
    return data


def _extract(data: bytes, suffix: str, name: str) -> tuple[str, str, str, str, dict]:
    """(text, format, encoding, title hint, metadata) of the file's bytes, by suffix."""
    from rag.ingest.formats import read_docx, read_html, read_pdf

    if suffix == ".txt" and re.match(rb"(?:\xef\xbb\xbf)?\s*<(?:!doctype\s+html|html[\s>])", data[:512], re.I):
        suffix = ".html"  # a web page saved as .txt: read it as the HTML it is
    if suffix in TEXT_SUFFIXES:
        text, encoding = decode_bytes(data, name)
        if suffix in {".md", ".markdown"}:
            from rag.ingest.tables import markdown_tables

            return text, "markdown", encoding, "", ({"tables": t} if (t := markdown_tables(text)) else {})
        return text, "text", encoding, "", {}
    if suffix in HTML_SUFFIXES:
        text, title_hint, encoding, meta = read_html(data, name)
        return text, "html", encoding, title_hint, meta
    if suffix == ".docx":
        text, title_hint, meta = read_docx(data, name)
        return text, "docx", "", title_hint, meta
    if suffix in IMAGE_SUFFIXES:
        from rag.ingest.ocr.document import read_image

        text, meta = read_image(data, name)
        return text, "image", "", "", meta
    text, title_hint, meta = read_pdf(data, name)
    return text, "pdf", "", title_hint, meta


def load_file(path: str | Path, root: str | Path | None = None, source: str | None = None, *,
              stored_as: str | Path | None = None) -> Document:
    """Read one file into a Document (raises IngestError with an actionable message).

    `stored_as`: read the bytes of `path` (e.g. an upload's temporary file) but name the document
    as if it were the file `stored_as` — suffix, id, fallback title, metadata path and messages
    (rag.index.uploads indexes a new version before it replaces the stored file)."""
    from rag.ingest.clean import clean_text

    p = Path(path)
    named = Path(stored_as) if stored_as is not None else p
    name = str(named)
    suffix = named.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise IngestError(f"{name}: unsupported file type {suffix or '(none)'}; supported: {', '.join(sorted(SUPPORTED_SUFFIXES))}")
    data = _read(p, name)
    text, fmt, encoding, title_hint, meta = _extract(data, suffix, name)
    if "\r" in text:
        # keep CRLF as it is (offsets must match the user's file); a lone CR (old Mac files)
        # becomes LF, one character for one, so offsets stay valid
        text = re.sub(r"\r(?!\n)", "\n", text)
    if not text.strip():
        raise IngestError(f"{name}: no text found in the file")
    doc_id = doc_id_for(named, Path(root) if root is not None else named.parent)
    # OCR'd images are cleaned as PDFs are (bare page numbers dropped, broken lines re-joined)
    cleaned = clean_text(text, fmt="pdf" if fmt == "image" else fmt, title_hint=title_hint)
    if not cleaned.clean.strip():
        raise IngestError(f"{name}: nothing left after removing page boilerplate (navigation, share widgets…)")
    metadata = {k: v for k, v in meta.items() if k != "date_hint" and v not in (None, "")}
    metadata.update({k: v for k, v in cleaned.metadata.items() if v not in (None, "")})
    if "date" not in metadata and meta.get("date_hint"):
        from rag.ingest.dateline import parse_date

        d = parse_date(str(meta["date_hint"]))
        if d:
            metadata["date"] = d
    metadata.update({"format": fmt, "encoding": encoding, "sha256": hashlib.sha256(data).hexdigest(),
                     "bytes": len(data), "path": name})
    return Document(
        doc_id=doc_id,
        source=source or name,
        title=cleaned.title or named.stem,
        text=text,
        clean=cleaned.clean,
        offsets=cleaned.offsets,
        metadata=metadata,
    )


def _items(given: str | Path) -> Iterator[tuple[Path, Path, str | None]]:
    """(file, id root, None) for each file to read under `given`, (path, id root, reason) for each
    entry reported instead (see rag.ingest.walk)."""
    g = Path(given)
    kind, _, reason = check_entry(g)
    if kind == "dir":
        for f, skipped in walk_folder(g, SUPPORTED_SUFFIXES):
            yield f, g, (skipped.reason if skipped is not None else None)
    elif kind == "file":
        yield g, g.parent, None
    else:  # missing, or a loop/FIFO/device given by name: reported, never opened
        yield g, g.parent, reason


def iter_documents(paths: Sequence[str | Path] | str | Path) -> Iterator[Document | IngestFailure]:
    """Yield a Document or an IngestFailure per file; folders are walked (sorted, supported
    suffixes only, symlinked folders followed once, special files reported). Ids are relative
    to the folder given (or the file's own folder); an id already given out in this call is
    qualified by the folder's name (`b/report`)."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    seen: set[str] = set()
    ids: set[str] = set()
    for given in paths:
        for f, root, problem in _items(given):
            if problem is not None:
                yield IngestFailure(str(given) if f == Path(given) else str(f), problem)
                continue
            # realpath never raises (a loop that appeared since the walk is caught by load_file)
            key = os.path.realpath(f)
            if key in seen:
                continue  # the same file reached twice (a link to it, or given twice)
            seen.add(key)
            item = _load_one(f, root)
            if isinstance(item, Document) and item.doc_id in ids:
                item = _requalify(item, root, ids, f)
            if isinstance(item, Document):
                ids.add(item.doc_id)
            yield item


def _load_one(f: Path, root: Path) -> Document | IngestFailure:
    try:
        return load_file(f, root=root, source=str(f))
    except IngestError as e:
        log.info("%s", e)  # reported to the caller as an IngestFailure
        return IngestFailure(str(f), _strip_name(str(e), str(f)))
    except MemoryError:
        return IngestFailure(str(f), "out of memory while reading; split the file")
    except Exception as e:  # a bug or an exotic file: report it, keep going
        log.exception("unexpected error reading %s", f)
        return IngestFailure(str(f), f"unexpected error ({type(e).__name__}: {e})")


def _requalify(doc: Document, root: Path, ids: set[str], f: Path) -> Document:
    """Two folders given with the same relative names: the later one is qualified by its folder's
    name (deterministic for the same arguments)."""
    folder = Path(os.path.realpath(root)).name
    new_id = f"{folder}/{doc.doc_id}"
    k = 2
    while new_id in ids:
        new_id = f"{folder}/{doc.doc_id}~{k}"
        k += 1
    log.warning("doc id %s is taken; %s gets %s", doc.doc_id, f, new_id)
    return dataclasses.replace(doc, doc_id=new_id)


def _strip_name(msg: str, name: str) -> str:
    return msg[len(name) + 2 :] if msg.startswith(name + ": ") else msg


def load_paths(paths: Sequence[str | Path] | str | Path) -> tuple[list[Document], list[IngestFailure]]:
    """All documents under `paths` plus the files that failed (one bad file never stops the rest)."""
    docs: list[Document] = []
    failures: list[IngestFailure] = []
    for item in iter_documents(paths):
        (failures if isinstance(item, IngestFailure) else docs).append(item)
    return docs, failures
