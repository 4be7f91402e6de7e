"""Retrieval scores: chunk relevance derived from evidence quotes, the rankings ranx scores, and
Recall@k, MRR@10, nDCG@10 through ranx (never by hand). Pure functions: ids and spans in,
numbers out; re-exported by rag.evaluate.metrics (callers read them as `M.*`).

Two levels:
- document level: the set's `qrels/test.tsv`, against the ranked list of distinct documents
  (`doc_ranking`);
- chunk level: relevance derived from the evidence quotes (`chunk_qrels`), so labels survive
  re-chunking. A chunk is relevant to a quote when its span contains the quote's span; when no
  chunk contains it (the quote straddles a boundary), the chunks covering at least half of it are.
  Deliberate compromise: two chunks that both hold the same quote (overlapping chunks) are
  *alternatives*, not two things to find, so scoring collapses each ranked chunk into the evidence
  quote(s) it covers (`evidence_ranking`) and ranx scores the quotes: Recall@5 = share of the
  question's quotes found in the top 5 chunks.
"""

from __future__ import annotations

import warnings
from typing import Any, Iterable, Mapping, Sequence

from rag.text.match import locate_quote
from rag.text.norm import normalize_answer


def relevant_chunks(chunks: Iterable[tuple[str, int, int]], span: tuple[int, int]) -> list[str]:
    """Chunks (id, start, end) relevant to a quote span: those containing it; if none does, those
    overlapping it by at least half the quote's length.

    >>> cs = [("d#0", 0, 10), ("d#1", 8, 20), ("d#2", 20, 30)]
    >>> relevant_chunks(cs, (8, 10))      # inside the overlap of #0 and #1: both contain it
    ['d#0', 'd#1']
    >>> relevant_chunks(cs, (16, 24))     # straddles #1/#2: overlaps 4 and 4 of 8 chars, both ≥ half
    ['d#1', 'd#2']
    >>> relevant_chunks(cs, (14, 24))     # overlaps #1 by 6, #2 by 4 (of 10): half is 5 → only #1
    ['d#1']
    """
    qs, qe = span
    chunks = list(chunks)
    inside = [cid for cid, s, e in chunks if s <= qs and qe <= e]
    if inside:
        return inside
    need = (qe - qs) / 2
    return [cid for cid, s, e in chunks if min(e, qe) - max(s, qs) >= need and min(e, qe) > max(s, qs)]


def heading_chunks(chunks: Iterable[Sequence[Any]], span: tuple[int, int], quote: str) -> list[str]:
    """For a quote that is (part of) a heading or the title: chunkers keep headings out of the
    chunk text and carry them on every chunk below as the heading path (`Chunk.heading`), so the
    first chunk after the quote whose heading contains it is the passage that holds it.
    Chunks are (id, start, end, heading).

    >>> heading_chunks([("d#0", 0, 9, "标题"), ("d#1", 14, 30, "标题 › 一、总体要求")], (9, 14), "一、总体要求")
    ['d#1']
    """
    q = normalize_answer(quote)
    if not q:
        return []
    after = sorted((c for c in chunks if len(c) > 3 and c[1] >= span[0] and q in normalize_answer(c[3] or "")), key=lambda c: c[1])
    return [after[0][0]] if after else []


def chunk_qrels(
    evidence: Mapping[str, Sequence[Mapping[str, Any]]],
    doc_texts: Mapping[str, str],
    chunks_by_doc: Mapping[str, Sequence[tuple[str, int, int]]],
) -> tuple[dict[str, list[list[str]]], list[tuple[str, int, str]]]:
    """Derive chunk relevance from evidence quotes.

    `evidence`: query id → [{"doc_id", "quote", "start"?}]; `doc_texts`: doc id → the original text
    the chunk offsets index; `chunks_by_doc`: doc id → [(chunk_id, start, end[, heading])]. A quote
    no chunk span covers is matched to the chunk whose heading path holds it (`heading_chunks`).
    Returns (query id → one list of relevant chunk ids per located quote, problems) where
    problems lists (query id, evidence index, reason) for quotes that could not be placed.

    >>> ev = {"q1": [{"doc_id": "d", "quote": "乙丙"}]}
    >>> chunk_qrels(ev, {"d": "甲乙丙丁"}, {"d": [("d#0", 0, 2), ("d#1", 2, 4)]})
    ({'q1': [['d#0', 'd#1']]}, [])
    """
    out: dict[str, list[list[str]]] = {}
    problems: list[tuple[str, int, str]] = []
    for qid, evs in evidence.items():
        for i, ev in enumerate(evs or []):
            doc = ev.get("doc_id")
            if doc not in doc_texts:
                problems.append((qid, i, f"document {doc!r} not in the index"))
                continue
            span = locate_quote(doc_texts[doc], ev.get("quote", ""), ev.get("start"))
            if span is None:
                problems.append((qid, i, f"quote not found in {doc}"))
                continue
            chunks = chunks_by_doc.get(doc, ())
            rel = relevant_chunks([c[:3] for c in chunks], span)
            if not rel:
                rel = heading_chunks(chunks, span, ev.get("quote", ""))
            if not rel:
                problems.append((qid, i, f"no chunk of {doc} covers the quote"))
                continue
            out.setdefault(qid, []).append(rel)
    return out, problems


