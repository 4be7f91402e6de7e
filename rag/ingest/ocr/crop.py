"""The page image around a citation's quote, cited lines highlighted: what the web chat's source
panel shows for a scanned document.

Made on demand from the stored source file (the upload in the KB folder, or the indexed file),
only when its sha256 still matches the indexed document (else the boxes would point at another
page) and only for the scan suffixes. The page is rendered exactly as at index time
(rag.ingest.ocr.pages.page_image), turned upright as OCR turned it, cropped to the quoted lines with a
margin, the lines tinted and outlined, scaled to at most `WIDTH` pixels wide, returned as PNG
bytes. Recent crops are kept (LRU) so the panel's re-renders do not re-render the page.

Compromise: a relative source path is looked up under the working directory and the repo root,
as rag.cite.document_text does for exact quotes.
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

log = logging.getLogger(__name__)

WIDTH = 640
MARGIN = 48  # pixels of page around the quoted lines (at the OCR resolution)
_SUFFIXES = (".pdf", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
_ROOT = Path(__file__).resolve().parents[3]


def _find(source: str) -> Path | None:
    p = Path(source)
    for c in ([p] if p.is_absolute() else [Path.cwd() / p, _ROOT / p]):
        if c.is_file():
            return c
    return None


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
def _crop(source: str, sha256: str, page: int, rotation: int, boxes: tuple[tuple[int, ...], ...]) -> bytes | None:
    from rag.ingest.ocr.pages import page_image

    path = _find(source)
    if path is None or path.suffix.lower() not in _SUFFIXES:
        return None
    data = path.read_bytes()
    if sha256 and hashlib.sha256(data).hexdigest() != sha256:
        log.info("%s changed since it was indexed: no page crop", source)
        return None
    img = page_image(data, path.suffix, page, name=path.name)
    if rotation:
        img = img.rotate(rotation, expand=True)
    return highlight_crop(img, boxes)


def quote_crop(meta: Mapping[str, Any], source: str) -> bytes | None:
    """PNG of the cited lines on their page for a citation's metadata (`page`, `boxes`,
    `ocr_pages`, `sha256`) and source path; None when there is nothing to show or the file is
    gone or changed (the citation text still stands)."""
    from rag.ingest.ocr.locate import page_size

    page = meta.get("page")
    boxes = tuple(tuple(int(v) for v in b[1:5]) for b in meta.get("boxes") or () if b and b[0] == page)
    if page is None or not boxes or not source:
        return None
    size = page_size(meta, int(page))
    try:
        return _crop(source, str(meta.get("sha256") or ""), int(page), size[2] if size else 0, boxes)
    except Exception as e:  # a missing crop never breaks the answer
        log.info("no page crop for %s page %s: %s", source, page, e)
        return None
