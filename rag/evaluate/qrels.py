"""Relevance for scoring retrieval: chunk-level (which chunks hold each evidence quote) and
document-level qrels, derived from the set's evidence quotes and the indexed chunks' spans.

The same derivation serves the index's chunks and the naive baseline's (any object with
`kb.chunks` and `offsets` will do), so both are scored against the same quotes.
"""

from __future__ import annotations

from typing import Any, Mapping

from rag.evaluate.evalsets import EvalSet
from rag.evaluate import metrics as M
from rag.evaluate.cache import Corpus


def derive_qrels(es: EvalSet, corpus: Corpus, texts: Mapping[str, str]) -> tuple[dict[str, list[list[str]]], dict[str, dict[str, int]], list]:
    """(chunk-level relevance per quote, document-level qrels, quotes that could not be placed)."""
    by_doc: dict[str, list[tuple[str, int, int]]] = {}
    for c in corpus.kb.chunks:
        by_doc.setdefault(c.doc_id, []).append((c.chunk_id, c.start, c.end, c.heading))
    evidence: dict[str, list[dict[str, Any]]] = {}
    for qid, a in es.answers.items():
        if not a.get("answerable", True):
            continue
        evs = []
        for ev in a.get("evidence") or []:
            ev = dict(ev)
            did = ev.get("doc_id")
            off = corpus.offsets.get(did, 0)
            if ev.get("start") is not None:
                ev["start"] = int(ev["start"]) + off
            evs.append(ev)
        if evs:
            evidence[qid] = evs
    chunk_rel, problems = M.chunk_qrels(evidence, texts, by_doc)
    doc_rel: dict[str, dict[str, int]] = {q: dict(r) for q, r in es.qrels.items()}
    for qid, evs in evidence.items():
        for ev in evs:
            if ev.get("doc_id"):
                doc_rel.setdefault(qid, {})[ev["doc_id"]] = max(1, doc_rel.get(qid, {}).get(ev["doc_id"], 0))
    return chunk_rel, doc_rel, problems