def evidence_ranking(ranked_chunk_ids: Sequence[str], quotes: Sequence[Sequence[str]]) -> list[str]:
    """Map a ranked chunk list to a ranked list of evidence units for ranx: a chunk covering a
    not-yet-found quote becomes `ev<i>`, anything else keeps its own id (a non-relevant item that
    still takes its rank). A chunk covering two new quotes yields both, one after the other.

    >>> evidence_ranking(["d#5", "d#1", "d#2", "d#3"], [["d#1", "d#2"], ["d#3"]])
    ['d#5', 'ev0', 'd#2', 'ev1']
    """
    found: set[int] = set()
    out: list[str] = []
    for cid in ranked_chunk_ids:
        new = [i for i, rel in enumerate(quotes) if i not in found and cid in rel]
        if not new:
            out.append(cid)
            continue
        for i in new:
            found.add(i)
            out.append(f"ev{i}")
    return out


def doc_ranking(ranked_doc_ids: Sequence[str]) -> list[str]:
    """Distinct documents in order of their first chunk.

    >>> doc_ranking(["b", "a", "b", "c"])
    ['b', 'a', 'c']
    """
    return list(dict.fromkeys(ranked_doc_ids))


def retrieval_metrics(
    qrels: Mapping[str, Mapping[str, int]],
    run: Mapping[str, Sequence[str]],
    ks: Sequence[int] = (1, 3, 5, 10, 20),
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Recall@k for each k, MRR@10 and nDCG@10 through ranx. `run` gives ranked ids per query
    (best first); queries in `qrels` with no run entry score 0; queries without relevant items
    are left out. Returns (means, per-query scores).

    >>> means, per_q = retrieval_metrics({"q1": {"a": 1, "b": 1}, "q2": {"c": 1}},
    ...                                  {"q1": ["a", "x", "b"], "q2": ["y", "c"]}, ks=(1, 3))
    >>> means["recall@1"], means["recall@3"], means["mrr@10"]
    (0.25, 1.0, 0.75)
    >>> # recall@1: q1 1/2, q2 0 → 0.25; recall@3: 1 and 1; MRR: q1 1/1, q2 1/2 → 0.75
    >>> round(per_q["q2"]["ndcg@10"], 4)   # one relevant at rank 2: 1/log2(3)
    0.6309
    """
    q = {qid: {d: int(s) for d, s in rel.items() if s > 0} for qid, rel in qrels.items()}
    q = {qid: rel for qid, rel in q.items() if rel}
    names = [f"recall@{k}" for k in ks] + ["mrr@10", "ndcg@10"]
    if not q:
        return {n: None for n in names}, {}
    from ranx import Qrels, Run, evaluate

    r: dict[str, dict[str, float]] = {}
    for qid in q:
        ids = list(dict.fromkeys(run.get(qid, ())))
        if ids:
            # strictly decreasing scores keep the given order (ranx sorts by score)
            r[qid] = {d: float(len(ids) - i) for i, d in enumerate(ids)}
    if not r:  # ranx needs at least one ranked query
        return {n: 0.0 for n in names}, {qid: {n: 0.0 for n in names} for qid in q}
    qr, rr = Qrels(q), Run(r)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numba's uint64→int64 cast notices
        means = evaluate(qr, rr, names, make_comparable=True)
    if isinstance(means, float):  # a single metric comes back as a bare float
        means = {names[0]: means}
    per_q: dict[str, dict[str, float]] = {qid: {} for qid in q}
    for n in names:
        for qid, v in rr.scores.get(n, {}).items():
            if qid in per_q:
                per_q[qid][n] = float(v)
    for qid in q:
        for n in names:
            per_q[qid].setdefault(n, 0.0)
    return {n: float(means[n]) for n in names}, per_q
