"""Pure rendering for the web chat's conversation: answers, citation markers, claims, the status
line and the documents table → HTML strings. The source panel beside the chat is ui/sources.py.

Everything here is a pure function of `rag.types` values, so it is unit-tested without Gradio
(tests/test_render.py). Two rules hold for every function (here and in ui/sources.py):

- Every piece of document or answer text goes through `esc()` before it touches markup. `esc`
  is `html.escape` plus numeric entities for the few characters a Markdown/LaTeX renderer could
  turn into structure (links, images, code). The chat shows answers with Gradio's Markdown
  rendering *off* and its HTML sanitiser *on*, so a document that contains `<script>`,
  `<img onerror=…>` or `[x](javascript:…)` arrives as inert text (defence in depth: we escape,
  Gradio sanitises). Entities are decoded as literal characters by browsers and Markdown
  parsers alike, so they can never form syntax again.
- Markup we add ourselves is fixed strings plus escaped values; the only attribute values that
  carry data are `id`/`href` built from integers and `title` built with `esc(…, quote=True)`.

Citation links: a `【n】` marker in turn `t` becomes `<a class="cite" href="#src-t-n">【n】</a>`;
the source panel (ui/sources.py) holds one card per cited passage with `id="src-t-n"`.

Claims: a finished answer is rendered from `Answer.text` cut at `Answer.claims`
(`rag.cite.segments.claim_segments`, shared with `rag report`). A verified statement is
`<span class="claim claim-verified">` and looks as before (its markers link to sources, whose
cards carry the ✓ 已核对 badge); an unverified one is `<span class="claim-unverified"
title="未能在资料中核实：…">` — muted, dashed underline, a small "未核实" label — and never
gets a ✓. A rewritten follow-up shows "理解为：…" above the answer (`understood_html`). The
styles are `CLAIM_CSS`, appended to the page CSS by ui/theme.py.

Deliberate compromise: answer text is not rendered as Markdown. Only `**bold**` and line breaks
are kept (a local 1.5B model uses little else); full Markdown would reopen links and autolinks.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from rag.cite.segments import claim_segments, understood_as, unverified_tip
from rag.text.markers import canonical, parse_markers
from rag.types import Answer, Citation, Claim, Hit

# Characters that Markdown / GFM / KaTeX renderers give meaning to; as numeric entities they
# are plain text everywhere (CommonMark: entity references never indicate structure).
_MD_ENTITIES = {
    "[": "&#91;",
    "]": "&#93;",
    "(": "&#40;",
    ")": "&#41;",
    "!": "&#33;",
    "`": "&#96;",
    "$": "&#36;",
    "\\": "&#92;",
    "*": "&#42;",
    "_": "&#95;",
    "~": "&#126;",
    "#": "&#35;",
    "|": "&#124;",
    ":": "&#58;",  # breaks bare-URL autolinks such as https://… and javascript:…
    "{": "&#123;",  # and template interpolation such as ${…}
    "}": "&#125;",
}
# One translation pass: html.escape's five replacements plus the Markdown ones. (Chaining
# html.escape and a second pass would mangle the '#' inside html.escape's own `&#x27;`.)
_HTML_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_QUOTE_ENTITIES = {'"': "&quot;", "'": "&#x27;"}
_TABLE = str.maketrans({**_HTML_ENTITIES, **_MD_ENTITIES})
_TABLE_Q = str.maketrans({**_HTML_ENTITIES, **_QUOTE_ENTITIES, **_MD_ENTITIES})

# Styles of the claim markup (appended to ui/assets/app.css by ui/theme.py): an unverified
# statement is muted with a dashed amber underline and a small "未核实" label, so it stands out
# on screen and in a screenshot; a verified one looks like ordinary answer text.
CLAIM_CSS = """
.claim-unverified { color: var(--body-text-color-subdued, #6b7280); border-bottom: 1.5px dashed #d97706;
  background: rgba(245, 158, 11, .07); cursor: help; }
.claim-flag { display: inline-block; margin-left: 4px; padding: 0 6px; border-radius: 9px; font-size: 11px;
  line-height: 1.6; vertical-align: 1px; color: #b45309; background: rgba(245, 158, 11, .16);
  border: 1px solid rgba(180, 83, 9, .35); white-space: nowrap; font-style: normal; }
.ans-understood { margin-bottom: 6px; padding: 2px 8px; font-size: 12.5px; color: var(--body-text-color-subdued, #555);
  border-left: 3px solid #a5b4fc; background: rgba(99, 102, 241, .06); border-radius: 4px; }
.refusal-reason { margin-top: 4px; color: #b45309; }
"""


def esc(text: Any, quote: bool = False) -> str:
    """Escape any text for HTML (and neutralise Markdown/template syntax).

    >>> esc('<b>x</b> [a](javascript:alert(1))')
    '&lt;b&gt;x&lt;/b&gt; &#91;a&#93;&#40;javascript&#58;alert&#40;1&#41;&#41;'
    """
    s = "" if text is None else str(text)
    # same result as html.escape(s, quote) for the HTML characters, in the same single pass
    return s.translate(_TABLE_Q if quote else _TABLE)


def paragraphs(escaped: str) -> str:
    """Line breaks and **bold** on already-escaped text (the `*` are entities by now).

    >>> paragraphs(esc("**要点**\\n下一行"))
    '<strong>要点</strong><br>下一行'
    """
    s = re.sub(r"&#42;&#42;(.+?)&#42;&#42;", r"<strong>\1</strong>", escaped)
    s = s.replace("\r\n", "\n")
    s = re.sub(r"\n{3,}", "\n\n", s)
    return s.replace("\n", "<br>")


def _cite_title(c: Citation) -> str:
    parts = [c.title, *c.section]
    return " › ".join(p for p in parts if p)


def _marker_targets(
    citations: Sequence[Citation] | Mapping[int, Citation], hits: Sequence[Hit]
) -> tuple[dict[int, str], set[int]]:
    """Passage number → tooltip, and the numbers no supported citation backs (shown weak).
    A passage cited by one statement that it backs and by another that it does not is *not*
    weak: the marker shown is the one after the backed statement."""
    by_n: dict[int, str] = {}
    weak: set[int] = set()
    strong: set[int] = set()
    if isinstance(citations, Mapping):
        citations = list(citations.values())
    for c in citations:
        if c.supported or c.n not in by_n:
            by_n[c.n] = _cite_title(c)
        (strong if c.supported else weak).add(c.n)
    if not by_n:
        for i, h in enumerate(hits, 1):
            by_n[i] = h.chunk.heading
    return by_n, weak - strong


def _linked(text: str, by_n: Mapping[int, str], weak: set[int], turn: int) -> str:
    """Escaped text with every marker a link to its source card (or struck through)."""
    out: list[str] = []
    pos = 0
    for m in parse_markers(text):  # every form the citation parser accepts; lists link per number
        out.append(paragraphs(esc(text[pos : m.start])))
        for n in m.numbers:
            if n in by_n:
                cls = "cite cite-weak" if n in weak else "cite"
                tip = by_n[n] + (" · 引用支持度低 (weak support)" if n in weak else "")
                out.append(f'<a class="{cls}" href="#src-{turn}-{n}" title="{esc(tip, quote=True)}">{canonical([n])}</a>')
            else:
                out.append(f'<span class="cite-missing" title="没有对应的段落 (no such passage)">{canonical([n])}</span>')
        pos = m.end
    out.append(paragraphs(esc(text[pos:])))
    return "".join(out)


def answer_html(
    text: str,
    citations: Sequence[Citation] | Mapping[int, Citation] = (),
    turn: int = 0,
    *,
    hits: Sequence[Hit] = (),
) -> str:
    """Answer text → HTML with each `【n】` a link to the source card `src-{turn}-{n}`.

    `citations` (final answer) resolve markers by `Citation.n`; while streaming, pass `hits`
    instead (the Evidence list: hits[n-1] is 【n】). A marker with no passage behind it is
    shown struck through with a tooltip, never as a link.

    >>> answer_html("甲<乙>【1】", hits=[]).count("cite-missing")
    1
    """
    by_n, weak = _marker_targets(citations, hits)
    return _linked((text or "").strip(), by_n, weak, turn)


def unverified_title(claim: Claim) -> str:
    """The tooltip of an unverified statement: what the documents lack, what it cited."""
    tip = unverified_tip(claim)
    if claim.numbers:
        tip += f" · 所引段落{canonical(claim.numbers)}不支持这句话"
    return tip


def claim_html(inner: str, claim: Claim | None) -> str:
    """Wrap a statement's (already escaped and linked) HTML by its check status."""
    if claim is None or not inner.strip():
        return inner
    if claim.verified:
        return f'<span class="claim claim-verified" title="已核对：{canonical(claim.numbers)}">{inner}</span>'
    return (
        f'<span class="claim claim-unverified" title="{esc(unverified_title(claim), quote=True)}">{inner}'
        '<span class="claim-flag">未核实</span></span>'
    )


def claims_html(answer: Answer, turn: int) -> str:
    """A finished answer's text with each claim marked by its status (see the module doc);
    answers without claims (refusals) as plain linked text, a refusal's reason set apart."""
    by_n, weak = _marker_targets(answer.citations, answer.hits)
    text = answer.text or ""
    if not answer.claims:
        reason = (answer.refusal_reason or "").strip() if answer.refused else ""
        if reason and text.rstrip().endswith(reason):
            head = text.rstrip()[: -len(reason)].rstrip()
            return _linked(head, by_n, weak, turn) + f'<div class="refusal-reason">{_linked(reason, by_n, weak, turn)}</div>'
        body = _linked(text.strip(), by_n, weak, turn)
        return body + (f'<div class="refusal-reason">{paragraphs(esc(reason))}</div>' if reason else "")
    return "".join(claim_html(_linked(seg.text, by_n, weak, turn), seg.claim) for seg in claim_segments(answer))


def understood_html(answer: Answer) -> str:
    """"理解为：…" when the question answered is a rewrite of the one asked (follow-ups)."""
    sq = understood_as(answer)
    return f'<div class="ans-understood">理解为：{esc(sq)}</div>' if sq else ""


def answer_footer(answer: Answer, settings: Mapping[str, Any] | None = None) -> str:
    """One small line under a finished answer: time, model, retrieval settings, warnings."""
    bits: list[str] = []
    total = answer.timings.get("total") if answer.timings else None
    if total is not None:
        bits.append(f"用时 {float(total):.1f} s")
    if answer.model:
        bits.append(esc(answer.model))
    if settings:
        bits.append(esc(f"{settings.get('mode', '')} · k={settings.get('k', '')}"))
    unverified = sum(1 for c in answer.claims if not c.verified)
    warn = ""
    if answer.refused:
        warn = '<div class="ans-warn">未能在知识库中找到可靠答案，右侧列出最接近的段落。</div>'
    elif not answer.grounded or not any(c.supported for c in answer.citations):
        warn = '<div class="ans-warn">⚠ 这个回答没有可核实的引用，请谨慎使用。(no verified citation)</div>'
    elif unverified:
        warn = (f'<div class="ans-warn">⚠ 有 {unverified} 处陈述未能在资料中核实（灰色虚线、标“未核实”），'
                "请勿直接引用。</div>")
    elif not answer.claims and any(not c.supported for c in answer.citations):
        warn = '<div class="ans-warn">⚠ 部分引用的支持度较低（虚线标出），引用前请核对原文。</div>'
    return f'{warn}<div class="ans-foot">{" · ".join(bits)}</div>'


def final_message_html(answer: Answer, turn: int, settings: Mapping[str, Any] | None = None) -> str:
    """The chat bubble of a finished answer: "理解为" line, checked text, footer."""
    return understood_html(answer) + claims_html(answer, turn) + answer_footer(answer, settings)


def final_status_text(answer: Answer, took: float) -> str:
    """The status line once an answer is final."""
    if answer.refused:
        return f"完成：知识库中没有足够依据（{took:.1f} s）"
    n_ok = len({c.n for c in answer.citations if c.supported})
    n_bad = sum(1 for c in answer.claims if not c.verified)
    bad = f" · {n_bad} 处未核实" if n_bad else ""
    return f"完成：{n_ok} 处核实的引用{bad}（{took:.1f} s） · 点击 【n】 查看原文"


def streaming_message_html(text: str, turn: int, hits: Sequence[Hit]) -> str:
    """The chat bubble while tokens arrive (markers link to the evidence passages)."""
    body = answer_html(text, (), turn, hits=hits) if text else ""
    return body + '<span class="typing" aria-hidden="true">▍</span>'



def status_html(message: str, *, busy: bool = True, error: bool = False, elapsed: float | None = None) -> str:
    """The status line under the chat (spinner while busy).

    `elapsed` (seconds since the question was sent) is shown and kept ticking by the page
    script between server updates, so a long generation never looks frozen."""
    cls = "status error" if error else ("status busy" if busy else "status")
    spin = '<span class="spinner" aria-hidden="true"></span>' if busy and not error else ""
    tick = ""
    if elapsed is not None and busy and not error:
        tick = f'<span class="elapsed" data-elapsed="{float(elapsed):.1f}">{int(elapsed)} s</span>'
    return f'<div class="{cls}" role="status" aria-live="polite">{spin}<span class="msg">{esc(message)}</span>{tick}</div>'


def documents_html(docs: Sequence[Any]) -> str:
    """Documents of a knowledge base as a table (DocInfo-like objects or dicts)."""
    if not docs:
        return '<div class="muted">这个知识库还没有文档。请在上方上传文件。(no documents yet)</div>'

    def g(d: Any, k: str) -> Any:
        return d.get(k, "") if isinstance(d, Mapping) else getattr(d, k, "")

    rows = []
    total = 0
    for d in docs:
        n = g(d, "n_chunks") or 0
        total += int(n)
        rows.append(
            "<tr>"
            f'<td class="d-title">{esc(g(d, "title") or g(d, "doc_id"))}<div class="d-id">{esc(g(d, "doc_id"))}</div></td>'
            f'<td class="d-src" title="{esc(g(d, "source"), quote=True)}">{esc(basename(g(d, "source")))}</td>'
            f'<td class="d-n">{esc(n)}</td>'
            f'<td class="d-date">{esc(g(d, "date"))}</td>'
            f'<td class="d-added">{esc(_short_time(g(d, "added")))}</td>'
            "</tr>"
        )
    return (
        f'<div class="doc-sum">{len(docs)} 个文档 · {total} 个段落 (chunks)</div>'
        '<table class="doc-table"><thead><tr><th>标题 Title</th><th>文件 Source</th><th>段落数</th>'
        "<th>日期 Date</th><th>加入时间 Added</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )


def basename(path: Any) -> str:
    """The file name of a path, either slash (what people recognise of a source).

    >>> basename("seeds\\\\a/000_x.txt")
    '000_x.txt'
    """
    return str(path or "").replace("\\", "/").rsplit("/", 1)[-1]


def _short_time(v: Any) -> str:
    """ISO timestamps shortened to minutes; epoch numbers formatted; anything else as is."""
    if v in (None, ""):
        return ""
    if isinstance(v, (int, float)):
        import datetime as _dt

        return _dt.datetime.fromtimestamp(float(v)).strftime("%Y-%m-%d %H:%M")
    s = str(v)
    m = re.match(r"(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2})", s)
    return f"{m.group(1)} {m.group(2)}" if m else s


def index_report_html(lines: Sequence[tuple[str, str, str]]) -> str:
    """Per-file outcome of an upload: (status 'ok'|'error'|'skip', file name, message)."""
    if not lines:
        return ""
    icon = {"ok": "✓", "error": "✗", "skip": "•"}
    items = "".join(
        f'<li class="up-{esc(s)}"><span class="up-icon">{icon.get(s, "•")}</span>'
        f'<span class="up-name">{esc(name)}</span> <span class="up-msg">{esc(msg)}</span></li>'
        for s, name, msg in lines
    )
    return f'<ul class="upload-report">{items}</ul>'
