"""Aggregation: results rows → metrics.json. Per configuration: retrieval (the passages the
model saw, a depth-20 search in its own mode, and the mode sweep), answer, citation, refusal and
latency summaries, per-document and per-type breakdowns, and the same summaries on the dev and
held-out halves (`by_split`, through rag.evaluate.splits).

Every figure is computed here once; rag.evaluate.report only lays these dicts out (its by-split
table reshapes `by_split`, it does not recompute it).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable, Mapping, Sequence

from rag.evaluate.evalsets import EvalSet
from rag.evaluate import metrics as M
from rag.evaluate import naive as N
from rag.evaluate import splits as S
from rag.evaluate.runconfig import MODES, RunConfig

SEEN = "seen"  # the pseudo-mode scoring a row's `hits`: the chunks handed to the model, in order
SEEN_KS = (1, 3, 5, 100)  # for the passages the model saw; @100 is reported as `recall_all`
KS = (1, 3, 5, 10, 20)


def _doc_of(chunk_id: str) -> str:
    return chunk_id.rsplit("#", 1)[0]


def retrieval_for(rows: Sequence[Mapping[str, Any]], mode: str, ks: Sequence[int] = KS) -> dict[str, Any]:
    """Chunk- and document-level retrieval metrics (ranx) of the rows' `retrieved[mode]` lists."""
    ev_q: dict[str, dict[str, int]] = {}
    ev_run: dict[str, list[str]] = {}
    doc_q: dict[str, dict[str, int]] = {}
    doc_run: dict[str, list[str]] = {}
    for r in rows:
        if not r.get("answerable", True) or mode not in (r.get("retrieved") or {}):
            continue
        ranked = r["retrieved"][mode]
        quotes = r.get("relevant_chunks") or []
        if quotes:
            ev_q[r["qid"]] = {f"ev{i}": 1 for i in range(len(quotes))}
            ev_run[r["qid"]] = M.evidence_ranking(ranked, quotes)
        if r.get("relevant_docs"):
            doc_q[r["qid"]] = {d: 1 for d in r["relevant_docs"]}
            doc_run[r["qid"]] = M.doc_ranking([_doc_of(c) for c in ranked])
    cm, cper = M.retrieval_metrics(ev_q, ev_run, ks)
    dm, dper = M.retrieval_metrics(doc_q, doc_run, ks)
    return {"chunk": cm | {"n": len(ev_q)}, "doc": dm | {"n": len(doc_q)}, "_per_query": {"chunk": cper, "doc": dper}}


def _mean_key(rows: Iterable[Mapping[str, Any]], key: str) -> float | None:
    return M.mean((r.get("scores") or {}).get(key) for r in rows)


def aggregate(rows, configs: Sequence[RunConfig], es: EvalSet, sweep_modes=MODES) -> dict[str, Any]:
    """metrics.json: per configuration, retrieval (the passages the model saw; a depth-20 search,
    its own mode and the sweep), answer, citation, refusal and latency summaries, per-document
    and per-type breakdowns, and the same summaries on the dev and held-out halves (`by_split`)."""
    out: dict[str, Any] = {"evalset": es.name, "configs": {}}
    smap = S.split_map(es)
    for rc in configs:
        rs = [r for r in rows if r["config"] == rc.name]
        sweep = () if N.is_naive(rc.llm) else sweep_modes  # its one retrieval is its own FAISS store
        m, per_q = config_metrics(rs, rc, sweep)
        # per document (first relevant document) and per question type
        groups_doc: dict[str, list[dict]] = {}
        groups_type: dict[str, list[dict]] = {}
        for r in rs:
            d = (r.get("relevant_docs") or ["(unanswerable)" if not r.get("answerable", True) else "(none)"])[0]
            groups_doc.setdefault(d, []).append(r)
            groups_type.setdefault(r.get("type") or "", []).append(r)
        m["per_document"] = {d: _group_summary(g, per_q, rc) for d, g in sorted(groups_doc.items())}
        m["per_type"] = {t: _group_summary(g, per_q, rc) for t, g in sorted(groups_type.items())}
        m["by_split"] = S.by_split(rs, smap, lambda sub: config_metrics(sub, rc, ())[0])
        out["configs"][rc.name] = m
    return out


def _merged(hit: Any) -> dict[str, Any]:
    """The chunks an evidence block joins (rag.answer.prompts.pack merges adjacent hits into one block
    named after its first chunk), for scoring the block by what it holds."""
    m = (getattr(hit.chunk, "metadata", None) or {}).get("merged")
    return {"merged": list(m)} if m else {}


