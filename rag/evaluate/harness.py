"""The evaluation harness behind `rag eval`: index a set's corpus, ask every question, score it.
This module is the resumable loop and the public entry points (`run_eval`, `finalize`,
`report_only`); it re-exports the names of the modules it is built from, so
`from rag.evaluate.harness import ...` keeps working for every earlier caller.

Flow: load the set (rag.evaluate.data: a BEIR-style folder, or an `evalset.json` that imports
SQuAD data on the fly) → build or reuse a knowledge base from its corpus (rag.evaluate.cache,
keyed by a hash of the corpus, the chunk and embedding settings and the ingest/chunking code)
→ derive chunk-level relevance from the evidence quotes (rag.evaluate.qrels) → for every
configuration (rag.evaluate.runconfig: one, or several with `--compare`) and every question:
retrieve with each mode (for the recall@k curves), answer through `Assistant.ask` (unless
retrieval-only), score (rag.evaluate.question) → append one line per question to
`results.jsonl` (so an interrupted run resumes) → aggregate into `metrics.json`
(rag.evaluate.aggregate) and a Markdown report with plots (rag.evaluate.report). Baselines and
`--check`: rag.evaluate.baselines; `--judge`: rag.evaluate.judge.

Beside the assistant, `naive:BACKEND[:MODEL]` configurations answer with a plain LangChain RAG
over the same model and encoder (rag.evaluate.naive), through the same scoring. Every row records
its dev/held-out half and every summary is given on both halves too (rag.evaluate.splits).

Deliberate compromises
- Two retrieval figures per answering configuration, each from the query the answerer really
  retrieved with (`Answer.standalone_question`: the condensed follow-up; the naive baseline's
  question as asked): `retrieval_seen` scores the passages handed to the model (the Evidence
  event), `retrieval` a separate search with that query to depth 20 (so recall@20 is measurable
  although the model sees only k passages; baselines check this one), and the mode sweep searches
  with the same query.
- In retrieval-only runs follow-up questions are searched as asked (no condensation without an
  LLM); the per-type table shows them separately.
- A run folder is resumed only with the very settings it was started with (`_check_resumable`);
  rows that ended in an error are asked again.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from rag.config import Config
from rag.errors import RagError
from rag.evaluate.evalsets import EvalSet
from rag.evaluate import metrics as M  # noqa: F401  (re-exported: tests reach the metrics as H.M)
from rag.evaluate import naive as N
from rag.evaluate import splits as S

# re-exported: callers and tests import these from rag.evaluate.harness
from rag.evaluate.aggregate import KS, SEEN, SEEN_KS, aggregate, config_metrics, retrieval_for
from rag.evaluate.base import CODE_ROOT, EvalError, runs_dir
from rag.evaluate.baselines import (DEFAULT_TOLERANCE, LOWER_IS_BETTER, NOT_CHECKED, CheckRow, baseline_path,
                                    check_baseline, check_config_matches, flat_metrics, read_baseline, tolerances,
                                    write_baseline)
from rag.evaluate.cache import Corpus, build_corpus, corpus_key, document_texts
from rag.evaluate.data import import_set, load_evalset, question_order, read_manifest
from rag.evaluate.judge import JUDGE_PROMPT, judge_answer
from rag.evaluate.qrels import derive_qrels
from rag.evaluate.question import DEPTH, MemoSearcher, run_one, score_row
from rag.evaluate.runconfig import MODES, RunConfig, make_configs, parse_compare

__all__ = [
    "CheckRow", "Corpus", "DEFAULT_TOLERANCE", "DEPTH", "EvalError", "EvalRun", "JUDGE_PROMPT", "KS",
    "LOWER_IS_BETTER", "M", "MODES", "NOT_CHECKED", "RunConfig", "SEEN", "SEEN_KS", "aggregate",
    "baseline_path", "build_corpus", "check_baseline", "check_config_matches", "config_metrics", "corpus_key",
    "derive_qrels", "document_texts", "finalize", "flat_metrics", "git_info", "import_set", "judge_answer",
    "load_evalset", "make_configs", "parse_compare", "question_order", "read_baseline", "read_manifest",
    "report_only", "retrieval_for", "run_eval", "score_row", "tolerances", "write_baseline",
]

log = logging.getLogger(__name__)


def git_info(root: Path = CODE_ROOT) -> dict[str, Any]:
    def git(*a: str) -> str:
        return subprocess.run(["git", *a], cwd=root, capture_output=True, text=True, timeout=20).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit or None, "dirty": dirty}



@dataclass
class EvalRun:
    out_dir: Path
    configs: list[RunConfig]
    rows: list[dict[str, Any]]
    metrics: dict[str, Any]
    info: dict[str, Any]


def _load_rows(path: Path) -> dict[tuple[str, str], dict[str, Any]]:
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    if path.exists():
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                try:
                    r = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut by an interruption: that question is simply redone
                rows[(r["config"], r["qid"])] = r
    return rows



def _is_done(row: Mapping[str, Any] | None) -> bool:
    return bool(row) and not row.get("error")



def _naive_setup(es: EvalSet, corpus: Corpus, texts: Mapping[str, str], cfg: Config, assistant: Any):
    """The naive baseline over the same texts, cached beside the corpus's index; its chunks'
    relevance derived from the evidence quotes like the index's."""
    from types import SimpleNamespace

    titles = {d: (es.corpus.get(d) or {}).get("title", "") for d in texts}
    try:
        naive, info = N.for_harness(texts, corpus.kb.encoder, assistant, titles=titles,
                                    cache_dir=Path(cfg.paths.home) / "eval-cache" / f"{es.name}-{corpus.key}")
    except RagError as e:
        raise EvalError(f"naive baseline: {e}") from None
    rel, _, problems = derive_qrels(es, SimpleNamespace(kb=SimpleNamespace(chunks=naive.store.chunks), offsets=corpus.offsets), texts)
    for qid, i, why in problems:
        log.warning("naive baseline, evidence %s[%d]: %s", qid, i, why)
    info["evidence_problems"] = [{"qid": q, "evidence": i, "problem": w} for q, i, w in problems]
    return naive, rel, info



