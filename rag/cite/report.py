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
standalone question gets a "理解为：…" line under its heading. What the three renderers lay out
(pieces, source numbers, the source list's lines) comes from rag.cite.segments, shared with the
web chat (ui/render.py) and `rag ask`.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Sequence

from rag.cite.segments import Piece, closest, layout_answers, one_line, source_line, understood_as, unverified_note, unverified_tip
from rag.types import Answer

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
    items, order = layout_answers(answers)
    lines = [f"# {title}", ""]
    for i, (a, pieces) in enumerate(items, 1):
        lines.append(f"## {i}. {one_line(a.question)}")
        lines.append("")
        if understood_as(a):
            lines.append(f"> 理解为：{understood_as(a)}")
            lines.append("")
        lines.append("".join(_md_piece(p) for p in pieces).strip())
        lines.append("")
        if a.refused and a.hits:
            lines.append("最接近的段落：")
            lines.append("")
            lines.extend(f"- {h}" for h in closest(a))
            lines.append("")
        elif not a.grounded:
            lines.append("> 注意：此回答没有经过核实的出处。")
            lines.append("")
    if order:
        lines.append("## 来源")
        lines.append("")
        lines.extend(f"[^{s.number}]: {source_line(s)}" for s in order)
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
    return (
        f'<span class="claim-unverified" title="{e(unverified_tip(p.claim), quote=True)}">{e(p.text)}'
        f'<span class="claim-flag">{e(unverified_note(p.claim))}</span></span>{refs}'
    )


def render_html(answers: Sequence[Answer], title: str = "问答报告") -> str:
    """A standalone HTML page; citation numbers link to the source list."""
    items, order = layout_answers(answers)
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
        out.append(f"<h2>{i}. {e(one_line(a.question))}</h2>")
        if understood_as(a):
            out.append(f'<p class="ans-understood">理解为：{e(understood_as(a))}</p>')
        out.append(f"<p>{''.join(_html_piece(p, i) for p in pieces).strip()}</p>")
        if a.refused and a.hits:
            out.append("<p>最接近的段落：</p><ul>" + "".join(f"<li>{e(h)}</li>" for h in closest(a)) + "</ul>")
        elif not a.grounded:
            out.append('<p class="note">注意：此回答没有经过核实的出处。</p>')
    if order:
        out.append("<h2>来源</h2>")
        out.append("<ol>")
        out.extend(f'<li id="src-{s.number}">{e(source_line(s))}</li>' for s in order)
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

    items, order = layout_answers(answers)
    doc = Docx()
    style = doc.styles["Normal"]
    style.font.name = "SimSun"
    style.element.rPr.rFonts.set(qn("w:eastAsia"), "SimSun")  # CJK font for East Asian text
    doc.add_heading(title, level=0)
    for i, (a, pieces) in enumerate(items, 1):
        doc.add_heading(f"{i}. {one_line(a.question)}", level=1)
        if understood_as(a):
            r = doc.add_paragraph().add_run(f"理解为：{understood_as(a)}")
            r.italic, r.font.color.rgb = True, _grey()
        p = doc.add_paragraph()
        for piece in pieces:
            _docx_piece(p, piece)
        if a.refused and a.hits:
            doc.add_paragraph("最接近的段落：")
            for h in closest(a):
                doc.add_paragraph(h, style="List Bullet")
        elif not a.grounded:
            doc.add_paragraph("注意：此回答没有经过核实的出处。")
    if order:
        doc.add_heading("来源", level=1)
        for s in order:
            doc.add_paragraph(f"[{s.number}] {source_line(s)}")
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
