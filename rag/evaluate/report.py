"""Presenting an evaluation run: the terminal summary (rich), the Markdown report with plots
(matplotlib, Agg backend, PNGs beside the report) and the baseline check table.

The report is Markdown rather than HTML so it diffs in review and renders on any forge; the
plots are separate PNG files it links. The summary comes twice: on all questions, then "by
split" (each configuration on all / dev / held-out, a compact set of rows) so a number tuned on
the dev half is always read beside the held-out one.
"""

from __future__ import annotations

import json
from pathlib import Path
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
    "held-out: the other half. Split by `rag.evalsets.dev_split` over the whole set (sha1 of the query id, stratified by "
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


# ----------------------------------------------------------------------------- Markdown


def _cell(v: Any, limit: int = 0) -> str:
    s = v if isinstance(v, str) else fmt(v)
    s = s.replace("\r", " ").replace("\n", " ").replace("|", "\\|").strip()
    if limit and len(s) > limit:
        s = s[: limit - 1] + "…"
    return s or " "


def md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    for r in rows:
        if r:
            lines.append("| " + " | ".join(_cell(c) for c in r) + " |")
    return "\n".join(lines)


def _plots(out: Path, metrics: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")  # headless: no display on servers and CI
    import matplotlib.pyplot as plt

    files: dict[str, str] = {}
    configs = metrics["configs"]
    first = next(iter(configs.values()))
    sweep = next((m["retrieval_sweep"] for m in configs.values() if m.get("retrieval_sweep")), {})
    if sweep:
        fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
        for ax, level in zip(axes, ("chunk", "doc")):
            for mode, m in sweep.items():
                ks = sorted(int(k.split("@")[1]) for k in m[level] if k.startswith("recall@") and m[level][k] is not None)
                if ks:
                    ax.plot(ks, [m[level][f"recall@{k}"] for k in ks], marker="o", label=mode)
            ax.set_xscale("log")
            ax.set_xticks([1, 3, 5, 10, 20])
            ax.set_xticklabels(["1", "3", "5", "10", "20"])
            ax.set_xlabel("k")
            ax.set_title(f"{level}-level Recall@k")
            ax.grid(alpha=0.3)
        axes[0].set_ylabel("recall")
        axes[0].set_ylim(0, 1.02)
        axes[0].legend()
        fig.tight_layout()
        fig.savefig(out / "recall_at_k.png", dpi=110)
        plt.close(fig)
        files["recall"] = "recall_at_k.png"

    fig, ax = plt.subplots(figsize=(8, 3.5))
    plotted = False
    for name in configs:
        key = "retrieve" if configs[name]["config"].get("retrieval_only") else "total"
        vals = [(r.get("timings") or {}).get(key) for r in rows if r["config"] == name]
        vals = [v for v in vals if v is not None]
        if vals:
            ax.hist(vals, bins=30, alpha=0.55, label=f"{name} ({key})")
            plotted = True
    if plotted:
        ax.set_xlabel("seconds per question")
        ax.set_ylabel("questions")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "latency.png", dpi=110)
        files["latency"] = "latency.png"
    plt.close(fig)

    per_doc = first.get("per_document") or {}
    docs = [d for d in per_doc if not d.startswith("(")]
    if 1 < len(docs) <= 40:
        # one config: its retrieval and answer figures side by side; several: one figure per config
        names = list(configs)
        if len(names) == 1:
            ro = configs[names[0]]["config"].get("retrieval_only")
            series = [(names[0], k) for k in (["chunk_recall@5", "doc_recall@5"] if ro else ["chunk_recall@5", "contains", "f1"])]
        else:
            series = [(n, "chunk_recall@5" if configs[n]["config"].get("retrieval_only") else "contains") for n in names]
        fig, ax = plt.subplots(figsize=(max(6, 0.8 * len(docs) + 2), 3.8))
        width = 0.8 / len(series)
        for i, (name, key) in enumerate(series):
            pd = configs[name].get("per_document") or {}
            ys = [pd.get(d, {}).get(key) or 0.0 for d in docs]
            label = key if len(names) == 1 else f"{name} {key}"
            ax.bar([j + i * width for j in range(len(docs))], ys, width=width, label=label)
        ax.set_xticks([j + width * (len(series) - 1) / 2 for j in range(len(docs))])
        ax.set_xticklabels([d[:18] for d in docs], rotation=30, ha="right", fontsize=8)
        ax.set_ylim(0, 1.02)
        ax.legend(fontsize=8)
        ax.set_title("per document")
        fig.tight_layout()
        fig.savefig(out / "per_document.png", dpi=110)
        plt.close(fig)
        files["per_document"] = "per_document.png"
    return files