def _seen_rows(rs: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Answered rows with `retrieved[SEEN]`: their `hits`, the passages handed to the model, in
    order. A merged block is relevant to a quote when one of the chunks it joins is."""
    out = []
    for r in rs:
        if r.get("answer") is None or r.get("hits") is None:
            continue
        blocks = [(h["chunk_id"], set(h.get("merged") or [h["chunk_id"]])) for h in r["hits"]]
        rel = [sorted(set(q) | {b for b, members in blocks if members & set(q)}) for q in r.get("relevant_chunks") or []]
        out.append({**r, "relevant_chunks": rel, "retrieved": {**(r.get("retrieved") or {}), SEEN: [b for b, _ in blocks]}})
    return out


def config_metrics(rs: Sequence[Mapping[str, Any]], rc: RunConfig, sweep_modes: Sequence[str]) -> tuple[dict[str, Any], dict]:
    """The summaries of one configuration's rows (and the per-query retrieval scores of its own
    mode, for the breakdowns)."""
    ans = [r for r in rs if r.get("answerable", True)]
    answered = [r for r in rs if r.get("answer") is not None]
    m: dict[str, Any] = {"config": dataclasses.asdict(rc), "n": len(rs), "n_answerable": len(ans),
                         "n_errors": sum(1 for r in rs if r.get("error"))}
    main = retrieval_for(rs, rc.mode)
    per_q = main.pop("_per_query")
    m["retrieval"] = main
    if not rc.retrieval_only:
        seen = retrieval_for(_seen_rows(rs), SEEN, SEEN_KS)
        seen.pop("_per_query")
        for level in ("chunk", "doc"):  # recall over every passage the model saw, whatever k was
            seen[level]["recall_all"] = seen[level].pop(f"recall@{SEEN_KS[-1]}", None)
        m["retrieval_seen"] = seen
        m["n_rewritten_query"] = sum(1 for r in answered if (r.get("retrieval_query") or r.get("standalone_question") or r["question"]) != r["question"])
    m["retrieval_sweep"] = {}
    for mode in sweep_modes:
        sw = retrieval_for(rs, mode)
        sw.pop("_per_query")
        m["retrieval_sweep"][mode] = sw
    if not rc.retrieval_only:
        aa = [r for r in answered if r.get("answerable", True)]
        nonref = [r for r in aa if not r.get("refused")]
        m["answer"] = {
            "em": _mean_key(aa, "em"),
            "f1": _mean_key(aa, "f1"),
            "contains": _mean_key(aa, "contains"),
            "correct": _mean_key(aa, "correct"),
            "list_coverage": _mean_key(aa, "list_coverage"),
            "n": len(aa),
            "n_list": sum(1 for r in aa if (r.get("scores") or {}).get("list_coverage") is not None),
        }
        m["citation"] = {
            "precision": _mean_key(nonref, "citation_precision"),
            "precision_self": _mean_key(nonref, "citation_precision_self"),
            "recall": _mean_key(nonref, "citation_recall"),
            "cites_evidence": _mean_key(aa, "cites_evidence"),
            "grounded": M.mean(float(bool(r.get("grounded"))) for r in nonref),
            "n_answers": len(nonref),
            "n_evidence": sum(1 for r in aa if (r.get("scores") or {}).get("cites_evidence") is not None),
        }
        judged = [r["judge"] for r in aa if r.get("judge") is not None]
        if any("judge" in r for r in aa):
            m["judge"] = {"label": "LLM-as-judge (configured LLM; noisy, not part of baselines)",
                          "agreement": M.mean(judged), "n": len(judged),
                          "n_unparsed": sum(1 for r in aa if "judge" in r and r["judge"] is None)}
        m["refusal"] = S.refusal_summary([bool(r.get("answerable", True)) for r in answered], [bool(r.get("refused")) for r in answered])
    lat_keys = ["retrieve"] if rc.retrieval_only else ["retrieve", "first_token", "total"]
    m["latency"] = {k_: M.latency_summary((r.get("timings") or {}).get(k_) for r in rs) for k_ in lat_keys}
    return m, per_q


def _group_summary(rs: Sequence[Mapping[str, Any]], per_q: Mapping[str, Mapping[str, Mapping[str, float]]], rc: RunConfig) -> dict[str, Any]:
    s: dict[str, Any] = {"n": len(rs)}
    cq = [per_q["chunk"][r["qid"]]["recall@5"] for r in rs if r["qid"] in per_q["chunk"]]
    dq = [per_q["doc"][r["qid"]]["recall@5"] for r in rs if r["qid"] in per_q["doc"]]
    s["chunk_recall@5"] = M.mean(cq)
    s["doc_recall@5"] = M.mean(dq)
    if not rc.retrieval_only:
        aa = [r for r in rs if r.get("answerable", True)]
        s["f1"] = _mean_key(aa, "f1")
        s["contains"] = _mean_key(aa, "contains")
        s["correct"] = _mean_key(aa, "correct")
        s["refused"] = M.mean(float(bool(r.get("refused"))) for r in rs if r.get("answer") is not None)
    return s
