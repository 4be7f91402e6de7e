"""Tables in text-layer PDFs: found conservatively, written as rows in the rag.ingest.tables form.

pypdf's plain text has no table structure (a reportlab or Word table comes out one cell per
line). Its layout mode keeps the horizontal positions, so a table shows as lines whose cells
are separated by runs of spaces at aligned columns. A *table block* is at least `MIN_ROWS`
consecutive layout lines with the same number (≥ 2) of cells, short cells (at most
`MAX_CELL` characters, `MAX_MEAN` on average) and column starts within `ALIGN` characters
of each other. A block replaces its part of the plain text only where that part is exactly the
block's cells in order (whitespace aside) and covers whole lines, so paragraphs, two-column
prose (whose plain text runs column by column, not row by row) and anything doubtful keep the
plain text as it was. The first row is the header when it looks like one (`rag.ingest.tables.header_rows`).

Deliberate compromises: only pages whose plain text looks tabular (`_worth_layout`: a run of
short lines or lines of several numbers) pay for the second, layout-mode extraction; a cell wrapped over
two lines, a multi-line header or empty cells break the equal-count rule, so such a table stays
plain text (as before). pdfplumber would find ruled tables too, but pulls in pdfminer.six for
every PDF; this stays on pypdf, which the project already uses.
"""

from __future__ import annotations

import re
from typing import Sequence

MIN_ROWS = 3
MAX_CELL = 40
MAX_MEAN = 16
ALIGN = 6
_GAP = re.compile(r"\S+(?: \S+)*")


def layout_cells(line: str) -> list[tuple[int, str]]:
    """(column, text) of each cell of a layout-mode line: runs separated by two spaces or more.

    >>> layout_cells("    2009     11579   3.9%")
    [(4, '2009'), (13, '11579'), (21, '3.9%')]
    """
    return [(m.start(), m.group()) for m in _GAP.finditer(line)]


def _aligned(rows: Sequence[list[tuple[int, str]]], cand: list[tuple[int, str]]) -> bool:
    ref = rows[-1]
    return len(cand) == len(ref) and all(abs(a[0] - b[0]) <= ALIGN for a, b in zip(ref, cand))


def find_blocks(layout: str) -> list[list[list[str]]]:
    """Table blocks (rows of cell texts) in a page's layout-mode text.

    >>> t = "说明文字，不是表格。\\n  年份    收入\\n  2008    10848\\n\\n  2009    11579\\n结束。"
    >>> find_blocks(t)
    [[['年份', '收入'], ['2008', '10848'], ['2009', '11579']]]
    """
    blocks: list[list[list[str]]] = []
    run: list[list[tuple[int, str]]] = []

    def close() -> None:
        cells = [c for r in run for _, c in r]
        if len(run) >= MIN_ROWS and max(map(len, cells)) <= MAX_CELL and sum(map(len, cells)) / len(cells) <= MAX_MEAN:
            blocks.append([[c for _, c in r] for r in run])
        run.clear()

    for line in layout.split("\n"):
        if not line.strip():
            continue  # layout mode spaces rows with blank lines
        cells = layout_cells(line)
        if len(cells) >= 2 and (not run or _aligned(run, cells)):
            run.append(cells)
            continue
        close()
        if len(cells) >= 2:
            run.append(cells)
    close()
    return blocks


def _worth_layout(lines: Sequence[str]) -> bool:
    """Does the plain text look tabular: a run of short lines (one cell per line), or lines mostly
    made of several numbers (one row per line)? Prose with numbers in it does not.

    >>> _worth_layout(["全年地区生产总值达到128.6亿元，比上年增长8.5%，其中第一产业增加值21.3亿元。"] * 9)
    False
    >>> _worth_layout(["2008 10848 9.8%", "2009 11579 3.9%", "2010 12310 4.0%"]), _worth_layout(["长句子的最后一行", "很长的一整行正文，没有结束，接着往下写下去写下去"] * 9)
    (True, False)
    """
    short = run = 0  # the longest run of short lines: one cell per line
    for ln in lines:
        run = run + 1 if 0 < len(ln.strip()) <= 12 else 0
        short = max(short, run)
    numeric = 0
    for ln in lines:
        nums = re.findall(r"\d[\d.,%]*", ln)
        if len(nums) >= 2 and sum(map(len, nums)) >= 0.4 * len("".join(ln.split())):
            numeric += 1
    return short >= 2 * MIN_ROWS or numeric >= MIN_ROWS


def splice(plain: str, blocks: Sequence[list[list[str]]]) -> list[str | list[list[str]]]:
    """The page as items: plain-text lines, and a block's rows in place of the part of `plain`
    that is exactly its cells (whole lines; blocks not found so are left out).

    >>> splice("标题\\n年份\\n收入\\n2009\\n11579\\n完", [[["年份", "收入"], ["2009", "11579"]]])
    ['标题', [['年份', '收入'], ['2009', '11579']], '完']
    """
    pos_of: list[int] = []
    key_chars: list[str] = []
    for i, ch in enumerate(plain):
        if not ch.isspace():
            key_chars.append(ch)
            pos_of.append(i)
    key = "".join(key_chars)
    items: list[str | list[list[str]]] = []
    done, kpos = 0, 0
    for rows in blocks:
        target = "".join("".join(c.split()) for r in rows for c in r)
        k = key.find(target, kpos)
        if k < 0 or not target:
            continue
        a, b = pos_of[k], pos_of[k + len(target) - 1] + 1
        ls, le = plain.rfind("\n", 0, a) + 1, plain.find("\n", b)
        le = len(plain) if le < 0 else le
        if plain[ls:a].strip() or plain[b:le].strip():
            continue  # shares a line with other text: leave it as it is
        items.extend(plain[done:ls].strip("\n").split("\n") if plain[done:ls].strip() else [])
        items.append([list(r) for r in rows])
        done, kpos = le, k + len(target)
    if done == 0:
        return plain.strip("\n").split("\n")
    rest = plain[done:]
    if rest.strip():
        items.extend(rest.strip("\n").split("\n"))
    return items


def page_items(page, plain: str) -> list[str | list[list[str]]]:
    """The page's plain text as lines, with the tables found (see module doc) as row lists."""
    lines = plain.strip("\n").split("\n")
    if not _worth_layout(lines):
        return lines
    try:
        layout = page.extract_text(extraction_mode="layout") or ""
    except Exception:  # layout mode failing on an odd page must not lose its plain text
        return lines
    blocks = find_blocks(layout)
    return splice(plain, blocks) if blocks else lines


def join_page_tables(items: Sequence[str | list[list[str]]]) -> list[str | list[list[str]]]:
    """A table that goes on over a page break — two tables with nothing but blank lines between
    them and the same number of columns — becomes one; the next page's repeat of the header
    row is dropped.

    >>> join_page_tables(["甲", [["年", "值"], ["1", "2"]], "", [["年", "值"], ["3", "4"]], "乙"])
    ['甲', [['年', '值'], ['1', '2'], ['3', '4']], '', '乙']
    """
    out: list = []
    last = -1  # index in out of the last table, while only blank lines follow it
    for it in items:
        if isinstance(it, str):
            out.append(it)
            if it.strip():
                last = -1
            continue
        prev = out[last] if last >= 0 else None
        if prev is not None and len(prev[0]) == len(it[0]):
            prev.extend(it[1:] if it[0] == prev[0] else it)
            continue
        out.append([list(r) for r in it])
        last = len(out) - 1
    return out
