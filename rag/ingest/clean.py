"""Cleaning: original text → clean text + offset map (`clean[i]` came from `text[offsets[i]]`).

What is removed or repaired, by general rules (none of them names a particular site or file):
- Web page residue, line by line: breadcrumbs (`您的位置：首页 > 新闻 > …`, or ≥2 `>`/`›`/`»`
  separators between short segments), search/share/follow widgets (short lines made only of
  widget words: 搜索 分享 微博 微信 Qzone 收藏 打印 关注… — compared after t2s folding so both
  scripts match), pagination (`[1] [2] 下一页 尾页`, `共5页`), editor lines (`责任编辑：…`), empty
  Markdown image/table residue (`![]() |`, `|||`, `|---|`); after the editor line, short
  non-sentence lines (related-links lists, ranking boxes) are page furniture too.
- A document-sharing site's blurb sentence (`本站精心为大家整理了…，希望对你有帮助。`).
- OCR/PDF artefacts: page-number lines (`-1-`, `- 12 -`, `第 3 页`, `Page 3 of 9`; bare numbers
  only in PDFs), `‚…‛` used as quotation marks (→ `“…”`), runs of `„` (→ `……`), characters OCR
  confuses (`OCR_CHAR_FIXES`, e.g. 臵→置 as in 设臵→设置), private-use glyphs of symbol fonts,
  zero-width characters, and lines broken mid-sentence (re-joined, see
  `rag.ingest.linejoin.should_join`).
- The head of the page: the date/source line (`2010-11-26 16:40:32 來源:東北網 作者:`) and the
  title line above it become metadata (date, datetime, source_name, author) and leave the body;
  a `——副标题` line right after the title joins the title.
- Markdown: YAML front matter becomes metadata (title, date, author); fenced code is kept as it
  is (no repairs, never joined).

Whitespace runs inside a line collapse to one space; lines are trimmed; blank lines disappear
(the clean text has one paragraph/heading per line). Every kept or substituted character maps to
the original character it came from; a character that replaces several (`„ „ „„` → `……`, a run
of spaces → one space, the newline between joined lines) maps to the first of them. Offsets are
an `array('i')` (4 bytes per character) so a 50 MB file does not explode into Python ints.

Compromise: rules are heuristics over lines. A line that is short and unpunctuated is treated as
a possible heading and never glued to its neighbour unless the break splits a word (checked with
jieba) — this keeps headings intact at the price of leaving a few broken title-like lines apart.

Where the rules live: page furniture in `rag.ingest.boilerplate`, the in-line repairs in
`rag.ingest.repair`, the date/source line in `rag.ingest.dateline`, re-joining in
`rag.ingest.linejoin`, heading rules in `rag.chunk.headings`; this module runs them over the
lines of a text, takes the page's head into metadata and assembles the clean text.
"""

from __future__ import annotations

import re
from array import array
from dataclasses import dataclass, field

from rag.chunk.headings import heading_marker, is_bullet, is_label_line
from rag.ingest.boilerplate import EDITOR, EDITOR_ROLES, WS, boilerplate_kind
from rag.ingest.dateline import parse_date, parse_dateline
from rag.ingest.linejoin import SENT_INSIDE, should_join, splits_word, wrap_width
from rag.ingest.repair import OCR_CHAR_FIXES, repair_line

__all__ = ["Cleaned", "clean_text", "parse_date", "parse_dateline", "repair_line", "boilerplate_kind",
           "splits_word", "wrap_width", "OCR_CHAR_FIXES"]

# ---------------------------------------------------------------------------------------------
# result type


@dataclass
class Cleaned:
    clean: str
    offsets: array  # array('i'), len == len(clean)
    title: str = ""
    metadata: dict = field(default_factory=dict)  # date, datetime, source_name, author, editor, subtitle
    title_span: tuple[int, int] | None = None  # original span of the title line, if it came from the text


# ---------------------------------------------------------------------------------------------
# the pipeline

_GLUED_BULLET = re.compile(r"(?<=\S)[ \t\u3000]+(?=[●■◆▪•]\s*\S)")


@dataclass
class _Line:
    text: str
    offs: array
    end: int  # index in the original of the character after the line (its newline)
    gap: bool  # a blank line (or removed widget) separates it from the previous kept line


def _split_glued(s: str, offs: array, end: int) -> list[tuple[str, array, int]]:
    """OCR glues bullet lines together ('…有机统一 ●巴洲…'): give each bullet its own line."""
    if not any(b in s for b in "●■◆▪•"):
        return [(s, offs, end)]
    out = []
    last = 0
    for m in _GLUED_BULLET.finditer(s):
        out.append((s[last : m.start()], offs[last : m.start()], offs[m.start()]))
        last = m.end()
    out.append((s[last:], offs[last:], end))
    return out


