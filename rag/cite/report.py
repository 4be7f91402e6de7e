"""Answers → a document ready to paste into a report: Markdown, HTML or DOCX.

Each question is followed by its answer; every valid citation becomes a footnote-style number,
and one source list at the end, numbered once across all answers (the same sentence of the same
file cited twice gets one number), names the document title, section path, date, publisher
(来源), file, the character span in the original file, and the quoted sentence. Unsupported
citations are never listed. A refused answer lists its closest passages instead.

Quotes are the original characters of the file; only line breaks inside a quote are shown as a
space (a footnote is one line), the span still points at the exact characters.

Claims (`Answer.claims`): a verified statement is shown as before, with its numbered sources; an
unverified one is marked in every format — Markdown `*…*（⚠未核实：…）`, HTML
`<span class="claim-unverified">` (the web chat's class), DOCX an italic grey run followed by
"（未核实：…）" — and never gets a source number. A follow-up that was rewritten into a
standalone question gets a "理解为：…" line under its heading. `claim_segments` and
`understood_as` are shared with the web chat (ui/render.py) and `rag ask`.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from rag.text.markers import statements
from rag.text.norm import t2s
from rag.types import Answer, Citation, Claim


@dataclass(frozen=True)
class Source:
    number: int
    citation: Citation

    @property
    def date(self) -> str:
        return str(self.citation.metadata.get("date") or "")[:10]

    @property
    def publisher(self) -> str:
        m = self.citation.metadata
        return str(m.get("source_name") or m.get("publisher") or "")


def _flat(text: str) -> str:
    return re.sub(r"\s*\n\s*", " ", text).strip()


def _assign(answer: Answer, registry: dict[tuple, Source], order: list[Source]) -> list[tuple[int, int, list[int]]]:
    """Map each marker group of the answer's text to global source numbers.

    Returns [(group_start, group_end, [numbers])]. A marker 【n】 is matched to the supported
    citation of passage n whose statement comes first in the text and is not used yet, so two
    statements citing one passage keep their own quotes.
    """
    cites = [c for c in answer.citations if c.supported]
    text_s = t2s(answer.text)

    def pos(c: Citation) -> int:
        i = text_s.find(t2s(c.statement)) if c.statement else -1
        return i if i >= 0 else len(text_s)

    cites.sort(key=pos)
    used: set[int] = set()
    groups: list[tuple[int, int, list[int]]] = []
    for st in statements(answer.text):
        nums: list[int] = []
        for n in st.numbers:
            cands = [i for i, c in enumerate(cites) if c.n == n]
            if not cands:
                continue
            free = [i for i in cands if i not in used]
            i = free[0] if free else cands[-1]
            used.add(i)
            c = cites[i]
            key = (c.doc_id, c.quote_start, c.quote_end) if c.metadata.get("quote_exact", True) else (c.chunk_id,)
            if key not in registry:
                registry[key] = Source(len(order) + 1, c)
                order.append(registry[key])
            g = registry[key].number
            if g not in nums:
                nums.append(g)
        groups.append((st.group_start, st.group_end, nums))
    return groups


@dataclass(frozen=True)
class Segment:
    """A stretch of `Answer.text`: one claim's statement, or text between claims (connectives,
    punctuation, markers) when `claim` is None. `start`/`end` is its span in `Answer.text`."""

    text: str
    start: int
    end: int
    claim: Claim | None = None

    @property
    def unverified(self) -> bool:
        return self.claim is not None and not self.claim.verified


def claim_segments(answer: Answer) -> list[Segment]:
    """`answer.text` cut at its claims' spans, in order; the texts concatenate to `answer.text`.
    A claim whose span does not hold its text is looked up by its text after the previous one
    (and left out if absent), so a stale span never marks the wrong words.

    >>> from rag.types import Claim
    >>> a = Answer("问", "甲是一【1】。乙是二。", (), False, (), {}, "m",
    ...            claims=(Claim("甲是一", 0, 3, "verified", (1,)), Claim("乙是二", 7, 10, "unverified")))
    >>> [(s.text, s.claim.status if s.claim else None) for s in claim_segments(a)]
    [('甲是一', 'verified'), ('【1】。', None), ('乙是二', 'unverified'), ('。', None)]
    """
    text = answer.text or ""
    out: list[Segment] = []
    pos = 0
    for c in sorted(answer.claims, key=lambda c: (c.start, c.end)):
        start, end = c.start, c.end
        if not (pos <= start < end <= len(text)) or text[start:end] != c.text:
            i = text.find(c.text, pos) if c.text else -1
            if i < 0:
                continue
            start, end = i, i + len(c.text)
        if start > pos:
            out.append(Segment(text[pos:start], pos, start))
        out.append(Segment(text[start:end], start, end, c))
        pos = end
    if pos < len(text):
        out.append(Segment(text[pos:], pos, len(text)))
    return out


def understood_as(answer: Answer) -> str:
    """The standalone question the system answered, when it differs from what was asked (a
    rewritten follow-up, a translated question); "" otherwise. Shown as "理解为：…", never as
    part of the answer.

    >>> understood_as(Answer("那乙呢？", "", (), True, (), {}, "m", standalone_question="乙哪年成立？"))
    '乙哪年成立？'
    >>> understood_as(Answer("甲？", "", (), True, (), {}, "m", standalone_question=" 甲？"))
    ''
    """
    sq = _flat(answer.standalone_question or "")
    return sq if sq and sq != _flat(answer.question or "") else ""


def unverified_note(claim: Claim, sep: str = "：") -> str:
    """"未核实" plus what the documents lack, e.g. "未核实：2003年"."""
    return "未核实" + (sep + "、".join(claim.missing) if claim.missing else "")


@dataclass(frozen=True)
class Piece:
    """What the renderers lay out: a stretch of text, the global source numbers that follow
    it, and the claim it belongs to (None for text between claims)."""

    text: str
    refs: tuple[int, ...] = ()
    claim: Claim | None = None

    @property
    def unverified(self) -> bool:
        return self.claim is not None and not self.claim.verified


def _pieces(a: Answer, groups: list[tuple[int, int, list[int]]]) -> list[Piece]:
    """Merge the claim segments with the marker groups: marker text is replaced by the
    group's global numbers, attached to the piece before it."""
    segs = claim_segments(a) if a.claims else [Segment(a.text, 0, len(a.text))]
    out: list[Piece] = []
    for seg in segs:
        pos = seg.start
        for gs, ge, nums in groups:
            if ge <= seg.start or gs >= seg.end:
                continue
            if max(gs, seg.start) > pos:
                out.append(Piece(a.text[pos : max(gs, seg.start)], (), seg.claim))
            if not out:
                out.append(Piece(""))
            last = out[-1]
            out[-1] = Piece(last.text, last.refs + tuple(n for n in nums if n not in last.refs), last.claim)
            pos = min(ge, seg.end)
        if seg.end > pos:
            out.append(Piece(a.text[pos : seg.end], (), seg.claim))
    return out


