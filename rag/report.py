"""Answers → a document ready to paste into a report: Markdown, HTML or DOCX.

Each question is followed by its answer; every valid citation becomes a footnote-style number,
and one source list at the end, numbered once across all answers (the same sentence of the same
file cited twice gets one number), names the document title, section path, date, publisher
(来源), file, the character span in the original file, and the quoted sentence. Unsupported
citations are never listed. A refused answer lists its closest passages instead.

Quotes are the original characters of the file; only line breaks inside a quote are shown as a
space (a footnote is one line), the span still points at the exact characters.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from rag.text.markers import statements
from rag.textnorm import t2s
from rag.types import Answer, Citation


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


def _layout(answers: Sequence[Answer]):
    """Shared by all renderers: per answer, the text split into (text, [numbers]) pieces."""
    registry: dict[tuple, Source] = {}
    order: list[Source] = []
    items = []
    for a in answers:
        pieces: list[tuple[str, list[int]]] = []
        if a.refused:
            pieces.append((a.text, []))
        else:
            pos = 0
            for gs, ge, nums in _assign(a, registry, order):
                pieces.append((a.text[pos:gs], nums))
                pos = ge
            pieces.append((a.text[pos:], []))
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
    parts.append(f"{loc}，第 {c.quote_start}–{c.quote_end} 字符")
    line = "，".join(parts)
    return f"{line}：“{_flat(c.quote)}”"


def _closest(a: Answer, n: int = 3) -> list[str]:
    out = []
    for h in a.hits[:n]:
        c = h.chunk
        out.append(c.heading or c.doc_id)
    return out


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
        body = "".join(t + "".join(f"[^{n}]" for n in nums) for t, nums in pieces).strip()
        lines.append(body)
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
        "sup a{text-decoration:none}.note{color:#a60}.quote{color:#333}</style>",
        "</head>",
        "<body>",
        f"<h1>{e(title)}</h1>",
    ]
    for i, (a, pieces) in enumerate(items, 1):
        out.append(f"<h2>{i}. {e(_flat(a.question))}</h2>")
        body = "".join(
            e(t) + "".join(f'<sup><a href="#src-{n}" id="ref-{n}-{i}">[{n}]</a></sup>' for n in nums) for t, nums in pieces
        ).strip()
        out.append(f"<p>{body}</p>")
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
        p = doc.add_paragraph()
        for t, nums in pieces:
            if t:
                p.add_run(t)
            for n in nums:
                r = p.add_run(f"[{n}]")
                r.font.superscript = True
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
