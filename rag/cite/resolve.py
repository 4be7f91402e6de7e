"""Citations: parse the answer's markers, resolve them to passages, check that each cited
statement is supported, and locate the quoted sentence in the *original* file.

Pipeline (all pure functions; the only I/O is the optional `text_source` callback that returns
a document's original text):

    parse_markers(text)            【1】 [1] 【1,2】 【1-3】 [1][2] → Marker(start, end, numbers)
    statements(text)               each marker group with the statement it closes
    support(statement, passage)    character-bigram recall after script normalisation, in [0, 1]
    resolve(text, passages, ...)   → (clean text, citations)

Decisions (consistent everywhere, also documented in docs/INTERFACES.md's answering section):
- Out-of-range markers (no such passage) are removed from the text and produce no citation.
- In-range markers whose statement is not supported by the passage (support < threshold) are
  removed from the shown text; their `Citation` is still returned with `supported=False` so the
  support score is recorded (eval measures citation precision with it) — the UI and reports
  only show `supported` ones.
- All marker forms are rewritten to the canonical 【n】, one bracket per passage.

Support is character-bigram *recall* of the statement against the passage: Chinese has no
spaces, and bigrams of the normalised (simplified, NFKC, punctuation-free) text are the
standard script-robust lexical unit (as in CMRC-style character metrics). Recall, not F1,
because a short statement legitimately cites a long passage. An optional `similarity`
callback (e.g. multilingual embeddings) lets a cross-lingual answer (English answer, Chinese
document) be supported too; the score is then the max of both.

Quotes: `Chunk.text` is cleaned text, but a citation must quote the exact characters of the
user's file. The best-supporting sentence is found in the chunk's cleaned text and then aligned
back into `original[chunk.start:chunk.end]` on a normalised key (script-folded, punctuation and
whitespace removed) that keeps a per-character map to the original offsets; when cleaning
repaired characters (OCR) so that no exact key match exists, difflib aligns the closest window.

The text primitives live in `rag.text` (marker grammar and statements: `rag.text.markers`;
sentences: `rag.text.sentences`; quote alignment: `rag.text.match`; bigram recall:
`rag.text.grams`); this module is the citation logic built on them.
"""

from __future__ import annotations

from typing import Callable, Iterable, Mapping, Sequence

from rag.text.grams import bigrams, overlap
from rag.text.markers import Marker, Statement, parse_markers, statements, strip_markers
from rag.text.match import align
from rag.text.sentences import sentence_spans
from rag.types import Chunk, Citation, Hit, Passage, merge_text

__all__ = ["TextSource", "best_sentence", "cite_one", "grounded", "quote_for", "resolve", "support"]


def support(statement: str, passage: str) -> float:
    """Share of the statement's bigrams found in the passage (script-insensitive), in [0, 1];
    markers in the statement are ignored.

    >>> support("安达市有六学措施【1】", "我們實施了『六學』措施，確保安達市……")  # 安达 达市 六学 学措 措施 of 7
    0.7142857142857143
    >>> support("", "任何") , support("完全无关", "东北网")
    (0.0, 0.0)
    """
    return overlap(strip_markers(statement), passage)


def best_sentence(statement: str, text: str) -> tuple[int, int, float]:
    """The sentence of `text` that best supports `statement`: (start, end, support).
    Ties go to the earlier sentence.

    >>> t = "局内设8个股室。现有干部职工68人，其中党员32人。"
    >>> a, b, s = best_sentence("有68名干部职工", t); t[a:b]
    '现有干部职工68人，其中党员32人。'
    """
    best = (0, len(text), -1.0)
    st = strip_markers(statement)
    for a, b in sentence_spans(text):
        score = overlap(st, text[a:b])
        if score > best[2]:
            best = (a, b, score)
    return best


TextSource = Callable[[Chunk], "str | None"]
"""Returns the original text of the chunk's document (the string `chunk.start:chunk.end` index
into), or None when it is not available."""


