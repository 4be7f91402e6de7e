"""The page image around a citation's quote, cited lines highlighted: what the web chat's source
panel shows for a scanned document.

Made on demand from the scanned file — found where the index recorded it (the absolute path
taken when the document was indexed, `rag.index.doc_texts.INDEXED_FILE` in the chunk's metadata;
an upload's source is absolute anyway), so it works whatever the working directory is now —
only when its sha256 still matches the indexed document (else the boxes would point at another
page) and only for the scan suffixes. The page is rendered exactly as at index time
(rag.ingest.ocr.pages.page_image), turned upright as OCR turned it, cropped to the quoted lines with a
margin, the lines tinted and outlined, scaled to at most `WIDTH` pixels wide, returned as PNG
bytes. Recent crops are kept (LRU) so the panel's re-renders do not re-render the page.

A scan indexed from a relative path before the index recorded the file has no crop until
`rag index` sees that file again (it then records the path; nothing is re-read or re-embedded).
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

from rag.index.doc_texts import INDEXED_FILE

log = logging.getLogger(__name__)

WIDTH = 640
MARGIN = 48  # pixels of page around the quoted lines (at the OCR resolution)
_SUFFIXES = (".pdf", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")


def scan_file(meta: Mapping[str, Any], source: str) -> str:
    """The path of a citation's scanned file: as recorded at index time, else its source when
    that is absolute; "" when neither says where the file is.

    >>> scan_file({"indexed_file": "/data/scan.pdf"}, "scan.pdf"), scan_file({}, "/kb/uploads/a.png"), scan_file({}, "a.png")
    ('/data/scan.pdf', '/kb/uploads/a.png', '')
    """
    recorded = meta.get(INDEXED_FILE)
    if recorded:
        return str(recorded)
    return source if source and Path(source).is_absolute() else ""


def highlight_crop(img, boxes: Sequence[Sequence[int]], width: int = WIDTH) -> bytes:
    """PNG of `img` cropped around `boxes` ([x0, y0, x1, y1] each), the boxes tinted and outlined."""
    from PIL import Image, ImageDraw

    x0 = max(0, min(b[0] for b in boxes) - MARGIN)
    y0 = max(0, min(b[1] for b in boxes) - MARGIN)
    x1 = min(img.width, max(b[2] for b in boxes) + MARGIN)
    y1 = min(img.height, max(b[3] for b in boxes) + MARGIN)
    page = img.convert("RGB").crop((x0, y0, x1, y1))
    tint = Image.new("RGBA", page.size, (0, 0, 0, 0))
    d = ImageDraw.Draw(tint)
    for b in boxes:
        r = (b[0] - x0 - 3, b[1] - y0 - 3, b[2] - x0 + 3, b[3] - y0 + 3)
        d.rectangle(r, fill=(255, 214, 0, 90), outline=(230, 120, 0, 255), width=3)
    out = Image.alpha_composite(page.convert("RGBA"), tint).convert("RGB")
    if out.width > width:
        out = out.resize((width, max(1, round(out.height * width / out.width))), Image.LANCZOS)
    buf = io.BytesIO()
    out.save(buf, "PNG", optimize=True)
    return buf.getvalue()


@functools.lru_cache(maxsize=64)
def _crop(file: str, sha256: str, page: int, rotation: int, boxes: tuple[tuple[int, ...], ...]) -> bytes | None:
    from rag.ingest.ocr.pages import page_image

    path = Path(file)
    if path.suffix.lower() not in _SUFFIXES or not path.is_file():
        return None
    data = path.read_bytes()
    if sha256 and hashlib.sha256(data).hexdigest() != sha256:
        log.info("%s changed since it was indexed: no page crop", file)
        return None
    img = page_image(data, path.suffix, page, name=path.name)
    if rotation:
        img = img.rotate(rotation, expand=True)
    return highlight_crop(img, boxes)


def quote_crop(meta: Mapping[str, Any], source: str) -> bytes | None:
    """PNG of the cited lines on their page for a citation's metadata (`page`, `boxes`,
    `ocr_pages`, `sha256`, the indexed file) and source path; None when there is nothing to show
    or the file is unknown, gone or changed (the citation text still stands)."""
    from rag.ingest.ocr.locate import page_size

    page = meta.get("page")
    boxes = tuple(tuple(int(v) for v in b[1:5]) for b in meta.get("boxes") or () if b and b[0] == page)
    file = scan_file(meta, source)
    if page is None or not boxes or not file:
        return None
    size = page_size(meta, int(page))
    try:
        return _crop(file, str(meta.get("sha256") or ""), int(page), size[2] if size else 0, boxes)
    except Exception as e:  # a missing crop never breaks the answer
        log.info("no page crop for %s page %s: %s", source, page, e)
        return None