def render_markdown(info: Mapping[str, Any], metrics: Mapping[str, Any], rows: Sequence[Mapping[str, Any]],
                    plots: Mapping[str, str] | None = None, max_answers: int = 400) -> str:
    plots = plots or {}
    git = info.get("git") or {}
    idx = info.get("index") or {}
    cfg = info.get("config") or {}
    names = list(metrics["configs"])
    L: list[str] = [f"# Evaluation: {metrics.get('evalset')}", ""]
    if info.get("partial"):
        p = info["partial"]
        L += [f"**Partial run**: {p['questions_scored']} of {p['questions_planned']} questions finished in every "
              "configuration; only those are scored.", ""]
    L += [
        f"- command: `{info.get('command', '')}`",
        f"- date: {info.get('finished') or info.get('started')}",
        f"- commit: `{git.get('commit')}`" + (" (working tree has uncommitted changes)" if git.get("dirty") else ""),
        f"- index: {idx.get('n_chunks')} chunks from {metrics.get('index', {}).get('n_documents')} documents, "
        f"embedding model `{cfg.get('embed', {}).get('model')}`, chunking {cfg.get('chunk', {}).get('max_tokens')} tokens "
        f"(cache key `{idx.get('key')}`, built in {idx.get('seconds')} s)",
        f"- configurations: {', '.join(f'`{n}`' for n in names)}",
    ]
    nv = info.get("naive")
    if nv:
        L += [f"- naive baseline (`naive:…`, rag/evaluate/naive.py): RecursiveCharacterTextSplitter {nv.get('chunk_size')}/"
              f"{nv.get('chunk_overlap')} → {nv.get('n_chunks')} chunks → langchain_community FAISS, top {nv.get('k')}, one stuff "
              "prompt, same chat model and encoder; no citations, refusal = `is_refusal(answer)`"]
    L += [
        "",
        "Metric definitions: retrieval through ranx; chunk level counts an evidence quote as found when a retrieved chunk "
        "contains it (or covers at least half of it); answers scored as the CMRC 2018 scorer (OpenCC-simplified, half-width, "
        "no punctuation; F1 from the longest common substring of character tokens); citation precision/recall rechecked "
        "lexically (≥ 0.5 of the statement's character bigrams in the cited passage), the system's own flag shown as "
        "self-reported.",
        "",
        "## Summary",
        "",
    ]
    split = (info.get("settings") or {}).get("split") or "all"
    if split != "all":
        L += [f"Only the {'held-out' if split == 'heldout' else split} half of the set (`--split {split}`).", ""]
    hn, srows = summary_rows(metrics)
    L += [md_table(["metric", *hn], srows), "", QUERY_NOTE, ""]
    sm = split_metrics(metrics)
    if sm is not None:
        hn, srows = summary_rows(sm, SPLIT_ROWS)
        L += ["## Summary by split", "", SPLIT_NOTE, "", md_table(["metric", *hn], srows), ""]

    first = metrics["configs"][names[0]]
    swept = next((metrics["configs"][n] for n in names if metrics["configs"][n].get("retrieval_sweep")), first)
    sweep = swept.get("retrieval_sweep") or {}
    if sweep:
        L += ["## Retrieval by mode", "", f"`{swept['config'].get('llm')}` rows: every question searched with each mode to depth 20 "
              "(same questions, same index), with the query the answerer retrieved with.", ""]
        hdr = ["mode", "level", "R@1", "R@3", "R@5", "R@10", "R@20", "MRR@10", "nDCG@10", "n"]
        trs = []
        for mode, m in sweep.items():
            for level in ("chunk", "doc"):
                x = m.get(level) or {}
                trs.append([mode, level, *[x.get(f"recall@{k}") for k in (1, 3, 5, 10, 20)], x.get("mrr@10"), x.get("ndcg@10"), x.get("n")])
        L += [md_table(hdr, trs), ""]
        if "recall" in plots:
            L += [f"![Recall@k per retrieval mode]({plots['recall']})", ""]
    if "latency" in plots:
        L += ["## Latency", "", f"![latency histogram]({plots['latency']})", ""]

    L += ["## Per document", ""]
    retrieval_only = all(metrics["configs"][n]["config"].get("retrieval_only") for n in names)
    keys = ["n", "chunk_recall@5", "doc_recall@5"] + ([] if retrieval_only else ["f1", "contains", "refused"])
    pdrows = []
    for d, s in (first.get("per_document") or {}).items():
        pdrows.append([d, *[s.get(k) for k in keys]])
    if len(pdrows) > 60:
        pdrows = sorted(pdrows, key=lambda r: r[1], reverse=True)[:30]
        L += ["(30 documents with the most questions)", ""]
    L += [md_table(["document", *keys], pdrows), ""]
    if "per_document" in plots:
        L += [f"![per-document breakdown]({plots['per_document']})", ""]

    L += ["## Per question type", ""]
    for n in names:
        pt = metrics["configs"][n].get("per_type") or {}
        if len(names) > 1:
            L += [f"`{n}`", ""]
        L += [md_table(["type", *keys], [[t, *[s.get(k) for k in keys]] for t, s in pt.items()]), ""]

    answered = [n for n in names if not metrics["configs"][n]["config"].get("retrieval_only")]
    if answered:
        by = {(r["config"], r["qid"]): r for r in rows}
        qids = list(dict.fromkeys(r["qid"] for r in rows))[:max_answers]
        L += ["## Answers side by side", "",
              "F1 after the answer; ⊘ marks a refusal; ✗ an error. Answers shortened to 160 characters.", ""]
        trs = []
        for q in qids:
            r0 = next((by[(n, q)] for n in answered if (n, q) in by), None)
            if r0 is None:
                continue
            ref = " / ".join(r0.get("references") or []) or ("(unanswerable)" if not r0.get("answerable", True) else "")
            cells = [q, r0.get("split") or "", r0.get("type", ""), _cell(r0["question"], 80), _cell(ref, 80)]
            for n in answered:
                r = by.get((n, q))
                if r is None:
                    cells.append("")
                elif r.get("error"):
                    cells.append("✗ " + _cell(r["error"], 80))
                else:
                    f1 = (r.get("scores") or {}).get("f1")
                    mark = "⊘ " if r.get("refused") else ""
                    cells.append(f"{mark}{_cell(r.get('answer') or '', 160)}" + (f" **{f1:.2f}**" if f1 is not None else ""))
            trs.append(cells)
        L += [md_table(["id", "split", "type", "question", "reference", *answered], trs), ""]

    misses = [r for r in rows if r["config"] == names[0] and r.get("answerable", True) and r.get("relevant_chunks")
              and not _found(r, first["config"]["mode"], 5)]
    if misses:
        L += [f"## Retrieval misses ({names[0]}: evidence not in the top 5)", ""]
        L += [md_table(["id", "question", "evidence doc", "top-3 retrieved"],
                       [[r["qid"], _cell(r["question"], 60), (r.get("relevant_docs") or [""])[0],
                         ", ".join((r.get("retrieved") or {}).get(first["config"]["mode"], [])[:3])] for r in misses[:80]]), ""]
    probs = info.get("evidence_problems") or []
    if probs:
        L += ["## Evidence quotes not placed in the index", ""]
        L += [md_table(["question", "evidence #", "problem"], [[p["qid"], p["evidence"], p["problem"]] for p in probs[:100]]), ""]
    L += ["## Resolved configuration", "", "<details><summary>config.json</summary>", "", "```json",
          json.dumps(cfg, ensure_ascii=False, indent=2), "```", "", "</details>", ""]
    return "\n".join(L)