def quote_for(chunk: Chunk, a: int, b: int, text_source: TextSource | None) -> tuple[str, int, int, bool]:
    """Exact original characters and span for `chunk.text[a:b]`: (quote, start, end, exact).
    Without the original text (an index version from before texts were stored), the cleaned
    sentence and its original span through the chunk's offset map are returned (exact=False:
    cleaning may have changed a space or a line break inside it)."""
    frag = chunk.text[a:b]
    original = text_source(chunk) if text_source else None
    if original:
        region = original[chunk.start : chunk.end]
        hit = align(frag, region)
        if hit:
            s, e, _ = hit
            return region[s:e], chunk.start + s, chunk.start + e, True
    if b > a:
        from rag.chunk.sections import chunk_orig_span

        qs, qe = chunk_orig_span(chunk, a, b)
        return frag, qs, qe, False
    return frag, chunk.start, chunk.end, False


# ---------------------------------------------------------------- resolve


def _as_passages(items: Sequence[Passage | Hit]) -> list[Passage]:
    return [it if isinstance(it, Passage) else Passage.from_hit(i + 1, it) for i, it in enumerate(items)]


def cite_one(
    n: int,
    statement: str,
    passage: Passage,
    *,
    threshold: float,
    text_source: TextSource | None = None,
    similarity: Callable[[str, str], float] | None = None,
    extra: Mapping | None = None,
    span: tuple[int, int] | None = None,
) -> Citation:
    """Check `statement` against `passage` and build its Citation (quote = best sentence, or
    `passage.text[span[0]:span[1]]` when the caller chose the quote)."""
    score = support(statement, passage.text)
    a, b = span if span is not None else best_sentence(statement, passage.text)[:2]
    if similarity is not None:
        try:
            score = max(score, float(similarity(strip_markers(statement), passage.text[a:b])))
        except Exception:  # an embedding failure must not lose the answer; lexical score stands
            pass
    # map the sentence (in the merged text) to its chunk and the chunk-relative span
    chunk, rel_a = passage.locate(a)
    rel_b = min(len(chunk.text), rel_a + (b - a))
    quote, qs, qe, exact = quote_for(chunk, rel_a, rel_b, text_source)
    meta = dict(chunk.metadata)
    meta["quote_exact"] = exact
    if "ocr_lines" in meta:  # a scan: the page and the boxes of the quoted lines
        from rag.chunk.sections import chunk_orig_span
        from rag.ingest.ocr.locate import span_location

        meta.update(span_location(meta, *chunk_orig_span(chunk, rel_a, rel_b)))
    if extra:
        meta.update(extra)
    return Citation(
        n=n,
        chunk_id=chunk.chunk_id,
        doc_id=chunk.doc_id,
        title=chunk.title,
        section=tuple(chunk.section),
        source=chunk.source,
        start=chunk.start,
        end=chunk.end,
        quote=quote,
        quote_start=qs,
        quote_end=qe,
        support=round(score, 4),
        supported=score >= threshold,
        statement=strip_markers(statement).strip(),
        metadata=meta,
    )


def resolve(
    text: str,
    passages: Sequence[Passage | Hit],
    *,
    question: str = "",
    threshold: float | None = None,
    text_source: TextSource | None = None,
    similarity: Callable[[str, str], float] | None = None,
    attribute_uncited: bool = False,
) -> tuple[str, list[Citation]]:
    """Shown text and citations of a raw answer (passages[i] is 【i+1】 unless Passage objects
    with their own `n` are given): `rag.cite.review.review` — the claim check — without the claims.
    `threshold` is accepted for old callers and ignored: support is decided by the claim check.

    >>> from rag.types import Chunk, Hit
    >>> c = Chunk("d#0", "d", 0, "标题", (), "该局现有干部职工68人。", 0, 12)
    >>> resolve("干部职工68人[1]，另有[7]。", [Hit(c, 1.0, 1)])[0]  # "另有" stops mid-clause: dropped
    '干部职工68人【1】。'
    """
    from rag.cite.review import review

    shown, cites, _ = review(
        text, _as_passages(passages), question, text_source=text_source, similarity=similarity, attribute=attribute_uncited
    )
    return shown, cites


def grounded(citations: Iterable[Citation]) -> bool:
    """An answer is grounded when at least one citation is valid and supported."""
    return any(c.supported for c in citations)
