"""Answers → what every renderer lays out: the answer text cut at its claims, citation markers
replaced by source numbers counted once across all answers, and the one numbered source list.

`claim_segments` cuts `Answer.text` at `Answer.claims` (verified / unverified / plain text), for
the report (rag.cite.report), the web chat (ui/render.py) and `rag ask`; `understood_as` is the
rewritten question shown as "理解为：…"; `unverified_note`/`unverified_tip` are the one wording of
an unverified statement's label and tooltip. `layout_answers` numbers the sources: a marker
【n】 goes to the supported citation of passage n whose statement comes first and is not used
yet, and the same sentence of the same file cited twice gets one number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from rag.text.markers import statements
from rag.text.norm import t2s
from rag.types import Answer, Citation, Claim


@dataclass(frozen=True)
class Source:
    """One entry of the source list: its number across all answers and the citation it names."""

    number: int
    citation: Citation

    @property
    def date(self) -> str:
        return str(self.citation.metadata.get("date") or "")[:10]

    @property
    def publisher(self) -> str:
        m = self.citation.metadata
        return str(m.get("source_name") or m.get("publisher") or "")


def one_line(text: str) -> str:
    """Line breaks (and the spaces around them) as one space: a heading or footnote is one line."""
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
    sq = one_line(answer.standalone_question or "")
    return sq if sq and sq != one_line(answer.question or "") else ""


def unverified_note(claim: Claim, sep: str = "：") -> str:
    """"未核实" plus what the documents lack, e.g. "未核实：2003年"."""
    return "未核实" + (sep + "、".join(claim.missing) if claim.missing else "")


def unverified_tip(claim: Claim) -> str:
    """The tooltip of an unverified statement: what the documents lack.

    >>> unverified_tip(Claim("局长是张三", 0, 5, "unverified", (), ("张三",)))
    '未能在资料中核实：张三'
    """
    return "未能在资料中核实" + ("：" + "、".join(claim.missing) if claim.missing else "")


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


def layout_answers(answers: Sequence[Answer]):
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


def source_line(s: Source) -> str:
    """One entry of the source list: title › section, date, publisher, file and span (or page), quote."""
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
    return f"{line}：“{one_line(c.quote)}”"


def closest(a: Answer, n: int = 3) -> list[str]:
    """What a refused answer lists instead of sources: its closest passages' headings."""
    out = []
    for h in a.hits[:n]:
        c = h.chunk
        out.append(c.heading or c.doc_id)
    return out
