"""Heading recognition, line by line on the clean text: which line starts a heading, in which
numbering style, and where its text ends and the body on the same line begins.

Recognised:
- `第X篇` (a new article in the file: resets the heading stack), `第X章/节/部分/编/卷/讲/条`;
- outline numbering `一、` `（一）`/`(一)`/`㈠` `1.` (and `1.2` deeper) `1、` `（1）`/`⑴` `①`;
- bracketed headings `【大门外】`, Markdown `#`…`######`, appendices `附件：…`;
- short title lines (`is_title_candidate`): at most 40 characters, no sentence punctuation, not a
  `label:` line or a bullet; whether one *is* a heading depends on what follows it, which
  rag.chunk.sections decides.
A numbered line that carries its body (`1、“党性教育”活动。以“三个一”活动为载体…`) yields an inline
heading: its first sentence (≤ 40 chars) or the part before a `中文 中文` gap; a numbered line
whose first sentence is longer is a numbered paragraph, not a heading. `第三条 本办法…`
(regulations): the article number is the heading, the rest its text.

Split out of rag/chunk/sections.py (structure and chunks) so that rag.ingest.clean and
rag.ingest.linejoin, which must not glue a heading to its neighbour, and the OCR layout reader
import these rules at load time without importing the chunker.

Compromise: all of this is line-level heuristics on plain text. Where OCR merged a title into
the middle of a paragraph, or a title line reads like a sentence, the heading is missed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_CN_NUM = "一二三四五六七八九十百千零〇两"
_UNITS = {
    "篇": "article", "章": "chapter", "节": "section", "節": "section", "部分": "part", "编": "book",
    "編": "book", "卷": "volume", "讲": "lecture", "講": "lecture", "条": "clause", "條": "clause",
}
_MARKERS: list[tuple[str, re.Pattern]] = [
    ("md", re.compile(r"^(#{1,6})[ \t]+(?=\S)")),
    ("unit", re.compile(rf"^第\s*[{_CN_NUM}\d]{{1,4}}\s*(篇|章|节|節|部分|编|編|卷|讲|講|条|條)(?![{_CN_NUM}\d])\s*[:：、.．]?\s*")),
    ("appendix", re.compile(r"^附\s*(?:件|录|錄|表)?\s*[\d一二三四五六七八九十]{0,3}\s*[:：]\s*")),
    ("cn-num", re.compile(rf"^[{_CN_NUM}]{{1,3}}\s*[、.．]\s*")),
    ("cn-paren", re.compile(rf"^(?:[(（]\s*[{_CN_NUM}]{{1,3}}\s*[)）]|[\u3220-\u3229])\s*[、.．]?\s*")),
    ("num-paren", re.compile(r"^(?:[(（]\s*\d{1,3}\s*[)）]|[\u2474-\u2487])\s*[、.．]?\s*")),
    ("circled", re.compile(r"^[\u2460-\u2473]\s*[、.．]?\s*")),
    ("num-dun", re.compile(r"^\d{1,3}\s*、\s*")),
    ("num-dot", re.compile(r"^(\d{1,3})((?:[.．]\d{1,3})*)(?:[.．](?!\d)\s*|(?<=\d)[ \t]+(?=\D))")),
    ("bracket", re.compile(r"^【([^】\n]{1,30})】\s*")),
]
_SENT_END = re.compile(r"[。！？!?]")
_SENT_END_CLOSED = re.compile(r"[。！？!?]+[”’」』）)】》]*")
_TRAILING_END = re.compile(r"[。！？!?；;]*[”’」』）)】》]*$")
SENT_END_ANY = re.compile(r"[。！？!?；;]")  # a sentence or clause end anywhere (also: a `——副标题` line has none)
_GAP = re.compile(r"(?<=[\u3400-\u9fff”’」』）)])[ \u3000]+(?=[\u3400-\u9fff“‘「『（(])")
MAX_HEADING = 40  # characters of a heading (short title line, or the first sentence of a numbered line)


@dataclass(frozen=True)
class HeadingMarker:
    """A heading found at the start of a line.

    `style` names the numbering style (nesting is decided per document by first appearance);
    `end` is where the marker itself ends ("一、"), `head_end` where the heading text ends and
    `body_start` where body text on the same line starts (== len(line) for a whole-line heading).
    """

    style: str
    end: int
    head_end: int
    body_start: int
    whole_line: bool

    def text(self, line: str) -> str:
        head = line[self.end : self.head_end] if self.style.startswith("md") else line[: self.head_end]
        return re.sub(r"\s+", " ", head).strip(" 。．.#:：、")


def _match_marker(line: str) -> tuple[str, str, re.Match] | None:
    """(kind, style, match) of the numbering/heading marker at the start of `line`."""
    if not line:
        return None
    for kind, rx in _MARKERS:
        m = rx.match(line)
        if not m:
            continue
        if kind == "md":
            return kind, f"md{len(m.group(1))}", m
        if kind == "unit":
            return kind, _UNITS[m.group(1)], m
        if kind == "num-dot":
            if not m.group(2) and not re.match(r"\d{1,3}[.．]", line):
                continue  # "12 个…": a bare number followed by a space is not numbering
            return kind, f"num-dot{1 + m.group(2).count('.') + m.group(2).count('．')}", m
        return kind, kind, m
    return None


def marker_style(line: str) -> str | None:
    """Numbering style at the start of `line`, heading or not ('num-dun' for '1、…')."""
    found = _match_marker(line)
    return found[1] if found else None


def heading_marker(line: str) -> HeadingMarker | None:
    """Heading at the start of `line` (a trimmed clean line), or None.

    >>> m = heading_marker("1、“党性教育”活动。以“三个一”活动为载体，对党员进行教育，坚持不懈，久久为功。")
    >>> m.style, m.whole_line, m.text("1、“党性教育”活动。以“三个一”活动为载体…")
    ('num-dun', False, '1、“党性教育”活动')
    >>> heading_marker("一、抓領導,以上帶下,增強示范性").whole_line
    True
    >>> heading_marker("2010年，我们…") is None
    True
    """
    found = _match_marker(line)
    if found is None:
        return None
    kind, style, m = found
    end = m.end()
    if kind == "md":
        return HeadingMarker(style, end, len(line), len(line), True)
    if end >= len(line):
        if kind in ("unit", "bracket"):
            return HeadingMarker(style, end, len(line), len(line), True)
        return None  # a lone "1." is not a heading
    if kind == "bracket":
        # 【标题】 alone, or 【编者按】 followed by the text it introduces
        return HeadingMarker(style, end, end, end, False) if line[end:].strip() else HeadingMarker(style, end, len(line), len(line), True)
    body_chars = line[end:]
    if not re.search(r"[\w\u3400-\u9fff]", body_chars):
        return None
    if style == "clause":
        # "第三条 本办法所称…": the article number is the heading, its text is the body
        return HeadingMarker(style, end, len(line[:end].rstrip(" :：、.．")), end, False)
    # whole line: short, no sentence end except possibly the final one (and its closers)
    core = _TRAILING_END.sub("", line)
    if len(line) <= MAX_HEADING + 10 and not SENT_END_ANY.search(core):
        return HeadingMarker(style, end, len(line), len(line), True)
    se = _SENT_END_CLOSED.search(line, end)
    if se and se.start() - end <= MAX_HEADING:
        rest = line[se.end() :]
        rest_start = se.end() + (len(rest) - len(rest.lstrip()))
        if rest.strip():
            return HeadingMarker(style, end, se.start(), rest_start, False)
        return HeadingMarker(style, end, len(line), len(line), True)
    g = _GAP.search(line, end, end + MAX_HEADING + 1)
    if g and not SENT_END_ANY.search(line, end, g.start()):
        return HeadingMarker(style, end, g.start(), g.end(), False)
    if kind == "unit":
        return HeadingMarker(style, end, end, end, False)  # "第二章 <a long sentence>": the marker
    if kind == "appendix":
        return HeadingMarker(style, end, len(line), len(line), True)
    return None  # a numbered paragraph, not a heading


_BULLET = re.compile(r"^(?:[●•·▪■◆◇○□►▶√※◎★☆]|——|[-*+][ \t])")
_LABEL = re.compile(r"^(?!第)[^\s:：,，。；;、]{1}[^:：,，。；;、]{0,5}[:：]\s*\S")


def is_bullet(line: str) -> bool:
    """● • ▪ ■ ◆ … — and Markdown '- ' list items."""
    return bool(_BULLET.match(line))


def is_label_line(line: str) -> bool:
    """`字幕:…`, `组 长:刘继东`, `时间:…` — a short label, a colon, a value."""
    return bool(_LABEL.match(line)) and not line.startswith(("http:", "https:"))


# photo captions and by-lines are short and unpunctuated too, but never headings
_CAPTION = re.compile(r"^[（(]?\s*(?:图[为片\d:：]|圖[為片\d:：]|▲|△|↑|本报记者|本報記者|记者\s|記者\s|通讯员|通訊員|摄影|攝影)")


def is_title_candidate(line: str) -> bool:
    """Could `line` be a short title line (without numbering)? At most MAX_HEADING characters, at
    least two letters, no sentence punctuation, not ending in a continuing mark, not a bullet or
    label line. (Whether it *is* a heading also depends on what follows: see `parse_sections`.)

    >>> is_title_candidate("找准活動與中心工作的結合點"), is_title_candidate("这是我局的国库支付中心。")
    (True, False)
    """
    if not (2 <= len(line) <= MAX_HEADING):
        return False
    if SENT_END_ANY.search(line) or line[-1] in "，,、：:…—-(（“‘《「『":
        return False
    clauses = re.split(r"[，,]", line)
    if len(clauses) > 1 and len(clauses[-1].strip()) <= 3:
        return False  # "…委员会办公室，办公室": a sentence cut short, not a title
    if is_bullet(line) or is_label_line(line) or _CAPTION.match(line):
        return False
    if "|" in line or line.startswith(("```", "~~~")):
        return False  # a table row, a code fence
    if len(re.findall(r"[\u3400-\u9fffA-Za-z]", line)) < 2:
        return False
    if heading_marker(line) is not None:
        return False
    return True