def _write_info(path: Path, info: Mapping[str, Any]) -> None:
    path.write_text(json.dumps(info, ensure_ascii=False, indent=2, default=str), encoding="utf-8")


def _settings(es: EvalSet, configs: Sequence[RunConfig], qids: Sequence[str], smap: Mapping[str, str], *,
              limit: int | None, sample: int | None, judge: bool, sweep_modes: Sequence[str], split: str) -> dict[str, Any]:
    """run.json's `settings`: what a resumed run must match."""
    return {
        "evalset": str(getattr(es, "path", "") or es.name),
        "name": es.name,
        "configs": [dataclasses.asdict(c) for c in configs],
        "limit": limit,
        "sample": sample,
        "n_questions": len(qids),
        "judge": judge,
        "sweep_modes": list(sweep_modes),
        "split": split,
        "split_counts": S.split_counts(qids, smap),
    }


def _check_resumable(out: Path, settings: Mapping[str, Any], resume: bool) -> None:
    """Raise unless `out` is empty or holds a run with these very settings (and resuming is allowed)."""
    run_json, results = out / "run.json", out / "results.jsonl"
    if not (run_json.exists() and results.exists()):
        return
    ps = json.loads(run_json.read_text(encoding="utf-8")).get("settings", {})
    same = (ps.get("name") == settings["name"] and ps.get("configs") == settings["configs"]
            and ps.get("limit") == settings["limit"] and ps.get("sample") == settings["sample"]
            and bool(ps.get("judge")) == settings["judge"] and ps.get("split", "all") == settings["split"])
    if not resume:
        raise EvalError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    if not same:
        raise EvalError(
            f"{out} holds a run with other settings ({ps.get('name')}, {[RunConfig(**c).name for c in ps.get('configs', [])]}, "
            f"limit {ps.get('limit')}, split {ps.get('split', 'all')}); choose another --out"
        )


def _index(es: EvalSet, cfg: Config, settings: Mapping[str, Any], command: str | None, encoder: Any, progress: bool):
    """Build or reuse the corpus's index and derive relevance; returns (corpus, document texts,
    chunk relevance, document qrels, run.json's info)."""
    t_index = time.perf_counter()
    corpus = build_corpus(es, cfg, encoder=encoder, progress=progress)
    t_index = time.perf_counter() - t_index
    texts = document_texts(corpus, es)
    chunk_rel, doc_rel, problems = derive_qrels(es, corpus, texts)
    for qid, i, why in problems:
        log.warning("evidence %s[%d]: %s", qid, i, why)
    info = {
        "settings": settings,
        "command": command or " ".join(shlex.quote(a) for a in ["rag", *sys.argv[1:]]),
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "git": git_info(),
        "config": cfg.to_dict(),
        "index": {"key": corpus.key, "path": str(corpus.kb.path), "build": corpus.report, "seconds": round(t_index, 2),
                  "n_chunks": len(corpus.kb.chunks), "manifest": corpus.kb.manifest},
        "evidence_problems": [{"qid": q, "evidence": i, "problem": w} for q, i, w in problems],
    }
    return corpus, texts, chunk_rel, doc_rel, info


