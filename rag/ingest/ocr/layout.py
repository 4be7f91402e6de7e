"""Recognised lines → paragraphs in reading order, page by page; running headers, footers and page
numbers left out.

- Skew: the median slope of the long lines' top edges is measured and every box is read in the
  de-skewed frame (boxes themselves stay as the detector gave them).
- Columns: a vertical gutter in the middle half of the text area that no line crosses (lines
  spanning it — a title, a full-width paragraph — are kept in place) splits a page into left and
  right columns, each read top to bottom; a band of full-width lines separates column blocks.
- Paragraphs: a new one starts after a gap larger than 0.8 line heights, at an indent of over one
  character, after a line ending short of the column's right edge, and at a heading (`一、`, `（一）`,
  `第一章`… as rag.chunk.headings reads them).
- Vertical writing (columns read top to bottom) is read right to left, one column a line.
- Running lines: a short line among the first or last two of a page and in its top or bottom
  8 % that is a page number
  (rag.ingest.boilerplate's page-number rule), or whose text with digits folded recurs there on at least
  two pages and half of them (`running_keys`), is dropped.

Deliberate compromises: only two columns are told apart (three-column pages read as two, the
columns of each still in order); tables come out row by row as lines of text.
"""

from __future__ import annotations

import math
import re
import statistics
from dataclasses import dataclass

from rag.chunk.headings import heading_marker
from rag.ingest.ocr.lines import OcrLine, PageOCR

_PAGE_NO = re.compile(r"^[-—–－~·\s]*\d{1,4}[-—–－~·\s]*$")  # "- 3 -" read as "3-" is still a page number
EDGE = 0.08  # top/bottom share of the page where running headers and footers live


@dataclass
class _L:
    """A line in the de-skewed frame."""

    line: OcrLine
    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def h(self) -> float:
        return max(1.0, self.y1 - self.y0)

    @property
    def cy(self) -> float:
        return (self.y0 + self.y1) / 2


def _skew(lines: list[OcrLine]) -> float:
    """Median top-edge slope (radians) of lines at least 4× as wide as high."""
    angles = []
    for ln in lines:
        if len(ln.quad) == 4:
            (ax, ay), (bx, by) = ln.quad[0], ln.quad[1]
            w, h = ln.box[2] - ln.box[0], ln.box[3] - ln.box[1]
            if bx - ax > 0 and w >= 4 * max(1, h) * 0.5 and len(ln.text) >= 4:
                angles.append(math.atan2(by - ay, bx - ax))
    return statistics.median(angles) if angles else 0.0


def _deskew(lines: list[OcrLine], theta: float) -> list[_L]:
    c, s = math.cos(-theta), math.sin(-theta)
    out = []
    for ln in lines:
        pts = ln.quad if len(ln.quad) == 4 else [[ln.box[0], ln.box[1]], [ln.box[2], ln.box[3]]]
        xs = [x * c - y * s for x, y in pts]
        ys = [x * s + y * c for x, y in pts]
        out.append(_L(ln, min(xs), min(ys), max(xs), max(ys)))
    return out


def _gutter(ls: list[_L]) -> float | None:
    """x of a column gutter: a gap in the middle half of the text area that at least two lines on
    each side leave free (lines wider than 60 % of the area are full-width and ignored)."""
    if len(ls) < 4:
        return None
    left, right = min(l.x0 for l in ls), max(l.x1 for l in ls)
    width = right - left
    if width <= 0:
        return None
    narrow = [l for l in ls if l.x1 - l.x0 < 0.6 * width]
    if len(narrow) < 4:
        return None
    h = statistics.median(l.h for l in ls)
    spans = sorted((l.x0, l.x1) for l in narrow)
    best, gaps, reach = None, [], spans[0][1]
    for a, b in spans[1:]:
        if a > reach:
            gaps.append((reach, a))
        reach = max(reach, b)
    for a, b in gaps:
        mid = (a + b) / 2
        if b - a >= 1.2 * h and left + 0.25 * width <= mid <= left + 0.75 * width:
            if best is None or b - a > best[1] - best[0]:
                best = (a, b)
    if best is None:
        return None
    g = (best[0] + best[1]) / 2
    if sum(l.x1 <= g for l in narrow) < 2 or sum(l.x0 >= g for l in narrow) < 2:
        return None
    return g


def _rows(ls: list[_L]) -> list[list[_L]]:
    """Lines on the same row (vertical overlap over half the smaller height), left to right."""
    rows: list[list[_L]] = []
    for l in sorted(ls, key=lambda l: l.cy):
        if rows:
            r = rows[-1]
            top, bot = min(x.y0 for x in r), max(x.y1 for x in r)
            if min(bot, l.y1) - max(top, l.y0) > 0.5 * min(l.h, bot - top):
                r.append(l)
                continue
        rows.append([l])
    return [sorted(r, key=lambda l: l.x0) for r in rows]


def _is_heading(text: str) -> bool:
    m = heading_marker(text)
    return m is not None and m.whole_line and len(text) <= 40


def _paragraphs(rows: list[list[_L]]) -> list[list[list[_L]]]:
    if not rows:
        return []
    h = statistics.median(l.h for r in rows for l in r)
    left = min(r[0].x0 for r in rows)
    ends = sorted(r[-1].x1 for r in rows)
    right = ends[int(0.8 * (len(ends) - 1))]  # the column's right edge (a stray long box aside)
    paras: list[list[list[_L]]] = [[rows[0]]]
    for prev, row in zip(rows, rows[1:]):
        gap = row[0].y0 - max(l.y1 for l in prev)
        ptext, text = "".join(l.line.text for l in prev), "".join(l.line.text for l in row)
        new = (gap > 0.8 * h or row[0].x0 - left > 1.2 * h or right - prev[-1].x1 > 2.0 * h
               or _is_heading(text) or _is_heading(ptext))
        if new:
            paras.append([row])
        else:
            paras[-1].append(row)
    return paras


