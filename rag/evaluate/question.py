"""One question → one results row: ask it through `Assistant.ask` (unless retrieval-only), search
it with every mode of the sweep, and score the answer (`score_row`).

Follow-up questions are asked with the conversation the system itself produced for the question
they follow (`_history`; the loop always asks the parent first), as a user would experience it.

Deliberate compromises
- A failure in one question is recorded in its row (`error`) and the run goes on, except the
  setup failures in `_FATAL`, which would fail every further question the same way.
- Retrieval is scored with the query the answerer really searched with (the condensed follow-up,
  or the Chinese form of an English question); retrieval-only rows search the question as asked.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Mapping, Sequence

from rag.errors import RagError
from rag.evaluate.evalsets import EvalSet
from rag.evaluate import metrics as M
from rag.evaluate import splits as S
from rag.evaluate.runconfig import RunConfig

log = logging.getLogger(__name__)

DEPTH = 20  # retrieval depth for the recall@k curves
# setup failures that make every further question fail the same way: stop instead of recording
_FATAL = ("ModelNotInstalled", "IndexMissing", "ModelMismatch", "ConfigError")


class MemoSearcher:
    """kb.search with a per-run memo: configurations that differ only in the LLM share retrieval."""

    def __init__(self, kb: Any):
        self.kb = kb
        self.memo: dict[tuple[str, str], tuple[list[Any], float]] = {}

    def __call__(self, query: str, mode: str) -> tuple[list[Any], float]:
        key = (query, mode)
        if key not in self.memo:
            t = time.perf_counter()
            hits = self.kb.search(query, k=DEPTH, mode=mode)
            self.memo[key] = (hits, time.perf_counter() - t)
        return self.memo[key]


def _passages_of(answer: Any, evidence_hits: Sequence[Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for h in list(evidence_hits) + list(getattr(answer, "hits", ()) or ()):
        out[h.chunk.chunk_id] = h.chunk.text
    return out


def score_row(row: Mapping[str, Any], passages: Mapping[str, str] | None = None, threshold: float = 0.5) -> dict[str, Any]:
    """Per-question answer/citation/refusal scores from a results row (retrieval is scored per set)."""
    s: dict[str, Any] = {}
    if row.get("answer") is None:  # retrieval-only or failed
        return s
    answerable = bool(row.get("answerable", True))
    refused = bool(row.get("refused"))
    s["refused"] = float(refused)
    if not answerable:
        return s
    text = M.strip_markers(row.get("answer") or "")
    refs = row.get("references") or []
    if refs:
        s["em"] = M.exact_match(text, refs) if not refused else 0.0
        s["f1"] = M.char_f1(text, refs) if not refused else 0.0
        s["contains"] = M.contains_reference(text, refs) if not refused else 0.0
    items = row.get("list_items") or []
    if refs or items:
        # beside the strict whole-string `contains`: all parts of the reference / all list items,
        # in any order and with any connective (rag.evaluate.answer_scores.answer_correct)
        s["correct"] = M.answer_correct(text, refs, items) if not refused else 0.0
    if items:
        s["list_coverage"] = (M.list_coverage(text, items) or 0.0) if not refused else 0.0
    cits = row.get("citations") or []
    passages = passages if passages is not None else {h["chunk_id"]: h.get("text", "") for h in row.get("hits") or []}
    if not refused:
        s["citation_precision"] = M.citation_precision(cits, passages, threshold)
        s["citation_precision_self"] = M.mean(float(bool(c.get("supported"))) for c in cits) if cits else None
        s["citation_recall"] = M.citation_recall(row.get("answer") or "", cits, passages, threshold)
    rel = [c for quote in row.get("relevant_chunks") or [] for c in quote]
    if rel:
        s["cites_evidence"] = M.cites_evidence([c.get("chunk_id") for c in cits], rel) if not refused else 0.0
    return s


def _merged(hit: Any) -> dict[str, Any]:
    """The chunks an evidence block joins (rag.answer.prompts.pack merges adjacent hits into one block
    named after its first chunk), for scoring the block by what it holds."""
    m = (getattr(hit.chunk, "metadata", None) or {}).get("merged")
    return {"merged": list(m)} if m else {}


def _hit_dict(h: Any) -> dict[str, Any]:
    return {"rank": h.rank, "chunk_id": h.chunk.chunk_id, "doc_id": h.chunk.doc_id, "score": round(float(h.score), 6),
            "text": h.chunk.text}


def _history(es: EvalSet, qid: str, rc: RunConfig, done: Mapping[tuple[str, str], Mapping[str, Any]]) -> list[tuple[str, str]]:
    chain: list[tuple[str, str]] = []
    p = (es.answers.get(qid) or {}).get("follow_up_of")
    seen = {qid}
    while p and p in es.queries and p not in seen:
        seen.add(p)
        prev = done.get((rc.name, p)) or {}
        chain.append((es.question(p), prev.get("answer") or ""))
        p = (es.answers.get(p) or {}).get("follow_up_of")
    return list(reversed(chain))


def _base_row(es: EvalSet, qid: str, rc: RunConfig, chunk_rel, doc_rel) -> dict[str, Any]:
    """What the set says about the question, before anything is asked."""
    a = es.answers.get(qid) or {}
    meta = es.queries[qid].get("metadata") or {}
    answerable = S.answerable_of(es, qid)  # the one answerability rule, shared with the dev/held-out split
    return {
        "config": rc.name,
        "qid": qid,
        "question": es.question(qid),
        "type": a.get("type") or meta.get("type") or ("unanswerable" if not answerable else "question"),
        "kind": a.get("kind") or a.get("type") or meta.get("kind") or "",
        "lang": a.get("lang") or meta.get("lang") or "",
        "answerable": answerable,
        "follow_up_of": a.get("follow_up_of"),
        "references": a.get("answers") or [],
        "list_items": a.get("list_items") or [],
        "evidence": a.get("evidence") or [],
        "relevant_chunks": chunk_rel.get(qid, []),
        "relevant_docs": sorted(d for d, s in (doc_rel.get(qid) or {}).items() if s > 0),
        "answer": None,
    }


def _ask(row: dict[str, Any], rc: RunConfig, assistant: Any, history: list[tuple[str, str]]) -> tuple[str, dict[str, float]]:
    """Ask the row's question, fill in the answer and its scores (or `error`); returns the query
    the assistant retrieved with and the timings."""
    from rag.types import Evidence, Final, Token

    q = row["question"]
    row["history"] = history
    t0 = time.perf_counter()
    first = None
    ev_hits: tuple = ()
    final = None
    try:
        for ev in assistant.ask(q, history, llm_backend=rc.llm, k=rc.k, mode=rc.mode):
            if isinstance(ev, Token) and first is None:
                first = time.perf_counter() - t0
            elif isinstance(ev, Evidence):
                ev_hits = ev.hits
            elif isinstance(ev, Final):
                final = ev.answer
    except RagError as e:
        if type(e).__name__ in _FATAL:
            raise
        row["error"] = f"{type(e).__name__}: {e}"
    except Exception as e:  # a bug in one answer must not lose the other 119: record it
        log.exception("question %s failed", row["qid"])
        row["error"] = f"{type(e).__name__}: {e}"
    total = time.perf_counter() - t0
    if final is None:
        if "error" not in row:
            row["error"] = "the assistant ended without a Final event"
        return q, {}
    ans = final
    timings = {k_: float(v) for k_, v in dict(ans.timings).items()}
    timings.setdefault("first_token", first if first is not None else total)
    timings.setdefault("total", total)
    # the query the assistant searched with: the condensed follow-up, or the Chinese form
    # of an English question (diagnostics["retrieval_query"])
    query = dict(getattr(ans, "diagnostics", {}) or {}).get("retrieval_query") or ans.standalone_question or q
    row.update(
        answer=ans.text,
        refused=bool(ans.refused),
        grounded=bool(getattr(ans, "grounded", True)),
        model=ans.model,
        standalone_question=ans.standalone_question or q,
        claims=[c.to_dict() for c in getattr(ans, "claims", ())],
        refusal_reason=getattr(ans, "refusal_reason", ""),
        diagnostics=dict(getattr(ans, "diagnostics", {}) or {}),
        citations=[c.to_dict() for c in ans.citations],
        hits=[{**_hit_dict(h), **_merged(h)} for h in (ev_hits or ans.hits)],
    )
    row["scores"] = score_row(row, _passages_of(ans, ev_hits), threshold=0.5)
    return query, timings


def _retrieve(row: dict[str, Any], rc: RunConfig, search: Any, query: str, sweep_modes: Sequence[str],
              timings: dict[str, float]) -> dict[str, list[str]]:
    """Search `query` with the configuration's mode and every sweep mode (ranked chunk ids per
    mode); a retrieval-only row also gets its top-k `hits` and timings here."""
    retrieved: dict[str, list[str]] = {}
    for m in dict.fromkeys([rc.mode, *sweep_modes]):
        try:
            hits, secs = search(query, m)
        except RagError as e:
            if type(e).__name__ in _FATAL:
                raise
            row.setdefault("error", f"search {m}: {e}")
            continue
        retrieved[m] = [h.chunk.chunk_id for h in hits]
        row.setdefault("retrieved_scores", {})[m] = [round(float(h.score), 6) for h in hits]  # run files (rag.evaluate.runfile)
        if m == rc.mode:
            timings.setdefault("retrieve", secs)
            if rc.retrieval_only:
                row["hits"] = [_hit_dict(h) for h in hits[: rc.k]]
                timings["total"] = secs
    return retrieved


def run_one(es, qid, rc: RunConfig, assistant, search: MemoSearcher, done, chunk_rel, doc_rel, sweep_modes, cfg) -> dict[str, Any]:
    """The results row of one question under one configuration (`cfg` is accepted for the
    loop's call and unused)."""
    row = _base_row(es, qid, rc, chunk_rel, doc_rel)
    query, timings = row["question"], {}
    if not rc.retrieval_only:
        query, timings = _ask(row, rc, assistant, _history(es, qid, rc, done))
    row["retrieval_query"] = query
    row["retrieved"] = _retrieve(row, rc, search, query, sweep_modes, timings)
    row["timings"] = {k_: round(v, 4) for k_, v in timings.items()}
    return row
