"""Evidence the answer needs, in few tokens: sentence selection with enumerations kept whole.

The model reads what this module selects, not whole chunks: every prompt token costs time
before the first answer token on a 2-core CPU, and a small model answers better from the
three sentences that hold the answer than from 500 tokens around them. Citations are still
checked against the full passage, so selecting never weakens the check.

- Sentences of the retrieved passages are scored against the question (rag.answer.scoring.Scorer:
  IDF-weighted question-term coverage, answer-type cues) and taken best first while they fit
  the budget; a sentence that opens with a pronoun or connective brings the sentence before it.
- Enumerations stay whole: `一是…二是…`, `首先/其次/最后`, `（一）（二）`, `(1)(2)`, `①②`,
  `第一/第二`, `1.`/`1、`, with the sentence that announces them ("…有三个方面：", "五带头"):
  a selected item brings its whole run and its head. `extend_enumerations` merges the next (or
  previous) chunk into a passage when a run crosses the chunk boundary, so the passage the
  citation is checked against holds every item.
- Headings and the document title stay in each block's header (rag.answer.prompts.block_header).
- A table row (rag.ingest.tables) brings its table's header line, and selected table lines are shown
  one per line, so the model reads each value under its column name.

Deliberate compromise (enumerations, rag.text.enumerations): detection is by markers at sentence starts and by a head
that names a count; an enumeration written as a plain comma list inside one sentence is one
sentence and needs nothing special.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from rag.answer.attributes import asks_items
from rag.answer.scoring import Scorer
from rag.ingest.tables import passage_table_lines
from rag.text.enumerations import HEAD, continues, enum_index, enumeration_runs, outline
from rag.text.sentences import leans_on_previous, sentence_spans
from rag.types import Chunk, Hit, Passage, merge_text

# ---------------------------------------------------------------- chunk boundaries


def _extend(p: Passage, ch: Chunk, before: bool) -> Passage:
    """`p` with the neighbouring chunk `ch` merged in reading order (offsets kept exact)."""
    if before:
        text, off = merge_text(ch.text, p.text)
        parts = ((ch, 0),) + tuple((c, o + off) for c, o in p.parts)
        first = ch
    else:
        text, off = merge_text(p.text, ch.text)
        parts = p.parts + ((ch, off),)
        first = p.parts[0][0]
    merged = [c.chunk_id for c, _ in parts]
    c0 = p.chunk
    chunk = Chunk(
        first.chunk_id, c0.doc_id, first.n, c0.title, first.section, text,
        min(c.start for c, _ in parts), max(c.end for c, _ in parts), c0.source,
        {**dict(c0.metadata), "merged": merged},
    )
    h = p.hit
    return Passage(p.n, Hit(chunk, h.score, h.rank, dict(h.ranks), dict(h.scores)), parts, text)


def extend_enumerations(
    passages: Sequence[Passage], get_chunk: Callable[[str], Chunk | None] | None, max_extra: int = 2
) -> list[Passage]:
    """Merge a neighbouring chunk into a passage whose enumeration crosses a chunk boundary:
    the next chunk when the passage ends inside an enumeration and the next chunk continues it
    (its first sentences carry the next item), the previous one when the passage starts at an
    item after the first. At most `max_extra` chunks per passage."""
    if get_chunk is None:
        return list(passages)
    out: list[Passage] = []
    for p in passages:
        for _ in range(max_extra):
            last = p.parts[-1][0]
            sents = [p.text[a:b] for a, b in sentence_spans(p.text)]
            has_items = any(enum_index(s) is not None for s in sents) or (sents and HEAD.search(sents[-1]))
            nxt = get_chunk(f"{last.doc_id}#{last.n + 1}") if has_items else None
            if nxt is not None and nxt.doc_id == last.doc_id and nxt.chunk_id not in {c.chunk_id for c, _ in p.parts}:
                head = [nxt.text[a:b] for a, b in sentence_spans(nxt.text)[:3]]
                if continues(sents, head):
                    p = _extend(p, nxt, before=False)
                    continue
            break
        first = p.parts[0][0]
        sents = [p.text[a:b] for a, b in sentence_spans(p.text)[:2]]
        starts_mid = any((e := enum_index(s)) is not None and e[1] > 1 for s in sents)
        if starts_mid and first.n > 0:
            prev = get_chunk(f"{first.doc_id}#{first.n - 1}")
            if prev is not None and prev.doc_id == first.doc_id:
                p = _extend(p, prev, before=True)
        out.append(p)
    return out


# ---------------------------------------------------------------- selection


RUN_WHOLE = 8  # sentences: a longer enumeration is shown as its outline plus the selected sentence


@dataclass(frozen=True)
class _Unit:
    passage: int
    sentences: tuple[int, ...]  # sentence indices in the passage, sorted
    score: float


def _table_heads(p: Passage, spans: Sequence[tuple[int, int]]) -> dict[int, int]:
    """{sentence index of a table line: sentence index of its header line, or -1} (rag.ingest.tables)."""
    lines = passage_table_lines(p)
    if not lines:
        return {}
    index = {a: k for k, (a, _) in enumerate(spans)}
    return {index[a]: index.get(h, -1) for a, h in lines.items() if a in index}


def _units(question: str, passages: Sequence[Passage]) -> list[_Unit]:
    spans = {p.n: sentence_spans(p.text) for p in passages}
    texts = {n: [passages_by(passages, n).text[a:b] for a, b in s] for n, s in spans.items()}
    runs = {n: enumeration_runs(t) for n, t in texts.items()}
    heads = {p.n: _table_heads(p, spans[p.n]) for p in passages}
    out: list[_Unit] = []
    for c in Scorer(question, passages).candidates():
        ss = spans[c.passage]
        try:
            i = next(k for k, (a, b) in enumerate(ss) if a == c.start and b == c.end)
        except StopIteration:
            continue
        take = {i}
        if heads[c.passage].get(i, -1) >= 0:
            take.add(heads[c.passage][i])  # a table row is shown under its header line
        for lo, hi in runs[c.passage]:
            if lo <= i <= hi:  # the whole run, or its outline (head + item sentences) when long
                whole = range(lo, hi + 1)
                take.update(whole if len(whole) <= RUN_WHOLE else outline(texts[c.passage], lo, hi))
        if i > 0 and leans_on_previous(passages_by(passages, c.passage).text[ss[i][0] : ss[i][1]]):
            take.add(i - 1)
        out.append(_Unit(c.passage, tuple(sorted(take)), c.score))
    return out


# the question asks for items: the sentences of its items share few of its words, so they are
# kept down to a lower share of the best score
LIST_MIN_RATIO = 0.3  # on the seed dev split: list items shown to the model 83 → 91 of 108 (0.5 → 0.3)


def passages_by(passages: Sequence[Passage], n: int) -> Passage:
    return next(p for p in passages if p.n == n)


def select(
    question: str,
    passages: Sequence[Passage],
    budget_tokens: int,
    count_tokens: Callable[[str], int] | None = None,
    min_ratio: float = 0.5,
) -> dict[int, str]:
    """{passage n: the text the model is shown} within `budget_tokens` (the blocks' headers
    and sentences, as the old whole-block budget counted them). Units (a sentence, or its whole enumeration) are taken best
    first; the best one always, even past the budget; a unit scoring below `min_ratio` of the
    best is not worth its tokens. A passage with nothing selected maps to "" (the caller leaves
    it out of the prompt). Gaps inside a passage are marked "……".

    >>> from rag.types import Chunk, Hit
    >>> t = "会议在哈尔滨召开。全局有三项要求：一是加强学习。二是改进作风。三是严格纪律。天气晴朗。"
    >>> p = Passage.from_hit(1, Hit(Chunk("a#0", "a", 0, "简报", (), t, 0, len(t)), 1.0, 1))
    >>> select("全局有哪些要求？", [p], 60)[1]
    '……全局有三项要求：一是加强学习。二是改进作风。三是严格纪律。……'
    """
    if count_tokens is None:
        from rag.chunk.sections import count_tokens as count_tokens  # noqa: PLW0127
    spans = {p.n: sentence_spans(p.text) for p in passages}
    chosen: dict[int, set[int]] = {p.n: set() for p in passages}
    used = 0
    units = _units(question, passages)
    best = units[0].score if units else 0.0
    if asks_items(question):
        min_ratio = min(min_ratio, LIST_MIN_RATIO)
    for u in units:
        if u.score < min_ratio * best and used:
            break
        new = [i for i in u.sentences if i not in chosen[u.passage]]
        if not new:
            continue
        p = passages_by(passages, u.passage)
        cost = sum(count_tokens(p.text[spans[u.passage][i][0] : spans[u.passage][i][1]]) for i in new)
        if not chosen[u.passage]:  # the block's header is paid once, when the passage is first used
            from rag.answer.prompts import block_header

            cost += count_tokens(block_header(p)) + 2
        if used and used + cost > budget_tokens:
            continue
        chosen[u.passage].update(new)
        used += cost
        if used >= budget_tokens:
            break
    shown: dict[int, str] = {}
    for p in passages:
        keep = sorted(chosen[p.n])
        if not keep:
            shown[p.n] = ""
            continue
        parts: list[str] = []
        prev = -1
        rows = _table_heads(p, spans[p.n])
        for i in keep:
            line = prev in rows and i in rows  # table lines stay lines
            if (prev < 0 and i > 0) or (prev >= 0 and i != prev + 1):
                parts.append("\n……\n" if line else "……")
            elif line:
                parts.append("\n")
            a, b = spans[p.n][i]
            parts.append(p.text[a:b])
            prev = i
        if keep[-1] < len(spans[p.n]) - 1:
            parts.append("……")
        shown[p.n] = "".join(parts)
    return shown