def _plan(es: EvalSet, cfg: Config, configs: Sequence[RunConfig], corpus: Corpus, texts: Mapping[str, str], chunk_rel,
          sweep_modes: Sequence[str], chat_model: Any, info: dict[str, Any], run_json: Path) -> dict[str, tuple]:
    """Per configuration: (answerer, searcher, chunk relevance, sweep modes). The naive baseline
    has its own store, relevance and no sweep; its settings join run.json's info."""
    assistant = None
    if any(not c.retrieval_only for c in configs):
        from rag.answer.assistant import Assistant

        assistant = Assistant.open(corpus.kb, cfg, llm=chat_model)
    search = MemoSearcher(corpus.kb)
    plan = {c.name: (assistant, search, chunk_rel, sweep_modes) for c in configs}
    if any(N.is_naive(c.llm) for c in configs):
        naive, naive_rel, info["naive"] = _naive_setup(es, corpus, texts, cfg, assistant)
        for c in configs:
            if N.is_naive(c.llm):
                plan[c.name] = (naive, N.NaiveSearch(naive.store, DEPTH), naive_rel, ())
        _write_info(run_json, info)
    return plan


def _ask_all(fh, es: EvalSet, cfg: Config, configs: Sequence[RunConfig], qids: Sequence[str], done: dict, plan, doc_rel,
             smap: Mapping[str, str], judge_model: Any, on_question, bar) -> None:
    """Ask every question not yet done in every configuration, appending each row to `fh` as it
    is finished (that is what makes a run resumable)."""
    n_err = 0
    n_new = 0
    for rc in configs:
        for qid in qids:
            if _is_done(done.get((rc.name, qid))):
                continue
            answerer, searcher, rel, sweep = plan[rc.name]
            row = run_one(es, qid, rc, answerer, searcher, done, rel, doc_rel, sweep, cfg)
            row["split"] = smap.get(qid)
            if judge_model is not None and row.get("answer") is not None and row.get("answerable") \
                    and not row.get("refused") and row.get("references"):
                row["judge"] = judge_answer(judge_model, row["question"], row["references"], row["answer"])
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            fh.flush()
            done[(rc.name, qid)] = row
            n_new += 1
            if row.get("error"):
                n_err += 1
                if n_err >= 5 and n_err == n_new:
                    raise EvalError(f"every question failed so far; last error: {row['error']}")
            if bar:
                bar.update(1)
            if on_question:
                on_question(rc, qid, row)


def run_eval(
    evalset: str | Path | EvalSet,
    cfg: Config,
    *,
    llm: str | None = None,
    mode: str | None = None,
    k: int | None = None,
    limit: int | None = None,
    sample: int | None = None,
    compare: Sequence[str] | None = None,
    retrieval_only: bool = False,
    configs: Sequence[RunConfig] | None = None,
    out_dir: str | Path | None = None,
    resume: bool = True,
    progress: bool = True,
    encoder: Any = None,
    chat_model: Any = None,
    judge_model: Any = None,
    sweep_modes: Sequence[str] = MODES,
    command: str | None = None,
    on_question: Callable[[RunConfig, str, dict[str, Any]], None] | None = None,
    split: str = "all",
) -> EvalRun:
    """Run the evaluation and write the report folder. `on_question(config, qid, row)` is called
    after each question is written (progress hooks; tests interrupt a run from it). Interrupted
    (Ctrl-C), it writes a partial report of the questions done and re-raises. `split`: "all", or
    only the "dev" or "heldout" half (rag.evaluate.splits)."""

    es = evalset if isinstance(evalset, EvalSet) else load_evalset(evalset, cfg)
    if configs is None:
        configs = make_configs(cfg, llm=llm, mode=mode, k=k, retrieval_only=retrieval_only, compare=compare)
    configs = list(configs)
    if split not in S.CHOICES:
        raise EvalError(f"unknown split {split!r}; choose from {', '.join(S.CHOICES)}")
    smap = S.split_map(es)
    qids = question_order(es, limit, sample, keep=S.keep_ids(smap, split))
    if not qids:
        raise EvalError(f"{es.name}: the set has no questions" + (f" in the {split} half" if split != "all" else ""))
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    out = Path(out_dir) if out_dir else runs_dir() / f"{es.name}-{stamp}"
    out.mkdir(parents=True, exist_ok=True)
    results, run_json = out / "results.jsonl", out / "run.json"
    settings = _settings(es, configs, qids, smap, limit=limit, sample=sample, judge=bool(judge_model),
                         sweep_modes=sweep_modes, split=split)
    _check_resumable(out, settings, resume)
    done = _load_rows(results) if resume else {}
    if not resume and results.exists():
        results.unlink()

    corpus, texts, chunk_rel, doc_rel, info = _index(es, cfg, settings, command, encoder, progress)
    _write_info(run_json, info)
    plan = _plan(es, cfg, configs, corpus, texts, chunk_rel, sweep_modes, chat_model, info, run_json)
    bar = None
    if progress:
        from tqdm import tqdm

        total = len(configs) * len(qids)
        todo = sum(1 for c in configs for q in qids if not _is_done(done.get((c.name, q))))
        bar = tqdm(total=total, initial=total - todo, desc=f"eval {es.name}", unit="q", file=sys.stderr, dynamic_ncols=True)
    try:
        with open(results, "a", encoding="utf-8") as fh:
            _ask_all(fh, es, cfg, configs, qids, done, plan, doc_rel, smap, judge_model, on_question, bar)
    except KeyboardInterrupt:
        if bar:
            bar.close()
            bar = None
        if done:
            try:
                finalize(out, es, configs, qids, done, info, sweep_modes, partial=True)
                print(f"interrupted: partial report in {out}; continue with `rag eval --resume {out}`", file=sys.stderr)
            except Exception as e:  # never hide the interruption behind a reporting error
                log.warning("partial report failed: %s", e)
        raise
    finally:
        if bar:
            bar.close()

    return finalize(out, es, configs, qids, done, info, sweep_modes)