def _layout(answers: Sequence[Answer]):
    """Shared by all renderers: per answer, its text as `Piece`s, and the global source list."""
    registry: dict[tuple, Source] = {}
    order: list[Source] = []
    items = []
    for a in answers:
        if a.refused:
            pieces = [Piece(a.text)]
        else:
            pieces = _pieces(a, _assign(a, registry, order))
        items.append((a, pieces))
    return items, order


def _source_line(s: Source) -> str:
    c = s.citation
    title = c.title.strip()
    parts = [(title if title.startswith("《") else f"《{title}》") if title else c.doc_id]
    if c.section:
        parts[0] += " › " + " › ".join(c.section)
    if s.date:
        parts.append(s.date)
    if s.publisher:
        parts.append(f"来源：{s.publisher}")
    loc = c.source or c.doc_id
    if c.page is not None:  # a scan: the page is what the reader can find
        parts.append(f"{loc}，第 {c.page} 页")
    else:
        parts.append(f"{loc}，第 {c.quote_start}–{c.quote_end} 字符")
    line = "，".join(parts)
    return f"{line}：“{_flat(c.quote)}”"


def _closest(a: Answer, n: int = 3) -> list[str]:
    out = []
    for h in a.hits[:n]:
        c = h.chunk
        out.append(c.heading or c.doc_id)
    return out


