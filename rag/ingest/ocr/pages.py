"""Page images of a scanned source: PDF pages rendered with pypdfium2, image files (multi-page
TIFF frames) opened with Pillow — the same function at index time and for the web chat's crop, so
the boxes stored at index time fit the image shown later.

Every page image is grayscale, its longer side at most `MAX_SIDE` pixels (the engine would shrink
it anyway), PDF pages rendered at `DPI`. Limits: at most `MAX_PAGES` pages per file and
`MAX_PIXELS` pixels per source image (Pillow's decompression-bomb guard becomes an error).

A PDF page needs OCR when its text layer has fewer than `MIN_TEXT_CHARS` non-space characters
(`needs_ocr`): decided per page, so a mixed PDF keeps its text pages as they are.
"""

from __future__ import annotations

import io
from typing import Iterator

from rag.errors import IngestError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
DPI = 150  # render resolution of a scanned PDF page: body text ≈ 25 px high, enough for PP-OCRv4
MAX_SIDE = 2000
MAX_PAGES = 500
MAX_PIXELS = 60_000_000
MIN_TEXT_CHARS = 10


def needs_ocr(page_text: str) -> bool:
    """A PDF page whose text layer is empty or a stray page number.

    >>> needs_ocr(""), needs_ocr(" - 3 - "), needs_ocr("第一章 总则。本办法依据有关规定制定。")
    (True, True, False)
    """
    return len("".join(page_text.split())) < MIN_TEXT_CHARS


def _fit(img):
    """Grayscale, longer side ≤ MAX_SIDE (deterministic: the crop must match the boxes)."""
    from PIL import Image

    img = img.convert("L")
    s = max(img.size)
    if s > MAX_SIDE:
        k = MAX_SIDE / s
        img = img.resize((max(1, round(img.width * k)), max(1, round(img.height * k))), Image.LANCZOS)
    return img


def pdf_page_count(data: bytes, name: str) -> int:
    return len(_open_pdf(data, name))


def _open_pdf(data: bytes, name: str):
    import pypdfium2 as pdfium

    try:
        return pdfium.PdfDocument(data)
    except Exception as e:
        raise IngestError(f"{name}: the PDF cannot be rendered for OCR ({type(e).__name__}: {e})") from None


def pdf_pages(data: bytes, name: str, pages: list[int], dpi: int = DPI) -> Iterator[tuple[int, object]]:
    """(0-based page index, image or the exception that page raised) for each page asked for."""
    pdf = _open_pdf(data, name)
    try:
        for i in pages:
            try:
                page = pdf[i]
                img = page.render(scale=dpi / 72, grayscale=True).to_pil()
                page.close()
                yield i, _fit(img)
            except Exception as e:  # one unreadable page is reported, the rest go on
                yield i, e
    finally:
        pdf.close()


def _open_image(data: bytes, name: str):
    from PIL import Image

    try:
        im = Image.open(io.BytesIO(data))
        im.size  # noqa: B018 - forces the header to be parsed
    except Image.DecompressionBombError:
        raise IngestError(f"{name}: the image is larger than {MAX_PIXELS // 1_000_000} megapixels; scale it down") from None
    except Exception as e:
        raise IngestError(f"{name}: not a readable image ({type(e).__name__}: {e})") from None
    if im.width * im.height > MAX_PIXELS:
        raise IngestError(f"{name}: the image is larger than {MAX_PIXELS // 1_000_000} megapixels; scale it down")
    return im


def image_page_count(data: bytes, name: str) -> int:
    n = int(getattr(_open_image(data, name), "n_frames", 1) or 1)
    if n > MAX_PAGES:
        raise IngestError(f"{name}: more than {MAX_PAGES} pages; split the file")
    return n


def image_pages(data: bytes, name: str) -> Iterator[tuple[int, object]]:
    """(0-based frame index, image or exception) for each frame of an image file."""
    from PIL import ImageOps, ImageSequence

    im = _open_image(data, name)
    for i, frame in enumerate(ImageSequence.Iterator(im)):
        if i >= MAX_PAGES:
            raise IngestError(f"{name}: more than {MAX_PAGES} pages; split the file")
        try:
            yield i, _fit(ImageOps.exif_transpose(frame.copy()))
        except Exception as e:
            yield i, e


def page_image(data: bytes, suffix: str, page: int, name: str = "file"):
    """The image of page `page` (1-based) exactly as it was OCR'd (before turning it upright)."""
    if suffix.lower() == ".pdf":
        items = pdf_pages(data, name, [page - 1])
    else:
        items = (x for x in image_pages(data, name) if x[0] == page - 1)
    for _, img in items:
        if isinstance(img, Exception):
            raise IngestError(f"{name}: page {page} cannot be rendered ({img})")
        return img
    raise IngestError(f"{name}: there is no page {page}")
