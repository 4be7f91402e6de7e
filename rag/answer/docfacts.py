"""Questions about a document itself — who wrote it, when and where it was published — answered
from its own date/source line.

The cleaner moves a scraped page's `2012-07-15 10:29:18 来源:黑龙江日报  作者:常春晖` line out
of the body into the document's metadata (rag.ingest.dateline), so no indexed chunk holds it and
"这篇报道的作者是谁?" found nothing to quote. When a question asks for such a fact, the answer
stage adds one short passage: that line, verbatim from the stored original text, with its real
span, so it is quoted and checked like any other passage (rag.cite), never made up from
metadata the user cannot see.

Compromise: only the line the cleaner recognised as a date/source line (`parse_dateline`, the one
home of that rule) is offered, found again in the first `HEAD_CHARS` of the original; a byline
inside the body ("（記者李川）") is ordinary text and is retrieved as such.
"""

from __future__ import annotations

import re
from typing import Callable, Sequence

from rag.ingest.dateline import parse_dateline
from rag.text.norm import t2s
from rag.types import Chunk, Hit, Passage

# where a scraped page's date/source line sits: near the top (after a title and a breadcrumb)
HEAD_CHARS = 3000
HEADER_SECTION = "文档信息"

# the fact asked, by the metadata key parse_dateline fills (questions folded to simplified)
_ASKS = {
    "author": re.compile(r"作者|记者|撰稿|执笔|署名|谁写|(?:由|是)谁(?:撰写|编写|报道)|\b(?:author|reporter|wrote|written)\b", re.I),
    "date": re.compile(
        r"(?:什么时候|何时|哪天|哪一天|哪年|几月|日期|时间)[^，。？?]{0,8}(?:发布|发表|刊登|刊发|刊出|登出|印发|发出|报道|写)"
        r"|(?:发布|发表|刊登|刊发|印发)(?:的|于|在|是)?(?:日期|时间|什么时候|何时|哪天|哪一天|哪年)|\b(?:published|posted|dated)\b", re.I),
    "source_name": re.compile(r"来源|出处|哪家媒体|哪个网站|哪家报|刊登在|发表在|\bsource\b", re.I),
}
# the question is about the document, not about a person or an event inside it
_THE_DOCUMENT = re.compile(r"这篇|该篇|本篇|此篇|本文|该文|此文|这份|该份|文章|报道|稿件|通讯|简报|新闻|消息|\b(?:article|report|piece|story)\b", re.I)


def asked_facts(question: str) -> list[str]:
    """The document facts `question` asks for (metadata keys), or [] when it asks none.

    >>> asked_facts("这篇黑龙江日报关于基层组织建设年的报道作者是谁?")
    ['author']
    >>> asked_facts("甘肃煤田地质局《我局深入开展创先争优活动》这篇文章是什么时候发布的?")
    ['date']
    >>> asked_facts("三河市社区党支部书记是谁?"), asked_facts("会议是什么时候召开的?")
    ([], [])
    """
    q = t2s(question)
    if not _THE_DOCUMENT.search(q):
        return []
    return [key for key, rx in _ASKS.items() if rx.search(q)]


def dateline_span(original: str, wanted: Sequence[str]) -> tuple[int, int] | None:
    """Span of the first date/source line in the head of `original` that states one of the
    `wanted` facts, or None.

    >>> t = "我局深入开展创先争优活动\\n时间:2010-06-28 00:00:00 浏览次数:0\\n正文。"
    >>> a, b = dateline_span(t, ["date"]); t[a:b]
    '时间:2010-06-28 00:00:00 浏览次数:0'
    >>> dateline_span(t, ["author"]) is None
    True
    """
    pos = 0
    for line in original[:HEAD_CHARS].splitlines(keepends=True):
        body = line.strip()
        meta = parse_dateline(body) if body else None
        if meta and any(meta.get(k) for k in wanted):
            a = pos + line.index(body)
            return a, a + len(body)
        pos += len(line)
    return None


def is_header(p: Passage) -> bool:
    """Whether `p` is a date/source-line passage added by `fact_passages`."""
    return p.chunk.n == -1 and p.chunk.chunk_id.endswith("#header")


def fact_passages(
    question: str, passages: Sequence[Passage], original_text: Callable[[Chunk], str | None],
    max_docs: int = 1,
) -> list[Passage]:
    """`passages` plus, when `question` asks who wrote / when / where a document was published,
    one passage per document (best-ranked first, at most `max_docs`) holding its date/source
    line verbatim. The added passage is numbered after the others, so the retrieved passages
    keep their numbers; its chunk id is `doc_id#header` (it is not an indexed chunk)."""
    wanted = asked_facts(question)
    if not wanted or not passages:
        return list(passages)
    out = list(passages)
    seen: set[str] = set()
    for p in passages:
        c = p.chunk
        if c.doc_id in seen or len(seen) >= max_docs:
            continue
        seen.add(c.doc_id)
        original = original_text(c)
        span = dateline_span(original, wanted) if original else None
        if span is None:
            continue
        a, b = span
        head = Chunk(f"{c.doc_id}#header", c.doc_id, -1, c.title, (HEADER_SECTION,), original[a:b], a, b,
                     source=c.source, metadata=dict(c.metadata))
        out.append(Passage.from_hit(len(out) + 1, Hit(head, p.hit.score, len(out) + 1)))
    return out
