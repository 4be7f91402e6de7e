"""From a span of a document's original text to the page and the boxes of its lines.

`Document.metadata["ocr_lines"]` (rag.ingest.ocr) is the per-line table `[start, end, page, x0, y0, x1,
y1]` (box absent for a text-layer page); `ocr_pages` is `[page, width, height, rotation]`. The
chunker calls `chunk_metadata` so each chunk carries only its own rows (and `page`, the page it
starts on); a citation calls `span_location` with the quote's original span, so it names the page
and the boxes of the quoted lines. Documents without the table are left alone (`page` absent).
"""

from __future__ import annotations

from typing import Any, Mapping


def _rows(meta: Mapping[str, Any], start: int, end: int) -> list[list[int]]:
    rows = meta.get("ocr_lines") or []
    if end <= start:
        end = start + 1
    return [r for r in rows if r[0] < end and r[1] > start]


def chunk_metadata(meta: dict, start: int, end: int) -> dict:
    """The document metadata a chunk spanning original [start, end) keeps: its own line rows,
    the sizes of their pages, and `page` (1-based) where it starts.

    >>> m = {"ocr_lines": [[0, 5, 1, 0, 0, 9, 9], [6, 9, 2, 1, 1, 5, 5]], "ocr_pages": [[1, 10, 10, 0], [2, 10, 10, 0]]}
    >>> chunk_metadata(m, 6, 9)
    {'ocr_lines': [[6, 9, 2, 1, 1, 5, 5]], 'ocr_pages': [[2, 10, 10, 0]], 'page': 2}
    """
    if "ocr_lines" not in meta:
        return meta
    out = dict(meta)
    rows = _rows(meta, start, end)
    pages = {r[2] for r in rows}
    out["ocr_lines"] = rows
    out["ocr_pages"] = [p for p in meta.get("ocr_pages") or [] if p[0] in pages]
    if rows:
        out["page"] = rows[0][2]
    return out


def span_location(meta: Mapping[str, Any], start: int, end: int) -> dict:
    """`{"page": n, "boxes": [[page, x0, y0, x1, y1], …]}` for original span [start, end), or {}
    for a document without a line table.

    >>> m = {"ocr_lines": [[0, 5, 1, 0, 0, 9, 9], [6, 9, 1, 0, 10, 9, 19], [10, 12, 2]]}
    >>> span_location(m, 3, 8)
    {'page': 1, 'boxes': [[1, 0, 0, 9, 9], [1, 0, 10, 9, 19]]}
    >>> span_location(m, 10, 11), span_location({}, 0, 1)
    ({'page': 2, 'boxes': []}, {})
    """
    if not meta.get("ocr_lines"):
        return {}
    rows = _rows(meta, start, end)
    if not rows:
        return {}
    return {"page": rows[0][2], "boxes": [[r[2], *r[3:7]] for r in rows if len(r) >= 7]}


def page_size(meta: Mapping[str, Any], page: int) -> tuple[int, int, int] | None:
    """(width, height, rotation) of an OCR'd page from `ocr_pages`, or None."""
    for p in meta.get("ocr_pages") or []:
        if p[0] == page:
            return int(p[1]), int(p[2]), int(p[3])
    return None