def _front_matter(text: str) -> tuple[int, dict]:
    r"""Markdown YAML front matter (`---` … `---` at the very top): (where the body starts, its
    simple `key: value` pairs). No front matter: (0, {}).

    >>> _front_matter("---\ntitle: 报告\ndate: 2021-03-04\n---\n正文")
    (35, {'title': '报告', 'date': '2021-03-04'})
    """
    if not text.startswith("---"):
        return 0, {}
    lines = text.split("\n", 80)
    if lines[0].strip() != "---":
        return 0, {}
    pos = len(lines[0]) + 1
    fm: dict = {}
    for ln in lines[1:80]:
        if ln.strip() in ("---", "..."):
            return pos + len(ln) + 1, fm
        m = re.match(r"^([A-Za-z_][\w-]*)\s*:\s*(.*?)\s*$", ln)
        if m:
            fm[m.group(1).lower()] = m.group(2).strip("\"'")
        pos += len(ln) + 1
    return 0, {}


def _title_like(s: str) -> bool:
    if not (2 <= len(s) <= 80) or re.search(r"[。；;，,、:：]$", s):
        return False
    if is_bullet(s) or is_label_line(s):
        return False
    hm = heading_marker(s)
    return hm is None or hm.style == "md1"


def _norm_title(s: str) -> str:
    return re.sub(r"[\s#]+", "", s).lower()


def clean_text(text: str, fmt: str = "text", title_hint: str = "") -> Cleaned:
    """Clean `text` (see module doc). `fmt` is text|markdown|html|docx|pdf: re-joining broken
    lines applies to text/markdown/pdf (html/docx paragraphs are authored, not wrapped) and bare
    page numbers are dropped only from PDFs. `title_hint` (HTML <h1>/<title>, DOCX/PDF
    properties) is preferred as the title; a body line equal to it is removed."""
    meta: dict = {}
    pos = 0
    if fmt == "markdown":
        pos, title_hint = _markdown_head(text, meta, title_hint)
    lines, editor_at = _read_lines(text, pos, fmt, meta)
    if editor_at is not None and editor_at >= len(lines) / 2:
        _drop_after_editor(lines, editor_at)

    title, title_span = _take_head(lines, meta, title_hint)

    if fmt in ("text", "markdown", "pdf"):
        lines = _rejoin(lines)

    clean, offsets = _assemble(lines, len(text))
    return Cleaned(clean, offsets, title, meta, title_span)


def _markdown_head(text: str, meta: dict, title_hint: str) -> tuple[int, str]:
    """Markdown front matter: (where the body starts, the title hint, unless one was given);
    its date and author go into `meta`."""
    pos, fm = _front_matter(text)
    if fm.get("title") and not title_hint:
        title_hint = fm["title"]
    if fm.get("date") and parse_date(fm["date"]):
        meta["date"] = parse_date(fm["date"])
    if fm.get("author"):
        meta["author"] = fm["author"]
    return pos, title_hint


def _read_lines(text: str, pos: int, fmt: str, meta: dict) -> tuple[list[_Line], int | None]:
    """The kept lines of `text` from `pos` on: repaired, split where OCR glued bullets together,
    page furniture left out (an editor's name goes into `meta`); and the index in them of the
    first line after the first editor line ("责任编辑：…"), None without one."""
    lines: list[_Line] = []
    gap = False
    editor_at: int | None = None  # index in `lines` of the first line after "责任编辑：…"
    in_fence = False
    n = len(text)
    while pos <= n:
        nl = text.find("\n", pos)
        if nl < 0:
            nl = n
        raw = text[pos:nl]
        s = raw.strip(WS + "\r")
        if fmt == "markdown" and s.startswith(("```", "~~~")):
            in_fence = not in_fence
        if in_fence or (fmt == "markdown" and s.startswith(("```", "~~~"))):
            if s:  # code is kept as it is: no repairs, no boilerplate rules, never joined
                lead = len(raw) - len(raw.lstrip(WS + "\r"))
                lines.append(_Line(s, array("i", range(pos + lead, pos + lead + len(s))), nl, True))
            gap = True
        elif not s:
            gap = True
        else:
            lead = len(raw) - len(raw.lstrip(WS + "\r"))
            offs = array("i", range(pos + lead, pos + lead + len(s)))
            s, offs = repair_line(s, offs)
            for s, offs, end in _split_glued(s, offs, nl):
                kind = boilerplate_kind(s, fmt) if s else "blank"
                if kind is None:
                    lines.append(_Line(s, offs, end, gap))
                    gap = False
                elif kind == "editor":
                    m = EDITOR.match(s)
                    if editor_at is None and m and m.group(1) in EDITOR_ROLES:
                        editor_at = len(lines)
                    if m and m.group(2) and "editor" not in meta and m.group(1) in ("责任编辑", "責任編輯", "责编", "責編"):
                        meta["editor"] = m.group(2)
                    gap = True
                elif kind != "page-number":  # page numbers sit inside broken sentences: no gap
                    gap = True
        pos = nl + 1
    return lines, editor_at