def _blocks(ls: list[_L]) -> list[list[list[_L]]]:
    """Blocks of rows in reading order: the page's rows, or, on a two-column page, each column
    of a band between full-width lines (left first), the full-width lines as blocks of their own."""
    g = _gutter(ls)
    if g is None:
        return [_rows(ls)]
    out: list[list[list[_L]]] = []
    left: list[_L] = []
    right: list[_L] = []
    span: list[_L] = []

    def flush(*groups: list[_L]) -> None:
        for grp in groups:
            if grp:
                out.append(_rows(grp))
                grp.clear()

    for l in sorted(ls, key=lambda l: l.y0):
        if l.x0 < g < l.x1:  # crosses the gutter: a title or full-width paragraph between bands
            flush(left, right)
            span.append(l)
        else:
            flush(span)
            (left if l.x1 <= g else right).append(l)
    flush(span, left, right)
    return out


def _vertical(ls: list[_L]) -> list[list[list[_L]]]:
    """Vertical writing: columns right to left; a column ending short of the others ends its
    paragraph."""
    cols = sorted(ls, key=lambda l: -l.x1)
    if not cols:
        return []
    bottom = max(l.y1 for l in cols)
    w = statistics.median(l.x1 - l.x0 for l in cols)
    paras: list[list[list[_L]]] = [[[cols[0]]]]
    for prev, col in zip(cols, cols[1:]):
        if bottom - prev.y1 > 2 * w:
            paras.append([[col]])
        else:
            paras[-1].append([col])
    return paras


def page_paragraphs(page: PageOCR, drop: set[int] = frozenset()) -> list[list[list[list[OcrLine]]]]:
    """Blocks → paragraphs → rows → lines of one page in reading order (a block is a column or
    a full-width band; a paragraph may go on in the next block), lines whose index is in `drop`
    left out."""
    lines = [ln for i, ln in enumerate(page.lines) if i not in drop]
    if not lines:
        return []
    if sum(ln.vertical for ln in lines) > len(lines) / 2:
        blocks = [_vertical(_deskew(lines, 0.0))]
    else:
        blocks = [_paragraphs(rows) for rows in _blocks(_deskew(lines, _skew(lines)))]
    return [[[[l.line for l in row] for row in p] for p in b] for b in blocks]


def _key(s: str) -> str:
    return re.sub(r"\d+", "#", re.sub(r"\s+", "", s))


def _same(a: str, b: str) -> bool:
    """Two running-line keys that differ by an OCR slip (one character in ten) are the same."""
    import difflib

    return a == b or (min(len(a), len(b)) >= 4 and difflib.SequenceMatcher(None, a, b).ratio() >= 0.85)


def _edges(page: PageOCR) -> set[int]:
    """Indexes of the short lines among the first/last two of the page inside its edge bands."""
    order = sorted(range(len(page.lines)), key=lambda i: page.lines[i].box[1] + page.lines[i].box[3])
    out = set()
    for i in order[:2] + order[-2:]:
        ln = page.lines[i]
        cy = (ln.box[1] + ln.box[3]) / 2
        if len(ln.text) <= 40 and (cy < EDGE * page.height or cy > (1 - EDGE) * page.height):
            out.add(i)
    return out


def running_lines(pages: list[PageOCR | None]) -> list[set[int]]:
    """Per page, the indexes of the lines that are page numbers or running headers/footers.

    >>> from rag.ingest.ocr.lines import OcrLine as L
    >>> def pg(i): return PageOCR([L("县政府文件", (0, 5, 90, 20), 1), L(f"正文第{i}页的内容", (0, 500, 90, 520), 1), L(f"- {i} -", (40, 980, 60, 995), 1)], 100, 1000)
    >>> running_lines([pg(1), pg(2), pg(3)])
    [{0, 2}, {0, 2}, {0, 2}]
    """
    from rag.ingest.boilerplate import boilerplate_kind

    edges = [_edges(p) if p is not None else set() for p in pages]
    keys = [{i: _key(p.lines[i].text) for i in e} for p, e in zip(pages, edges)]
    n = sum(p is not None for p in pages)
    out: list[set[int]] = []
    for k, (p, e) in enumerate(zip(pages, edges)):
        drop = set()
        for i in e:
            on = 1 + sum(any(_same(keys[k][i], o) for o in other.values()) for j, other in enumerate(keys) if j != k)
            text = p.lines[i].text
            if (keys[k][i] and on >= 2 and on >= 0.5 * n) or boilerplate_kind(text, "pdf") == "page-number" \
                    or _PAGE_NO.match(text):
                drop.add(i)
        out.append(drop)
    return out


def join_pieces(pieces: list[str]) -> tuple[str, list[int]]:
    """Concatenate the lines of a paragraph: nothing between CJK, a space between Latin words.
    Returns the text and each piece's start offset.

    >>> join_pieces(["全面贯彻", "落实。", "GDP", "growth"])
    ('全面贯彻落实。GDP growth', [0, 4, 7, 11])
    """
    text, starts = "", []
    for p in pieces:
        if text and re.match(r"[A-Za-z0-9]", p) and re.search(r"[A-Za-z0-9.,;:]$", text):
            text += " "
        starts.append(len(text))
        text += p
    return text, starts
