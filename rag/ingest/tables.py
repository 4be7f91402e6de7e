"""Tables: one plain-text form for the rows of .docx, HTML and text-layer PDF tables, and the
structure that lets the chunker repeat a table's header row at the top of every chunk cut from it.

Text form (what the readers in rag.ingest.formats emit, and what chunks and quotes hold):
- one line per row, in document order, the header row(s) first; cells joined by `ROW_SEP`
  (" | "); a cell's own line breaks and whitespace runs become one space; an empty cell stays
  empty (`2009 |  | 3.9%`, one space after cleaning); a row whose cells are all empty is left out.
- merged cells: a cell spanning several columns is written once; a cell spanning several rows
  repeats its text in each of them, so every row reads whole on its own.
- a nested table is flattened into its cell (its rows joined by "；", cells by " ").

Structure: a reader returns `metadata["tables"] = [[start, header_end, end], …]`, offsets into
the text it returns: rows are the lines of text[start:end], the header rows those of
text[start:header_end] (header_end == start: no header). The chunker maps them to clean offsets
(`clean_tables`), treats every row as one unit and never takes a row for a heading.

Header rows: rows the file marks (`<th>`/`<thead>`, Word's "repeat as header row") up to
`MAX_HEADER_ROWS`; else the first row if it looks like labels above data (`header_rows`): no
numeric cell in it, and a numeric cell below it in a column it labels; or, in .docx, all its
text is bold. No header found: the table is still split by rows, with nothing repeated.

Chunks: a chunk that starts at a body row of a table with a header begins with a copy of the
header line (`chunk.metadata["context_prefix"]` = its length in characters, header + newline). It is
context, like a heading: its offset map points at the header's real place in the original, while
`chunk.start/end` is the span of the chunk's own rows. `chunk.metadata["tables"]` holds each
table's `[start, header_end, end]` in chunk.text coordinates (`passage_rows` reads them).
A header longer than a third of `chunk.max_tokens` is not repeated.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

ROW_SEP = " | "
MAX_HEADER_ROWS = 3
_NUMERIC = re.compile(r"^[\s+\-−–—~～至.,，:：/%‰％()（）\d元万亿千百个人年月日次项名户元吨公里平方米亩%]*\d[\s\S]{0,3}$")


def cell_text(s: str) -> str:
    """A cell as it is written in a row: whitespace runs (line breaks too) become one space.

    >>> cell_text(" 人均\\n收入  （元） ")
    '人均 收入 （元）'
    """
    return " ".join(s.split())


def render_row(cells: Sequence[str]) -> str:
    """One row line ('' when every cell is empty).

    >>> render_row(["2009", "", "3.9%"]), render_row(["", " "])
    ('2009 |  | 3.9%', '')
    """
    cells = [cell_text(c) for c in cells]
    return ROW_SEP.join(cells) if any(cells) else ""


def is_numeric(cell: str) -> bool:
    """A data value rather than a label: a number, amount, percentage, year or date.

    >>> [is_numeric(c) for c in ("2009", "11,579元", "3.9%", "2009年", "人均收入", "")]
    [True, True, True, True, False, False]
    """
    return bool(cell.strip()) and bool(_NUMERIC.match(cell.strip()))


def header_rows(rows: Sequence[Sequence[str]], marked: int = 0, bold_first: bool = False) -> int:
    """How many leading rows are the header: the rows the file marks (at most MAX_HEADER_ROWS),
    else 1 when the first row looks like labels above data, else 0.

    >>> header_rows([["年份", "人均收入"], ["2009", "11579"]]), header_rows([["姓名", "职务"], ["张三", "书记"]])
    (1, 0)
    >>> header_rows([["2009", "11579"], ["2010", "12310"]]), header_rows([["姓名", "职务"], ["张三", "书记"]], bold_first=True)
    (0, 1)
    """
    rows = [r for r in rows if any(c.strip() for c in r)]
    if marked:
        return min(marked, MAX_HEADER_ROWS, len(rows))
    if len(rows) < 2:
        return 0
    first = rows[0]
    if not any(c.strip() for c in first) or any(is_numeric(c) for c in first):
        return 0
    if bold_first:
        return 1
    labelled = [k for k, c in enumerate(first) if c.strip()]
    data_below = any(k < len(r) and is_numeric(r[k]) for r in rows[1:] for k in labelled)
    return 1 if data_below else 0


class Lines:
    """The lines a reader emits, with the tables among them (`add_table`); `text()` joins them
    and gives the `[start, header_end, end]` offsets of each table in the joined text."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._tables: list[tuple[int, int, int]] = []  # (first line, header lines, lines)

    def append(self, line: str) -> None:
        self.lines.append(line)

    def extend(self, lines: Iterable[str]) -> None:
        self.lines.extend(lines)

    def add_table(self, rows: Sequence[Sequence[str]], marked: int = 0, bold_first: bool = False) -> None:
        """Add a table's rows (cell texts) as row lines; `marked`: header rows the file marks."""
        rows = [list(r) for r in rows if render_row(r)]
        if not rows:
            return
        head = header_rows(rows, marked, bold_first)
        self._tables.append((len(self.lines), head, len(rows)))
        self.lines.extend(render_row(r) for r in rows)

    def text(self, norm: Callable[[str], str] = lambda s: s, drop_empty: bool = True) -> tuple[str, list[list[int]]]:
        """The lines normalised by `norm`, empty ones dropped (unless not `drop_empty`), joined
        by newlines; the tables."""
        out: list[str] = []
        starts: list[int] = []  # char offset of each kept input line (or where it would be)
        pos = 0
        for ln in self.lines:
            s = norm(ln)
            starts.append(pos)
            if s or not drop_empty:
                out.append(s)
                pos += len(s) + 1
        starts.append(pos)
        text = "\n".join(out)
        tables = []
        for first, head, n in self._tables:
            a, h, e = starts[first], starts[first + head], starts[first + n]
            tables.append([a, max(a, h - 1) if head else a, max(a, e - 1)])
        return text, [t for t in tables if t[2] > t[0]]


