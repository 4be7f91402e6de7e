"""The Markdown report of an evaluation run (report.md, with the PNG plots of rag.evaluate.plots
beside it) and its export into the repository.

The report is Markdown rather than HTML so it diffs in review and renders on any forge; the
plots are separate PNG files it links. Its summary tables come from rag.evaluate.summary (the
same rows as the terminal's); the names callers know from here (`summary_rows`, `SPLIT_ROWS`,
`summary_table`, `split_table`, `check_table`, …) are re-exported.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

# re-exported: rag.apps.commands.eval and tests reach the summary through this module
from rag.evaluate.summary import (QUERY_NOTE, SPLIT_NOTE, SPLIT_ROWS, SUMMARY_ROWS, TERMINAL_NOTE, check_table, fmt,
                                  split_metrics, split_table, summary_rows, summary_table)

__all__ = [
    "QUERY_NOTE", "SPLIT_NOTE", "SPLIT_ROWS", "SUMMARY_ROWS", "TERMINAL_NOTE", "check_table", "export_report", "fmt",
    "md_table", "render_markdown", "split_metrics", "split_table", "summary_rows", "summary_table", "write_report",
]


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


def render_markdown(info: Mapping[str, Any], metrics: Mapping[str, Any], rows: Sequence[Mapping[str, Any]],
                    plots: Mapping[str, str] | None = None, max_answers: int = 400) -> str:
    """report.md: the run's provenance, the summaries, retrieval by mode, breakdowns, the answers
    side by side, retrieval misses, unplaced evidence and the resolved configuration."""
    plots = plots or {}
    names = list(metrics["configs"])
    L = _md_head(info, metrics, names) + _md_summary(info, metrics) + _md_retrieval(metrics, names, plots)
    L += _md_breakdowns(metrics, names, plots) + _md_answers(metrics, names, rows, max_answers)
    L += _md_misses(info, metrics, names, rows)
    return "\n".join(L)


def _md_head(info: Mapping[str, Any], metrics: Mapping[str, Any], names: Sequence[str]) -> list[str]:
    git = info.get("git") or {}
    idx = info.get("index") or {}
    cfg = info.get("config") or {}
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
    if info.get("rescored"):
        L += [f"- answer and citation scores recomputed from the stored answers on {info['rescored']} "
              "(`rag eval --report-only --rescore --out DIR`: same answers, current metric definitions)"]
    nv = info.get("naive")
    if nv:
        L += [f"- naive baseline (`naive:…`, rag/evaluate/naive.py): RecursiveCharacterTextSplitter {nv.get('chunk_size')}/"
              f"{nv.get('chunk_overlap')} → {nv.get('n_chunks')} chunks → langchain_community FAISS, top {nv.get('k')}, one stuff "
              "prompt, same chat model and encoder; no citations, refusal = `is_refusal(answer)`"]
    L += [
        "",
        "Metric definitions: retrieval through ranx; chunk level counts an evidence quote as found when a retrieved chunk "
        "contains it (or covers at least half of it); answers scored as the CMRC 2018 scorer (OpenCC-simplified, half-width, "
        "no punctuation; F1 from the longest common substring of character tokens; \"contains reference\" needs the whole "
        "reference string, \"holds every part / list item\" every list item of a list question, else every part of the "
        "reference split at enumeration/clause punctuation, in any order); citation precision/recall rechecked "
        "lexically (≥ 0.5 of the statement's character bigrams in the cited passage; an English statement citing a Chinese "
        "passage: every number, Chinese term and pinyin name it states is in the passage, the system's flag when it "
        "states none), the system's own flag shown as self-reported.",
        "",
        "## Summary",
        "",
    ]
    return L


def _md_summary(info: Mapping[str, Any], metrics: Mapping[str, Any]) -> list[str]:
    L: list[str] = []
    split = (info.get("settings") or {}).get("split") or "all"
    if split != "all":
        L += [f"Only the {'held-out' if split == 'heldout' else split} half of the set (`--split {split}`).", ""]
    hn, srows = summary_rows(metrics)
    L += [md_table(["metric", *hn], srows), "", QUERY_NOTE, ""]
    sm = split_metrics(metrics)
    if sm is not None:
        hn, srows = summary_rows(sm, SPLIT_ROWS)
        L += ["## Summary by split", "", SPLIT_NOTE, "", md_table(["metric", *hn], srows), ""]
    return L


def _md_retrieval(metrics: Mapping[str, Any], names: Sequence[str], plots: Mapping[str, str]) -> list[str]:
    L: list[str] = []
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
    return L


def _table_keys(metrics: Mapping[str, Any], names: Sequence[str]) -> list[str]:
    retrieval_only = all(metrics["configs"][n]["config"].get("retrieval_only") for n in names)
    return ["n", "chunk_recall@5", "doc_recall@5"] + ([] if retrieval_only else ["f1", "contains", "correct", "refused"])


def _md_breakdowns(metrics: Mapping[str, Any], names: Sequence[str], plots: Mapping[str, str]) -> list[str]:
    first = metrics["configs"][names[0]]
    keys = _table_keys(metrics, names)
    L = ["## Per document", ""]
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
    return L


def _md_answers(metrics: Mapping[str, Any], names: Sequence[str], rows: Sequence[Mapping[str, Any]], max_answers: int) -> list[str]:
    L: list[str] = []
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
    return L


def _md_misses(info: Mapping[str, Any], metrics: Mapping[str, Any], names: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> list[str]:
    first = metrics["configs"][names[0]]
    cfg = info.get("config") or {}
    L: list[str] = []
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
    return L


def _found(r: Mapping[str, Any], mode: str, k: int) -> bool:
    top = set((r.get("retrieved") or {}).get(mode, [])[:k])
    return any(top & set(quote) for quote in r.get("relevant_chunks") or [])


def write_report(out: Path, info: Mapping[str, Any], metrics: Mapping[str, Any], rows: Sequence[Mapping[str, Any]], configs: Sequence[Any] = ()) -> Path:
    """report.md (+ PNG plots, and the TREC run files of rag.evaluate.runfile) in `out`; returns
    the report's path."""
    from rag.evaluate.runfile import write_runs

    out = Path(out)
    write_runs(out, rows)
    try:
        from rag.evaluate.plots import write_plots

        plots = write_plots(out, metrics, rows)
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
