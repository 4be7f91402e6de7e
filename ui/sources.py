"""Pure rendering of the web chat's source panel: the cited passages of each turn with the quote
marked, the retrieved passages while an answer streams or when it is refused → HTML strings.

The escaping rules are ui/render.py's (every value through `esc`, markup fixed strings). Each
cited passage is a card with `id="src-{turn}-{n}"`, the target of the answer's 【n】 links.
Gradio's sanitiser drops `data-*` attributes but keeps `class`, `href="#…"` and `title`, so the
(tiny) page script (ui/assets/page.js) reads the target from the link's `href` and opens,
scrolls to and flashes the card. One `<details>` block per conversation turn, newest open.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rag.text.markers import canonical
from rag.text.match import find_quote  # the one quote matcher (also part of this module's API)
from rag.types import Answer, Chunk, Citation, Hit
from ui.render import basename, esc, paragraphs


def highlight(passage: str, quote: str) -> tuple[str, bool]:
    """Escaped passage with the quote wrapped in `<mark class="quote">`; (html, found)."""
    span = find_quote(passage, quote)
    if span is None:
        return paragraphs(esc(passage)), False
    a, b = span
    return (
        paragraphs(esc(passage[:a]))
        + '<mark class="quote">'
        + paragraphs(esc(passage[a:b]))
        + "</mark>"
        + paragraphs(esc(passage[b:])),
        True,
    )


def _meta_line(meta: Mapping[str, Any], source: str, chunk_id: str) -> str:
    items: list[str] = []
    date = meta.get("date") or meta.get("published") or ""
    if date:
        items.append(f'<span class="m-date">日期 {esc(date)}</span>')
    src_name = meta.get("source_name") or meta.get("site") or ""
    if src_name:
        items.append(f'<span class="m-src">来源 {esc(src_name)}</span>')
    author = meta.get("author") or ""
    if author:
        items.append(f'<span class="m-author">作者 {esc(author)}</span>')
    if source:
        # the file name is what people recognise; the full path and chunk id are in the tooltip
        name = basename(source)
        tip = f"{source} · {chunk_id}"
        items.append(f'<span class="m-file" title="{esc(tip, quote=True)}">文件 {esc(name)}</span>')
    return f'<div class="src-meta">{"".join(items)}</div>' if items else ""


def _section_line(section: Sequence[str]) -> str:
    parts = [p for p in section if p]
    return f'<div class="src-section">{esc(" › ".join(parts))}</div>' if parts else ""


def citation_card(c: Citation, chunk: Chunk | None, turn: int, *, anchor: bool = True, figure: str = "") -> str:
    """One cited passage: title, section path, date/source, passage with the quote marked;
    `figure`: the page crop of a scan (ui/crop.py), already HTML."""
    meta: dict[str, Any] = {}
    if chunk is not None:
        meta.update(chunk.metadata or {})
    meta.update(c.metadata or {})
    title = c.title or (chunk.title if chunk else "") or c.doc_id
    section = c.section or (chunk.section if chunk else ())
    source = c.source or (chunk.source if chunk else "")
    if chunk is not None:
        body, found = highlight(chunk.text, c.quote)
        if not found and c.quote:
            body = f'<blockquote class="quote-only"><mark class="quote">{esc(c.quote)}</mark></blockquote>' + body
    else:
        body = f'<mark class="quote">{esc(c.quote)}</mark>' if c.quote else '<span class="muted">（段落不可用）</span>'
    support = (
        f'<span class="sup ok" title="support {c.support:.2f}">✓ 已核对 {c.support:.2f}</span>'
        if c.supported
        else f'<span class="sup weak" title="support {c.support:.2f}">⚠ 支持度低 {c.support:.2f}</span>'
    )
    stmt = f'<div class="src-stmt">引用于：{esc(c.statement)}</div>' if c.statement else ""
    cls = "src-card" if c.supported else "src-card weak"
    ident = f' id="src-{turn}-{c.n}"' if anchor else ""
    return (
        f'<article class="{cls}"{ident}>'
        f'<header><span class="src-n">{canonical([c.n])}</span><span class="src-title">{esc(title)}</span>{support}</header>'
        f"{_section_line(section)}{_meta_line(meta, source, c.chunk_id)}"
        f'<div class="src-text">{body}</div>{figure}{stmt}</article>'
    )


def hit_card(h: Hit, turn: int, n: int, *, cid_prefix: str = "src") -> str:
    """A retrieved passage without a checked quote (evidence while streaming; refusals)."""
    c = h.chunk
    ranks = " · ".join(f"{esc(k)} #{v}" for k, v in sorted(h.ranks.items())) if h.ranks else ""
    score = f'<span class="sup" title="{esc(ranks, quote=True)}">score {h.score:.3f}</span>'
    return (
        f'<article class="src-card hit" id="{cid_prefix}-{turn}-{n}">'
        f'<header><span class="src-n">{canonical([n])}</span><span class="src-title">{esc(c.title or c.doc_id)}</span>{score}</header>'
        f"{_section_line(c.section)}{_meta_line(c.metadata or {}, c.source, c.chunk_id)}"
        f'<div class="src-text">{paragraphs(esc(c.text))}</div></article>'
    )


def _chunk_index(hits: Iterable[Hit]) -> dict[str, Chunk]:
    return {h.chunk.chunk_id: h.chunk for h in hits}


def sources_html(answer: Answer, turn: int, figures: Mapping[int, str] | None = None) -> str:
    """Source panel body for a finished answer: cited passages (with the page crop of a scan,
    `figures[n]`), or on refusal the closest ones."""
    if answer.refused or not answer.citations:
        return refusal_html(answer.hits, turn, refused=answer.refused)
    chunks = _chunk_index(answer.hits)
    cards: list[str] = []
    anchored: set[int] = set()
    # a passage that backs one statement and not another: the backing card first, and it alone
    # carries the anchor the 【n】 link opens
    for c in sorted(answer.citations, key=lambda c: (c.n, not c.supported)):
        fig = (figures or {}).get(c.n, "") if c.n not in anchored else ""
        cards.append(citation_card(c, chunks.get(c.chunk_id), turn, anchor=c.n not in anchored, figure=fig))
        anchored.add(c.n)
    return "".join(cards)


def refusal_html(hits: Sequence[Hit], turn: int, *, refused: bool = True, limit: int = 5) -> str:
    """The closest passages, shown when the assistant declines to answer (or cites nothing)."""
    head = (
        "没有找到足以回答的内容。以下是最接近的段落，供您自行判断："
        if refused
        else "回答没有引用可核实的段落。以下是检索到的最接近的段落："
    )
    if not hits:
        return f'<div class="refusal">{head}</div><div class="muted">（知识库中没有检索到任何段落）</div>'
    cards = "".join(hit_card(h, turn, i, cid_prefix="near") for i, h in enumerate(hits[:limit], 1))
    return f'<div class="refusal">{head}</div>{cards}'


def evidence_html(hits: Sequence[Hit], turn: int, *, done: bool = False) -> str:
    """The numbered passages handed to the model: while the answer streams, or (done=True)
    for a turn that ended without an answer (stopped, failed)."""
    if not hits:
        return '<div class="muted">没有检索到段落</div>' if done else '<div class="muted">正在检索…</div>'
    head = f"检索到的 {len(hits)} 个段落：" if done else f"模型正在阅读以下 {len(hits)} 个段落："
    cards = "".join(hit_card(h, turn, i) for i, h in enumerate(hits, 1))
    return f'<div class="muted">{head}</div>{cards}'


def turn_block(turn: int, question: str, body: str, *, open_: bool) -> str:
    """One conversation turn in the source panel (newest open, older ones folded)."""
    op = " open" if open_ else ""
    return (
        f'<details class="turn-src" id="turn-src-{turn}"{op}>'
        f'<summary><span class="turn-no">第 {turn + 1} 问</span> {esc(question)}</summary>'
        f"{body}</details>"
    )


def panel_html(blocks: Sequence[tuple[int, str, str]]) -> str:
    """The whole source panel from (turn, question, body) triples; newest first."""
    if not blocks:
        return (
            '<div class="src-empty"><div class="src-empty-title">来源 Sources</div>'
            "回答中的 【n】 标记可点击：被引用的段落会显示在这里，引用的句子以黄色标出，"
            "并附有文档标题、章节、日期和来源。</div>"
        )
    last = max(t for t, _, _ in blocks)
    return "".join(turn_block(t, q, b, open_=(t == last)) for t, q, b in sorted(blocks, reverse=True))