_MD_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(?:\|\s*:?-{3,}:?\s*)*\|?\s*$")


def markdown_tables(text: str) -> list[list[int]]:
    """`[start, header_end, end]` of each Markdown pipe table (`| a | b |`, then a `|---|---|`
    rule line, then rows) in `text`: the line above the rule is the header.

    >>> t = "说明\\n| 年份 | 收入 |\\n|---|---|\\n| 2009 | 5 |\\n正文"
    >>> [t[a:h] for a, h, e in markdown_tables(t)], [t[h:e] for a, h, e in markdown_tables(t)]
    (['| 年份 | 收入 |'], ['\\n|---|---|\\n| 2009 | 5 |'])
    """
    lines, pos = [], 0
    for ln in text.split("\n"):
        lines.append((pos, pos + len(ln.rstrip("\r")), ln.rstrip("\r")))
        pos += len(ln) + 1
    out, i = [], 1
    while i < len(lines):
        if _MD_RULE.match(lines[i][2]) and "|" in lines[i][2] and "|" in lines[i - 1][2] and lines[i - 1][2].strip():
            j = i + 1
            while j < len(lines) and "|" in lines[j][2] and lines[j][2].strip():
                j += 1
            out.append([lines[i - 1][0], lines[i - 1][1], lines[j - 1][1]])
            i = j
        i += 1
    return out


# ---------------------------------------------------------------------------------------------
# chunk side


@dataclass(frozen=True)
class TableSpan:
    """A table in clean text: rows are the lines of clean[start:end], the header clean[start:header_end]."""

    start: int
    header_end: int
    end: int

    @property
    def has_header(self) -> bool:
        return self.header_end > self.start


def clean_tables(doc) -> list[TableSpan]:
    """The document's tables (`metadata["tables"]`, original offsets) in clean offsets, snapped
    to whole lines; tables cleaning removed are dropped.

    >>> from rag.types import Document
    >>> d = Document("d", "d", "t", "说明\\n年份 | 收入\\n2009 | 5", "说明\\n年份 | 收入\\n2009 | 5", range(19), {"tables": [[3, 10, 19]]})
    >>> clean_tables(d)
    [TableSpan(start=3, header_end=10, end=19)]
    """
    raw = (doc.metadata or {}).get("tables") or []
    clean, offs = doc.clean, doc.offsets
    out: list[TableSpan] = []
    for t in raw:
        try:
            a, h, e = (int(x) for x in t)
        except (TypeError, ValueError):
            continue
        cs, ch, ce = bisect_left(offs, a), bisect_left(offs, h), bisect_left(offs, e)
        cs = clean.rfind("\n", 0, cs) + 1
        if ce <= cs:
            continue
        nl = clean.find("\n", ce - 1)
        ce = len(clean) if nl < 0 else nl
        if ch > cs:
            nl = clean.find("\n", ch - 1, ce)
            ch = ce if nl < 0 else nl
        ch = max(cs, min(ch, ce))
        if out and cs < out[-1].end:
            continue  # overlapping spans: keep the first
        out.append(TableSpan(cs, ch, ce))
    return out


