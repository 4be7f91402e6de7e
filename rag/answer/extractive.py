"""The `extractive` backend: answer without an LLM by quoting the passage sentence(s) that best
match the question, with 【n】 markers. Instant and deterministic; CI's answer eval runs on it.

- The sentences are ranked by rag.answer.scoring (question-term coverage, answer-type cues, the
  asked attribute next to its noun); the answer is the best one, verbatim.
- A sentence that reads on from the one before it ("其中…", "为此…") is quoted with it; one that
  ends with "：" or is itself a question announces its answer in the next sentence, which is
  appended; an enumeration the quote sits in, starts or announces is quoted whole (past the
  budget: its outline, rag.text.enumerations), and a list question prefers an enumeration.
- A question about the document itself (its author, date, source) is answered with the
  document's date/source line when the answer stage added it (rag.answer.docfacts).
- A table row is quoted with its column names (`rag.ingest.tables.labelled_row`:
  `年份：2009，人均收入（元）：11579`); the citation quotes the row itself.

`Candidate.asked_value` tells the answer stage whether a quoted sentence holds the asked value
(rag.answer.scoring); for an answer of several sentences check `any(c.asked_value for c in
chosen)`, or call `rag.answer.attributes.has_asked_value(question, answer_text)`.

Compromise: lexical matching cannot bridge paraphrase or cross-language questions (an English
question over Chinese documents); `similarity` (embedding cosine) can be supplied for those.
"""

from __future__ import annotations

import re
from typing import Callable, Sequence

from rag.answer.attributes import asks_items
from rag.answer.docfacts import asked_facts, is_header
from rag.answer.scoring import Candidate, Scorer, injection_like
from rag.ingest.tables import labelled_row
from rag.text.enumerations import enumeration_runs, outline
from rag.text.markers import canonical
from rag.text.sentences import leans_on_previous, sentence_spans
from rag.types import Passage


def extract(
    question: str,
    passages: Sequence[Passage],
    *,
    max_sentences: int = 2,
    max_chars: int = 240,
    similarity: Callable[[str, Sequence[str]], Sequence[float]] | None = None,
) -> tuple[str, list[Candidate]]:
    """The extractive answer: best sentence (and the sentence it announces, if it ends with
    "：" or is a question) with its 【n】 marker. Returns ("", []) when no sentence shares a
    question term. `similarity(question, sentences) -> scores` (e.g. multilingual embedding
    cosine) ranks the sentences when no question term occurs in them (cross-language questions).

    >>> from rag.types import Chunk, Hit
    >>> c1 = Chunk("a#0", "a", 0, "简报", (), "会议在哈尔滨召开。全局现有干部职工68人。", 0, 20)
    >>> c2 = Chunk("b#0", "b", 0, "新闻", (), "天气晴朗。", 0, 5)
    >>> ps = [Passage.from_hit(1, Hit(c1, 1.0, 1)), Passage.from_hit(2, Hit(c2, 0.5, 2))]
    >>> extract("全局有多少干部职工？", ps)[0]
    '全局现有干部职工68人。【1】'
    """
    head = next((p for p in passages if is_header(p)), None)
    if head is not None and asked_facts(question):
        # "这篇报道的作者是谁?": the document's own date/source line answers (rag.answer.docfacts)
        line = head.text.strip()
        return line + canonical([head.n]), [Candidate(head.n, 0, len(head.text), head.text, 1.0, 1.0, True)]
    sc = Scorer(question, passages)
    cands = sc.candidates()
    by_n = {p.n: p for p in passages}

    def grounded(c: Candidate) -> bool:
        # the asked value next to a synonym of the asked noun ("職工591人" for 员工) may share no
        # question term itself: its passage must then share one
        return c.coverage > 0 or bool(c.asked_value and sc.block_coverage(by_n[c.passage]) > 0)

    if (not cands or not grounded(cands[0])) and similarity is not None and sc.sentences:
        # no lexical overlap (e.g. an English question over Chinese passages): rank by embeddings
        texts = [p.text[a:b] for p, a, b, _ in sc.sentences]
        sims = list(similarity(question, texts))
        cands = sorted(
            (Candidate(p.n, a, b, p.text[a:b], float(v) - 0.01 * (p.n - 1), float(v), sc.asked_value(p.text[a:b]))
             for (p, a, b, _), v in zip(sc.sentences, sims) if not injection_like(p.text[a:b])),
            key=lambda c: (-c.score, c.passage, c.start),
        )
    if not cands or not grounded(cands[0]):
        return "", []
    best = _prefer_enumeration(question, cands, by_n) or cands[0]
    chosen = [best]
    text = best.text.rstrip()
    p = by_n[best.passage]
    spans = sentence_spans(p.text)
    following = [s for s in spans if s[0] >= best.end]

    def then(a: int, b: int) -> Candidate:  # a sentence quoted beside `best`, scored as part of it
        return Candidate(p.n, a, b, p.text[a:b], best.score, best.coverage, sc.asked_value(p.text[a:b]))

    before = [s for s in spans if s[1] <= best.start]
    if before and leans_on_previous(best.text):  # "其中男党员16人" reads on from "现有党员29人"
        chosen.insert(0, then(*before[-1]))
    if text.endswith(("：", ":", "？", "?")) and max_sentences > 1 and following:
        chosen.append(then(*following.pop(0)))
    # an enumeration the quote starts, announces or sits in is quoted whole, head to last item
    # (rag.text.enumerations: 一是… / 首先… / （1）… / ①…, "三个方面：" heads)
    chosen = _whole_enumeration(p, chosen, then, 2 * max_chars)
    pieces: list[str] = []
    for c in chosen:
        s = re.sub(r"\s+", " ", c.text).strip()
        if (c.passage, c.start) in sc.row_header:  # a table row, with its column names (rag.ingest.tables)
            s = labelled_row(sc.row_header[(c.passage, c.start)], s)
        if len(s) > max_chars and len(chosen) == 1:
            s = s[:max_chars].rstrip() + "…"
        pieces.append(s)
    answer = "".join(pieces) + canonical([best.passage])
    return answer, chosen