def _found(r: Mapping[str, Any], mode: str, k: int) -> bool:
    top = set((r.get("retrieved") or {}).get(mode, [])[:k])
    return any(top & set(quote) for quote in r.get("relevant_chunks") or [])


def write_report(out: Path, info: Mapping[str, Any], metrics: Mapping[str, Any], rows: Sequence[Mapping[str, Any]], configs: Sequence[Any] = ()) -> Path:
    """report.md (+ PNG plots) in `out`; returns the report's path."""
    out = Path(out)
    try:
        plots = _plots(out, metrics, rows)
    except Exception as e:  # plots are a nicety: a broken font cache must not lose the numbers
        import logging

        logging.getLogger(__name__).warning("plots skipped: %s", e)
        plots = {}
    p = out / "report.md"
    p.write_text(render_markdown(info, metrics, rows, plots), encoding="utf-8")
    return p


def export_report(run_dir: Path, dest: Path) -> Path:
    """Copy a run's report.md to `dest` (e.g. benchmarks/results/eval_seeds.md) with its plots in
    `<dest stem>_files/`, links rewritten, so a results file in the repository stands alone."""
    import re
    import shutil

    run_dir, dest = Path(run_dir), Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    files = dest.parent / f"{dest.stem}_files"
    text = (run_dir / "report.md").read_text(encoding="utf-8")
    pngs = sorted(run_dir.glob("*.png"))
    if pngs:
        files.mkdir(exist_ok=True)
    for png in pngs:
        shutil.copy2(png, files / png.name)
        text = re.sub(rf"\]\({re.escape(png.name)}\)", f"]({files.name}/{png.name})", text)
    dest.write_text(text, encoding="utf-8")
    return dest