_MD_SPECIAL = re.compile(r"([\\*_`\[\]<>])")


def _md_piece(p: Piece) -> str:
    """A piece in Markdown: an unverified statement in italics (its Markdown characters
    escaped) followed by （⚠未核实：…）, readable rendered and as plain text alike.

    >>> from rag.types import Claim
    >>> _md_piece(Piece("局长是张三", (), Claim("局长是张三", 0, 5, "unverified", (), ("张三",))))
    '*局长是张三*（⚠未核实：张三）'
    >>> _md_piece(Piece("现有68人", (1, 2)))
    '现有68人[^1][^2]'
    """
    refs = "".join(f"[^{n}]" for n in p.refs)
    if not p.unverified or not p.text.strip():
        return p.text + refs
    core = p.text.strip()
    lead, trail = p.text[: len(p.text) - len(p.text.lstrip())], p.text[len(p.text.rstrip()) :]
    core = _MD_SPECIAL.sub(r"\\\1", core)
    return f"{lead}*{core}*（⚠{unverified_note(p.claim)}）{refs}{trail}"


def render_markdown(answers: Sequence[Answer], title: str = "问答报告") -> str:
    """Markdown with footnotes (`[^1]`): GitHub, Pandoc and most editors render them as
    numbered notes; the source list is also readable as plain text.

    >>> render_markdown([])
    '# 问答报告\\n'
    """
    items, order = _layout(answers)
    lines = [f"# {title}", ""]
    for i, (a, pieces) in enumerate(items, 1):
        lines.append(f"## {i}. {_flat(a.question)}")
        lines.append("")
        if understood_as(a):
            lines.append(f"> 理解为：{understood_as(a)}")
            lines.append("")
        lines.append("".join(_md_piece(p) for p in pieces).strip())
        lines.append("")
        if a.refused and a.hits:
            lines.append("最接近的段落：")
            lines.append("")
            lines.extend(f"- {h}" for h in _closest(a))
            lines.append("")
        elif not a.grounded:
            lines.append("> 注意：此回答没有经过核实的出处。")
            lines.append("")
    if order:
        lines.append("## 来源")
        lines.append("")
        lines.extend(f"[^{s.number}]: {_source_line(s)}" for s in order)
        lines.append("")
    while lines and lines[-1] == "":
        lines.pop()
    return "\n".join(lines) + "\n"


def _html_piece(p: Piece, i: int) -> str:
    """A piece in HTML; an unverified statement is the web chat's `claim-unverified` span
    with a visible "未核实：…" label (tooltips do not print)."""
    e = html.escape
    refs = "".join(f'<sup><a href="#src-{n}" id="ref-{n}-{i}">[{n}]</a></sup>' for n in p.refs)
    if not p.unverified or not p.text.strip():
        return e(p.text) + refs
    tip = "未能在资料中核实" + ("：" + "、".join(p.claim.missing) if p.claim.missing else "")
    return (
        f'<span class="claim-unverified" title="{e(tip, quote=True)}">{e(p.text)}'
        f'<span class="claim-flag">{e(unverified_note(p.claim))}</span></span>{refs}'
    )


