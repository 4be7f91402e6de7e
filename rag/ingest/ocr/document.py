"""OCR'd documents: image-only PDF pages and picture files → text whose every character
knows its page and box.

Entry points (called by rag.ingest.formats / rag.ingest.load): `read_scanned_pdf` (the pages of a PDF whose
text layer is missing or nearly so are OCR'd, its text pages kept as they are) and `read_image`
(.png .jpg .jpeg .tif .tiff .bmp .webp, every frame of a multi-page TIFF).

The text: each OCR'd page's paragraphs in reading order (rag.ingest.ocr.layout) separated by blank lines,
pages separated by one line break (so rag.ingest.clean may re-join a sentence broken across pages); the
existing OCR repair and the section-aware chunker then run unchanged. The map back to the page:
`metadata["ocr_lines"]` holds one `[start, end, page, x0, y0, x1, y1]` per recognised line
(`start`/`end` offsets into `Document.text`, page 1-based, box in pixels of the upright page
image; a text-layer page of a mixed PDF has one `[start, end, page]`), `metadata["ocr_pages"]`
one `[page, width, height, rotation]` per OCR'd page. The chunker keeps the rows of each chunk
(rag.ingest.ocr.locate), citations name the page and the boxes of the quoted lines.

Work that takes time shows it: a progress bar per page (tqdm.auto, so the web chat's
`gr.Progress(track_tqdm=True)` shows it too) while `ocr_progress(True)` is in effect; results are
cached by page image (rag.ingest.ocr.cache). A page that cannot be rendered or read is logged and listed
in `metadata["ocr_errors"]`; the rest of the document is indexed.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from typing import Iterable, Iterator

from rag.errors import IngestError
from rag.ingest.ocr.pages import needs_ocr

log = logging.getLogger(__name__)
_PROGRESS: contextvars.ContextVar[bool] = contextvars.ContextVar("ocr_progress", default=False)


@contextlib.contextmanager
def ocr_progress(show: bool) -> Iterator[None]:
    """Show a per-page progress bar for OCR done inside the block."""
    token = _PROGRESS.set(bool(show))
    try:
        yield
    finally:
        _PROGRESS.reset(token)


def _recognize_all(items: Iterable[tuple[int, object]], total: int, name: str) -> list[tuple[int, object]]:
    """(1-based page, PageOCR or error message) for each rendered page; cache first."""
    from rag.ingest.ocr import cache
    from rag.ingest.ocr.engine import recognize

    bar = None
    if _PROGRESS.get() and total:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc=f"OCR {name}", unit="页", dynamic_ncols=True)
    out: list[tuple[int, object]] = []
    try:
        for i, img in items:
            if isinstance(img, Exception):
                out.append((i + 1, f"{type(img).__name__}: {img}"))
            else:
                try:
                    key = cache.image_key(img)
                    page = cache.get(key)
                    if page is None:
                        page = recognize(img)
                        cache.put(key, page)
                    out.append((i + 1, page))
                except Exception as e:  # one unreadable page never loses the document
                    log.exception("OCR of %s page %d failed", name, i + 1)
                    out.append((i + 1, f"{type(e).__name__}: {e}"))
            if bar is not None:
                bar.update(1)
                bar.set_postfix_str(f"第 {i + 1} 页")
    finally:
        if bar is not None:
            bar.close()
    return out


def _assemble(pages: list[tuple[int, object]], name: str) -> tuple[str, dict]:
    """Text and line table of the pages in order: PageOCR, a text page's lines (list of str),
    or an error message (str)."""
    from rag.ingest.ocr.lines import PageOCR
    from rag.ingest.ocr.layout import join_pieces, page_paragraphs, running_lines

    ocr = [p if isinstance(p, PageOCR) else None for _, p in pages]
    drops = running_lines(ocr)
    parts: list[str] = []
    pos = 0
    lines: list[list[int]] = []
    sizes: list[list[int]] = []
    errors: list[str] = []

    def add(s: str) -> int:
        nonlocal pos
        parts.append(s)
        pos += len(s)
        return pos - len(s)

    for (no, p), drop in zip(pages, drops):
        if isinstance(p, str):
            errors.append(f"第 {no} 页：{p}")
            log.warning("%s: page %d could not be read (%s); the other pages are indexed", name, no, p)
            continue
        if parts:
            add("\n")
        if isinstance(p, list):  # a text-layer page of a mixed PDF
            t = "\n".join(p)
            if t:
                s = add(t)
                lines.append([s, s + len(t), no])
            continue
        sizes.append([no, p.width, p.height, p.rotation])
        for b, block in enumerate(page_paragraphs(p, drop)):
            for k, para in enumerate(block):
                if b or k:  # paragraphs apart; a new block (column) may go on with the sentence
                    add("\n\n" if k else "\n")
                flat = [ln for row in para for ln in row]
                text, starts = join_pieces([ln.text for ln in flat])
                base = add(text)
                for ln, st in zip(flat, starts):
                    lines.append([base + st, base + st + len(ln.text), no, *ln.box])
    meta = {"ocr_lines": lines, "ocr_pages": sizes, "ocr_engine": "rapidocr"}
    if errors:
        meta["ocr_errors"] = "；".join(errors)
    return "".join(parts), meta


def read_scanned_pdf(data: bytes, name: str, page_texts: list[str]) -> tuple[str, dict] | None:
    """A PDF whose pages `needs_ocr` (some or all): the text of all pages in order, text pages
    as their text layer gives them, scanned pages OCR'd. None when OCR found nothing on the
    pages that needed it while other pages have text (read it as a text PDF)."""
    from rag.ingest.ocr.lines import PageOCR
    from rag.ingest.ocr.pages import pdf_pages

    todo = [i for i, t in enumerate(page_texts) if needs_ocr(t)]
    recognized = {no - 1: r for no, r in _recognize_all(pdf_pages(data, name, todo), len(todo), name)}
    text_idx = [i for i in range(len(page_texts)) if i not in recognized]
    # a text page's page number is left to rag.ingest.clean, which drops bare page numbers from PDFs
    kept = {i: [ln for ln in page_texts[i].split("\n") if ln.strip()] for i in text_idx}
    pages = [(i + 1, recognized[i] if i in recognized else kept[i]) for i in range(len(page_texts))]
    if text_idx and not any(isinstance(p, PageOCR) and p.lines for p in recognized.values()):
        return None  # a text PDF with a blank page: read as before, without a line table
    text, meta = _assemble(pages, name)
    if not text.strip():
        raise IngestError(f"{name}: the PDF has no text layer and OCR found no text on its pages (blank or unreadable scan)")
    meta["ocr_pages_read"] = len(todo)
    return text, meta


def read_image(data: bytes, name: str) -> tuple[str, dict]:
    """Every frame of an image file, OCR'd."""
    from rag.ingest.ocr.pages import image_page_count, image_pages

    n = image_page_count(data, name)
    text, meta = _assemble(_recognize_all(image_pages(data, name), n, name), name)
    if not text.strip():
        raise IngestError(f"{name}: no text found in the image (OCR read nothing)")
    meta["pages"] = n
    return text, meta