def table_lines(clean: str, tables: Sequence[TableSpan]) -> set[int]:
    """Line numbers of clean (split on newlines) that are table rows: never headings."""
    out: set[int] = set()
    for t in tables:
        first = clean.count("\n", 0, t.start)
        out.update(range(first, first + clean.count("\n", t.start, t.end) + 1))
    return out


def header_prefix(clean: str, tables: Sequence[TableSpan], units: Sequence, max_tokens: int, count: Callable[[str], int]) -> Callable[[int], str]:
    """`prefix(i)` for rag.chunk.pack.pack_units: a chunk starting at unit i, a body row of a table with
    a header of at most max_tokens/3 tokens, begins with that header line and a newline."""
    heads: dict[int, str] = {}
    for k, t in enumerate(tables):
        if t.has_header:
            h = clean[t.start : t.header_end] + "\n"
            if count(h) <= max_tokens // 3:
                heads[k] = h

    def prefix(i: int) -> str:
        u = units[i]
        return heads.get(u.table, "") if u.table >= 0 and not u.head else ""

    return prefix


def chunk_tables(tables: Sequence[TableSpan], a: int, b: int, prefix: str) -> list[list[int]]:
    """`[start, header_end, end]` in chunk.text coordinates of each table a chunk holds: the
    chunk is clean[a:b] behind `prefix` (a repeated header line, or '').

    >>> chunk_tables([TableSpan(0, 7, 30)], 15, 22, "年份 | 收入\\n")
    [[0, 7, 15]]
    >>> chunk_tables([TableSpan(5, 12, 30)], 0, 40, "")
    [[5, 12, 30]]
    """
    out = []
    shift = len(prefix) - a
    for t in tables:
        s, e = max(a, t.start), min(b, t.end)
        if e <= s:
            continue
        if prefix and t.start < a <= t.end:
            out.append([0, len(prefix) - 1, e + shift])
        else:
            out.append([s + shift, max(s, min(t.header_end, e)) + shift, e + shift])
    return out


def passage_rows(passage) -> list[tuple[int, int, str]]:
    """(start, end, header line) of each body row of a table with a header in `passage.text`
    (from `passage_table_lines`), for reading a row with its column names."""
    text = passage.text
    out: list[tuple[int, int, str]] = []
    for pos, head in passage_table_lines(passage).items():
        if head < 0 or pos == head:
            continue
        end, hend = text.find("\n", pos), text.find("\n", head)
        end, hend = len(text) if end < 0 else end, len(text) if hend < 0 else hend
        header = text[head:hend]
        if text[pos:end] != header:  # a continuation chunk's copy of the header, merged in
            out.append((pos, end, header))
    return out


def labelled_row(header: str, row: str) -> str:
    """A row read with its column names, for an answer that quotes it: `列名：值，…` when header
    and row have as many cells, else `header：row` (both verbatim from the passage).

    >>> labelled_row("年份 | 人均收入（元） | 增长率", "2009 | 11579 | 3.9%")
    '年份：2009，人均收入（元）：11579，增长率：3.9%'
    >>> labelled_row("年份 | 收入", "2009 | | 3.9%")
    '年份 | 收入：2009 | | 3.9%'
    """
    hs, rs = re.split(r"\s*\|\s*", header.strip()), re.split(r"\s*\|\s*", row.strip())
    if len(hs) != len(rs):
        return f"{header}：{row}"
    return "，".join(f"{h}：{v}" if h else v for h, v in zip(hs, rs) if v)


def passage_table_lines(passage) -> dict[int, int]:
    """{start of a table line in `passage.text`: start of its table's header line (itself for a
    header line; -1 for a row of a table without header)} — for showing rows with their header.

    >>> from rag.types import Chunk, Hit, Passage
    >>> t = "说明。\\n年份 | 收入\\n2008 | 5\\n2009 | 6"
    >>> c = Chunk("d#0", "d", 0, "", (), t, 0, len(t), metadata={"tables": [[4, 11, len(t)]]})
    >>> passage_table_lines(Passage.from_hit(1, Hit(c, 1.0, 1)))
    {4: 4, 12: 4, 21: 4}
    """
    out: dict[int, int] = {}
    text = passage.text
    for chunk, off in passage.parts:
        for s, h, e in chunk.metadata.get("tables") or ():
            head = off + s if h > s else -1
            pos, end = off + s, min(off + e, len(text))
            while pos < end:
                nl = text.find("\n", pos, end)
                nl = end if nl < 0 else nl
                if nl > pos:
                    out[pos] = head
                pos = nl + 1
    return out