def render_html(answers: Sequence[Answer], title: str = "问答报告") -> str:
    """A standalone HTML page; citation numbers link to the source list."""
    items, order = _layout(answers)
    e = html.escape
    out = [
        "<!DOCTYPE html>",
        '<html lang="zh">',
        '<head><meta charset="utf-8">',
        f"<title>{e(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:48em;margin:2em auto;line-height:1.7}"
        "sup a{text-decoration:none}.note{color:#a60}.quote{color:#333}"
        ".claim-unverified{color:#6b7280;border-bottom:1.5px dashed #d97706}"
        ".claim-flag{margin-left:3px;padding:0 5px;border-radius:8px;font-size:.75em;color:#b45309;"
        "background:#fef3c7;border:1px solid #f0c07a;white-space:nowrap}"
        ".ans-understood{color:#555;font-size:.9em;border-left:3px solid #a5b4fc;padding-left:8px}</style>",
        "</head>",
        "<body>",
        f"<h1>{e(title)}</h1>",
    ]
    for i, (a, pieces) in enumerate(items, 1):
        out.append(f"<h2>{i}. {e(_flat(a.question))}</h2>")
        if understood_as(a):
            out.append(f'<p class="ans-understood">理解为：{e(understood_as(a))}</p>')
        out.append(f"<p>{''.join(_html_piece(p, i) for p in pieces).strip()}</p>")
        if a.refused and a.hits:
            out.append("<p>最接近的段落：</p><ul>" + "".join(f"<li>{e(h)}</li>" for h in _closest(a)) + "</ul>")
        elif not a.grounded:
            out.append('<p class="note">注意：此回答没有经过核实的出处。</p>')
    if order:
        out.append("<h2>来源</h2>")
        out.append("<ol>")
        out.extend(f'<li id="src-{s.number}">{e(_source_line(s))}</li>' for s in order)
        out.append("</ol>")
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"


def _grey():
    from docx.shared import RGBColor

    return RGBColor(0x80, 0x80, 0x80)


def _docx_piece(par, p: Piece) -> None:
    """Runs of one piece: an unverified statement italic grey plus "（未核实：…）"; source
    numbers superscript."""
    if p.text:
        r = par.add_run(p.text)
        if p.unverified and p.text.strip():
            r.italic, r.font.color.rgb = True, _grey()
            note = par.add_run(f"（{unverified_note(p.claim)}）")
            note.font.color.rgb = _grey()
    for n in p.refs:
        r = par.add_run(f"[{n}]")
        r.font.superscript = True


def render_docx(answers: Sequence[Answer], path: str | Path, title: str = "问答报告") -> Path:
    """Write a .docx (python-docx): citation numbers as superscript, a numbered source list.
    (python-docx has no footnote API; superscript numbers + an end list paste cleanly into Word.)"""
    from docx import Document as Docx
    from docx.oxml.ns import qn

    items, order = _layout(answers)
    doc = Docx()
    style = doc.styles["Normal"]
    style.font.name = "SimSun"
    style.element.rPr.rFonts.set(qn("w:eastAsia"), "SimSun")  # CJK font for East Asian text
    doc.add_heading(title, level=0)
    for i, (a, pieces) in enumerate(items, 1):
        doc.add_heading(f"{i}. {_flat(a.question)}", level=1)
        if understood_as(a):
            r = doc.add_paragraph().add_run(f"理解为：{understood_as(a)}")
            r.italic, r.font.color.rgb = True, _grey()
        p = doc.add_paragraph()
        for piece in pieces:
            _docx_piece(p, piece)
        if a.refused and a.hits:
            doc.add_paragraph("最接近的段落：")
            for h in _closest(a):
                doc.add_paragraph(h, style="List Bullet")
        elif not a.grounded:
            doc.add_paragraph("注意：此回答没有经过核实的出处。")
    if order:
        doc.add_heading("来源", level=1)
        for s in order:
            doc.add_paragraph(f"[{s.number}] {_source_line(s)}")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    doc.save(str(out))
    return out


def write_report(answers: Sequence[Answer], path: str | Path, title: str = "问答报告") -> Path:
    """Render by the file suffix: .md / .markdown, .html / .htm, .docx."""
    p = Path(path)
    suf = p.suffix.lower()
    if suf in (".md", ".markdown"):
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(render_markdown(answers, title), encoding="utf-8")
    elif suf in (".html", ".htm"):
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(render_html(answers, title), encoding="utf-8")
    elif suf == ".docx":
        render_docx(answers, p, title)
    else:
        from rag.errors import ConfigError

        raise ConfigError(f"unknown report format {suf or '(none)'!r}: use a .md, .html or .docx output file")
    return p