# a list question's best sentence outside any enumeration yields to an enumeration (its head or
# an item) scoring at least this share of it: "哪六个奖" is answered by the items, not by the
# sentence that names the prize most often
LIST_PREFERENCE = 0.7


def _prefer_enumeration(question: str, cands: Sequence[Candidate], by_n: dict[int, Passage]) -> Candidate | None:
    if not asks_items(question) or not cands:
        return None
    runs: dict[int, list[tuple[int, int]]] = {}  # passage → its runs as character spans

    def in_run(c: Candidate) -> bool:
        if c.passage not in runs:
            p = by_n[c.passage]
            sp = sentence_spans(p.text)
            runs[c.passage] = [(sp[a][0], sp[b][1]) for a, b in enumeration_runs([p.text[x:y] for x, y in sp])]
        return any(a <= c.start < b for a, b in runs[c.passage])

    if in_run(cands[0]):
        return None
    floor = LIST_PREFERENCE * cands[0].score
    return next((c for c in cands[1:] if c.score >= floor and c.coverage > 0 and in_run(c)), None)


def _whole_enumeration(p: Passage, chosen: list[Candidate], then: Callable[[int, int], Candidate],
                       max_chars: int) -> list[Candidate]:
    """`chosen` (consecutive sentences of `p`) widened to every enumeration run it touches. Within
    `max_chars` every sentence of the run is quoted; past it, the head and each item's first
    sentence (an item's later sentences explain it; its marker sentence names it)."""
    spans = sentence_spans(p.text)
    index = {a: k for k, (a, _) in enumerate(spans)}
    picked = [index[c.start] for c in chosen if c.start in index]
    if not picked:
        return chosen
    lo, hi = min(picked), max(picked)
    texts = [p.text[x:y] for x, y in spans]
    touched = [(a, b) for a, b in enumeration_runs(texts) if a <= hi and b >= lo]
    if not touched:
        return chosen
    first, last = min(lo, touched[0][0]), max(hi, touched[-1][1])
    keep = list(range(first, last + 1))
    if sum(len(texts[k]) for k in keep) > max_chars:
        keep = sorted(set(picked) | set(outline(texts, first, last)))
    by_start = {c.start: c for c in chosen}
    return [by_start.get(spans[k][0]) or then(*spans[k]) for k in keep]
