"""The summary of an evaluation run, the one place that knows which figures it shows and how
they read: the row specs (SUMMARY_ROWS, and SPLIT_ROWS, a compact selection labelled from it),
cell formatting, `summary_rows` (shared by the terminal tables and report.md), the by-split
reshaping of metrics.json's `by_split`, and the terminal tables (rich), baseline check included.

The summary comes twice: on all questions, then "by split" (each configuration on all / dev /
held-out, a compact set of rows) so a number tuned on the dev half is always read beside the
held-out one. The figures themselves are computed in rag.evaluate.aggregate; this module only
lays them out.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from rag.evaluate import splits as S

# (label, path into a configuration's metrics); None rows are section breaks in the table
SUMMARY_ROWS: list[tuple[str, tuple[str, ...]] | None] = [
    ("questions", ("n",)),
    ("errors", ("n_errors",)),
    ("retrieved with a rewritten query", ("n_rewritten_query",)),
    None,
    ("chunk Recall@1 · model's passages", ("retrieval_seen", "chunk", "recall@1")),
    ("chunk Recall · all model's passages", ("retrieval_seen", "chunk", "recall_all")),
    ("doc Recall@1 · model's passages", ("retrieval_seen", "doc", "recall@1")),
    ("doc Recall · all model's passages", ("retrieval_seen", "doc", "recall_all")),
    None,
    ("chunk Recall@1", ("retrieval", "chunk", "recall@1")),
    ("chunk Recall@5", ("retrieval", "chunk", "recall@5")),
    ("chunk Recall@20", ("retrieval", "chunk", "recall@20")),
    ("chunk MRR@10", ("retrieval", "chunk", "mrr@10")),
    ("chunk nDCG@10", ("retrieval", "chunk", "ndcg@10")),
    ("doc Recall@1", ("retrieval", "doc", "recall@1")),
    ("doc Recall@5", ("retrieval", "doc", "recall@5")),
    ("doc MRR@10", ("retrieval", "doc", "mrr@10")),
    ("doc nDCG@10", ("retrieval", "doc", "ndcg@10")),
    None,
    ("answer EM", ("answer", "em")),
    ("answer F1 (CMRC)", ("answer", "f1")),
    ("contains reference", ("answer", "contains")),
    ("holds every part / list item", ("answer", "correct")),
    ("list-item coverage", ("answer", "list_coverage")),
    ("LLM-as-judge agreement (noisy)", ("judge", "agreement")),
    None,
    ("citation precision", ("citation", "precision")),
    ("citation precision (self-reported)", ("citation", "precision_self")),
    ("citation recall", ("citation", "recall")),
    ("cites the evidence", ("citation", "cites_evidence")),
    None,
    ("refusal accuracy (unanswerable)", ("refusal", "refusal_accuracy")),
    ("false-refusal rate (answerable)", ("refusal", "false_refusal_rate")),
    ("refusal balanced accuracy", ("refusal", "balanced_accuracy")),
    ("refusal decision accuracy (all questions)", ("refusal", "accuracy")),
    ("… never refusing, same questions", ("refusal", "never_refuse_accuracy")),
    None,
    ("retrieve p50 / p95 (s)", ("latency", "retrieve")),
    ("first token p50 / p95 (s)", ("latency", "first_token")),
    ("total p50 / p95 (s)", ("latency", "total")),
]

# the rows of the by-split table: a compact selection of the summary's, labelled as there (the
# labels have one home, SUMMARY_ROWS); None rows are section breaks
_LABELS = {row[1]: row[0] for row in SUMMARY_ROWS if row is not None}
SPLIT_ROWS: list[tuple[str, tuple[str, ...]] | None] = [None if path is None else (_LABELS[path], path) for path in (
    ("n",),
    None,
    ("retrieval_seen", "chunk", "recall@1"),
    ("retrieval_seen", "chunk", "recall_all"),
    ("retrieval", "chunk", "recall@5"),
    ("retrieval", "doc", "recall@1"),
    None,
    ("answer", "f1"),
    ("answer", "contains"),
    ("answer", "correct"),
    ("answer", "list_coverage"),
    ("citation", "precision"),
    ("citation", "cites_evidence"),
    None,
    ("refusal", "refusal_accuracy"),
    ("refusal", "false_refusal_rate"),
    ("refusal", "balanced_accuracy"),
    ("refusal", "accuracy"),
    ("refusal", "never_refuse_accuracy"),
)]

QUERY_NOTE = (
    "Retrieval rows marked \"· model's passages\" score the passages handed to the model (the Evidence event), retrieved "
    "with the answerer's own query: the condensed standalone question for a follow-up, the question as asked otherwise "
    "(`retrieval_query` in results.jsonl); the naive baseline searches its own FAISS store with the question as asked. "
    "The unmarked retrieval rows, the recall@k curves and the per-mode table score a separate search to depth 20 with that "
    "same query (the naive baseline: its FAISS store to depth 20; retrieval-only runs: the question as asked). "
    "Refusal: balanced accuracy is the mean of refusal accuracy and 1 − false-refusal rate (0.5 for any constant policy); "
    "decision accuracy counts answered answerable and refused unanswerable questions over all, to be read beside the "
    "accuracy of never refusing on the same questions."
)
TERMINAL_NOTE = (
    "· model's passages: what the answerer handed to the model (Evidence), retrieved with its own query (the condensed "
    "follow-up; naive: the question as asked). Unmarked retrieval rows: a separate depth-20 search with that query. "
    "Never refusing: the accuracy of answering every question."
)
SPLIT_NOTE = (
    "dev: the half thresholds are tuned on (benchmarks/calibrate_refusal.py chooses the refusal threshold there); "
    "held-out: the other half. Split by `rag.evaluate.evalsets.dev_split` over the whole set (sha1 of the query id, stratified by "
    "answerability; a follow-up goes to the half of its conversation's first question); each row's half is `split` in results.jsonl."
)


def _get(d: Any, path: Sequence[str]) -> Any:
    for p in path:
        if not isinstance(d, Mapping) or p not in d:
            return None
        d = d[p]
    return d


def fmt(v: Any) -> str:
    """Cell text: 3 decimals for scores, p50 / p95 for latency summaries, – for unknown.

    >>> fmt(0.12345), fmt(None), fmt({"p50": 0.1, "p95": 1.25, "n": 3}), fmt(7)
    ('0.123', '–', '0.100 / 1.250', '7')
    """
    if v is None:
        return "–"
    if isinstance(v, Mapping):
        if v.get("p50") is None:
            return "–"
        return f"{v['p50']:.3f} / {v['p95']:.3f}"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def summary_rows(metrics: Mapping[str, Any], spec: Sequence[tuple[str, tuple[str, ...]] | None] | None = None) -> tuple[list[str], list[list[str]]]:
    names = list(metrics["configs"])
    out: list[list[str]] = []
    for row in SUMMARY_ROWS if spec is None else spec:
        if row is None:
            out.append([])
            continue
        label, path = row
        vals = [_get(metrics["configs"][n], path) for n in names]
        if all(v is None or (isinstance(v, Mapping) and v.get("p50") is None) for v in vals):
            continue
        out.append([label, *[fmt(v) for v in vals]])
    # drop separators that ended up doubled or at the edges
    clean: list[list[str]] = []
    for r in out:
        if not r and (not clean or not clean[-1]):
            continue
        clean.append(r)
    while clean and not clean[-1]:
        clean.pop()
    return names, clean


def split_metrics(metrics: Mapping[str, Any]) -> dict[str, Any] | None:
    """A metrics-shaped dict whose "configs" are `<config> · all|dev|held-out` columns, or None
    when the run holds only one half (then the summary already is that half)."""
    cols: dict[str, Any] = {}
    halves = {s for m in metrics["configs"].values() for s in (m.get("by_split") or {})}
    if len(halves) < 2:
        return None
    for name, m in metrics["configs"].items():
        cols[f"{name} · all"] = m
        for s in S.SPLITS:
            label = S.LABEL[s]
            if s in (m.get("by_split") or {}):
                cols[f"{name} · {label}"] = m["by_split"][s]
    return {"evalset": metrics.get("evalset"), "configs": cols}


def split_table(metrics: Mapping[str, Any]):
    """The by-split summary for the terminal, or None (one half only)."""
    sm = split_metrics(metrics)
    return None if sm is None else summary_table(sm, title="by split: all / dev / held-out", spec=SPLIT_ROWS, caption=None)


def summary_table(metrics: Mapping[str, Any], title: str | None = None, spec=None, caption: str | None = TERMINAL_NOTE):
    from rich.table import Table

    names, rows = summary_rows(metrics, spec)
    t = Table(title=title or f"rag eval {metrics.get('evalset', '')}", show_lines=False, caption=caption, caption_justify="left")
    t.add_column("metric")
    for n in names:
        t.add_column(n, justify="right")
    for r in rows:
        if not r:
            t.add_section()
        else:
            t.add_row(*r)
    return t


def check_table(rows: Sequence[Any], only_failed: bool = False):
    from rich.table import Table

    t = Table(title="baseline check")
    for c in ("metric", "baseline", "now", "change", "tolerance", ""):
        t.add_column(c, justify="left" if c in ("metric", "") else "right")
    for r in rows:
        if only_failed and r.ok:
            continue
        t.add_row(r.metric, f"{r.baseline:.4f}", "missing" if r.current is None else f"{r.current:.4f}",
                  "–" if r.delta is None else f"{r.delta:+.4f}", f"{r.tolerance:.3f}",
                  "ok" if r.ok else "[bold red]FAIL[/]")
    return t