def finalize(out: Path, es: EvalSet, configs: Sequence[RunConfig], qids: Sequence[str], done: Mapping[tuple[str, str], dict],
             info: dict[str, Any], sweep_modes: Sequence[str] = MODES, partial: bool = False) -> EvalRun:
    """Aggregate the rows, write metrics.json, run.json and the report. A partial run (interrupted,
    or --report-only before the end) is scored on the questions finished in every configuration,
    so the columns of a comparison stay comparable, and says so."""
    from rag.evaluate import report as R

    finished = [q for q in qids if all((c.name, q) in done for c in configs)]
    if partial or len(finished) < len(qids):
        partial = True
        info["partial"] = {"questions_scored": len(finished), "questions_planned": len(qids)}
        qids = finished
    else:
        info.pop("partial", None)
    rows = [done[(c.name, q)] for c in configs for q in qids]
    metrics = aggregate(rows, configs, es, sweep_modes)
    idx = info.get("index") or {}
    metrics["index"] = {"n_documents": len(es.corpus), "n_chunks": idx.get("n_chunks"), "build_seconds": idx.get("seconds"),
                        "unlocated_evidence": len(info.get("evidence_problems") or [])}
    if partial:
        metrics["partial"] = info["partial"]
    info["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    _write_info(out / "run.json", info)
    (out / "metrics.json").write_text(json.dumps(metrics, ensure_ascii=False, indent=2), encoding="utf-8")
    R.write_report(out, info, metrics, rows, configs)
    return EvalRun(out, list(configs), rows, metrics, info)


def report_only(out_dir: str | Path, evalset: str | Path | EvalSet | None = None, cfg: Config | None = None,
                rescore: bool = False) -> EvalRun:
    """Score and report what an (unfinished) run folder holds, without asking anything.

    `rescore`: recompute every row's answer and citation scores from the answer, citations and
    passages the row holds (after a change to a metric), rewriting results.jsonl atomically;
    retrieval is always scored afresh."""
    out = Path(out_dir)
    rj, res = out / "run.json", out / "results.jsonl"
    if not rj.exists() or not res.exists():
        raise EvalError(f"{out} holds no run (run.json and results.jsonl are needed)")
    info = json.loads(rj.read_text(encoding="utf-8"))
    st = info["settings"]
    if isinstance(evalset, EvalSet):
        es = evalset
    else:
        es = load_evalset(evalset or st["evalset"], cfg)
    configs = [RunConfig(**c) for c in st["configs"]]
    rows = _load_rows(res)
    if rescore:
        from rag.evaluate.question import score_row

        for r in rows.values():
            if r.get("answer") is not None:
                r["scores"] = score_row(r)
        tmp = res.with_suffix(".jsonl.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            for r in rows.values():
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        os.replace(tmp, res)
        info["rescored"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        _write_info(rj, info)  # a later report of this folder still says its scores were recomputed
    done = {k: r for k, r in rows.items() if _is_done(r) or r.get("answer") is not None or r.get("retrieved")}
    qids = question_order(es, st.get("limit"), st.get("sample"), keep=S.keep_ids(S.split_map(es), st.get("split") or "all"))
    sweep = tuple(st.get("sweep_modes") or MODES)
    return finalize(out, es, configs, qids, done, info, sweep)