def _drop_after_editor(lines: list[_Line], editor_at: int) -> None:
    """An editor line in the second half of the page ends the article: what follows and is not a
    sentence is a related-links list or a ranking box, left out (in place). (The caller checks
    the half: an editor line near the top, as some sites have, does not make the article's
    headings disappear.)"""
    tail, dropped = [], False
    for ln in lines[editor_at:]:
        if len(ln.text) > 40 or SENT_INSIDE.search(ln.text):
            ln.gap = ln.gap or dropped
            tail.append(ln)
            dropped = False
        else:
            dropped = True
    lines[editor_at:] = tail


def _assemble(lines: list[_Line], n: int) -> tuple[str, array]:
    """The clean text (one kept line per line) and its offsets into the original of length `n`;
    a line break maps to the end of the line before it."""
    parts: list[str] = []
    offsets = array("i")
    for i, ln in enumerate(lines):
        if i:
            parts.append("\n")
            prev = lines[i - 1]
            offsets.append(min(prev.end, n - 1) if n else 0)
        parts.append(ln.text)
        offsets.extend(ln.offs)
    clean = "".join(parts)
    assert len(clean) == len(offsets)
    return clean, offsets


def _take_head(lines: list[_Line], meta: dict, title_hint: str) -> tuple[str, tuple[int, int] | None]:
    """Move the title, subtitle and date/source line at the top of the page into metadata."""
    title = ""
    title_idx: int | None = None
    head = min(len(lines), 15)
    dl = None
    for i in range(head):
        info = parse_dateline(lines[i].text)
        if info is not None:
            dl = i
            meta.update(info)
            break
    drop: set[int] = set()
    if dl is not None:
        drop.add(dl)
        if dl > 0 and _title_like(lines[dl - 1].text):
            title_idx = dl - 1
    if title_hint:
        hint = _norm_title(title_hint)
        for i in range(min(len(lines), 5)):
            if i not in drop and _norm_title(lines[i].text) == hint:
                title_idx = i
                break
    if title_idx is None and title_hint == "" and lines:
        first = min((i for i in range(len(lines)) if i not in drop), default=None)
        if first is not None:
            s = lines[first].text
            hm = heading_marker(s)
            if hm is not None and hm.style.startswith("article") and hm.whole_line:
                # "第一篇：标题" names the file's first article: keep it in the body as a heading
                title = s[hm.end :].strip(" :：、.．")
            elif _title_like(s) and len(lines) > first + 1 and not re.search(r"[，,]", s):
                # (a first line with commas is more often a paragraph fragment than a title)
                title_idx = first
    span = None
    if title_idx is not None:
        ln = lines[title_idx]
        title = re.sub(r"^#+\s*", "", ln.text)
        span = (ln.offs[0], ln.offs[-1] + 1) if len(ln.offs) else None
        drop.add(title_idx)
        j = title_idx + 1
        while j in drop:
            j += 1
        if j < len(lines) and re.match(r"^(?:——|--|—)\s*\S", lines[j].text) and len(lines[j].text) <= 60:
            title = f"{title} {lines[j].text}"
            meta["subtitle"] = lines[j].text.lstrip("—- ")
            drop.add(j)
    if title_hint and not title:
        title = title_hint.strip()
    if drop:
        for i in drop:  # text on either side of a removed head line is not one sentence
            if i + 1 < len(lines):
                lines[i + 1].gap = True
        lines[:] = [ln for i, ln in enumerate(lines) if i not in drop]
    return title, span


def _rejoin(lines: list[_Line]) -> list[_Line]:
    width = wrap_width([len(ln.text) for ln in lines])
    out: list[_Line] = []
    for i, ln in enumerate(lines):
        # the width test looks at the original line (before joining), not the growing paragraph
        if out and not ln.gap and should_join(out[-1].text, ln.text, width, len(lines[i - 1].text)):
            prev = out[-1]
            sep = ""
            if re.match(r"[A-Za-z0-9]", prev.text[-1]) and re.match(r"[A-Za-z0-9]", ln.text[0]):
                sep = " "  # wrapped Latin text needs its space back
            offs = array("i", prev.offs)
            if sep:
                offs.append(prev.end)
            offs.extend(ln.offs)
            out[-1] = _Line(prev.text + sep + ln.text, offs, ln.end, prev.gap)
        else:
            out.append(ln)
    return out
