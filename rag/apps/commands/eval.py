"""`rag eval EVALSET …` (score retrieval, answers, citations and refusals) and
`rag eval-import squad FILE --out DIR` (turn SQuAD-format data into an evaluation set)."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from types import SimpleNamespace

from rag.apps.commands import add_common, resolve_config
from rag.config import RETRIEVE_MODES

EPILOG = """\
examples:
  rag eval evalsets/seeds --llm extractive                 fast, deterministic answers
  rag eval evalsets/seeds --llm local --limit 20           the real LLM on 20 questions
  rag eval evalsets/seeds --llm extractive --compare mode=bm25,dense,hybrid
  rag eval evalsets/seeds --compare llm=extractive,local   answers side by side
  rag eval evalsets/seeds --compare llm=local:qwen2.5-1.5b,naive:local:qwen2.5-1.5b --sample 40
                                                           the assistant beside a plain LangChain RAG on the same model
  rag eval evalsets/seeds --llm extractive --split heldout only the held-out half (the summary shows all / dev / held-out)
  rag eval evalsets/drcd                                   retrieval-only (the set's default); imports DRCD on the fly
  rag eval evalsets/seeds --llm extractive --check         exit 1 if a score fell below evalsets/seeds/baseline.json
  rag eval --resume runs/seeds-20250101-120000             continue an interrupted run

evaluation sets: a BEIR-style folder (corpus.jsonl, queries.jsonl, qrels/test.tsv, optional
answers.jsonl with references and evidence quotes), or a folder whose evalset.json names SQuAD
data to import. Import your own SQuAD-format data with `rag eval-import squad FILE --out DIR`;
a BEIR folder is used as it is.
"""


def _llm_spec(value: str) -> str:
    """`BACKEND[:MODEL]`, or `naive:BACKEND[:MODEL]` for the plain LangChain baseline
    (rag.evaluate.naive; the prefix is handled here, before rag.answer.assistant.parse_backend)."""
    from rag.answer.assistant import parse_backend
    from rag.errors import ConfigError
    from rag.evaluate.naive import is_naive, normalise_spec

    try:
        if is_naive(value):
            return normalise_spec(value)
        kind, model = parse_backend(value)
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return f"{kind}:{model}" if model else kind


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="evaluate retrieval, answers, citations and refusals on an evaluation set",
        description="Evaluate the assistant on an evaluation set and write a report folder "
        "(metrics.json, results.jsonl, report.md with plots).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_common(p)
    p.add_argument("evalset", nargs="?", metavar="EVALSET", help="evaluation set folder, e.g. evalsets/seeds")
    p.add_argument("--llm", type=_llm_spec, metavar="BACKEND[:MODEL]",
                   help="answer backend: extractive | local | openai | fake, optionally with a model, e.g. local:qwen2.5-0.5b "
                   "(default: the configured one)")
    p.add_argument("--mode", choices=RETRIEVE_MODES, help="retrieval mode (default: the configured one)")
    p.add_argument("--k", type=int, metavar="N", help="passages retrieved per question")
    p.add_argument("--limit", type=int, metavar="N", help="only the first N questions (plus the questions they follow up)")
    p.add_argument("--sample", type=int, metavar="N", help="N questions spread evenly over the set (deterministic), plus the questions they follow up")
    p.add_argument("--split", choices=["all", "dev", "heldout"], default=None,
                   help="only the dev or the held-out half of the set (rag.evaluate.evalsets.dev_split; default all — the report shows "
                   "every configuration on all / dev / held-out either way); --limit/--sample then select within the half")
    p.add_argument("--out", metavar="DIR", help="report folder (default runs/<set>-<timestamp>/); rerunning into it resumes")
    p.add_argument("--compare", action="append", metavar="AXIS=V1,V2",
                   help="compare configurations side by side: mode=bm25,dense,hybrid | llm=extractive,local:qwen2.5-0.5b,local:qwen2.5-1.5b | k=3,5,8 "
                   "(repeatable: cartesian product); llm=naive:local:qwen2.5-1.5b adds the plain LangChain RAG baseline (fixed FAISS top 4)")
    p.add_argument("--retrieval-only", action=argparse.BooleanOptionalAction, default=None,
                   help="score retrieval without answering (fast; the default for DRCD/CMRC)")
    p.add_argument("--check", action="store_true", help="exit 1 when a score falls below the baseline by more than its tolerance")
    p.add_argument("--update-baseline", action="store_true", help="write this run's scores as the set's baseline")
    p.add_argument("--baseline", metavar="FILE", help="baseline file (default EVALSET/baseline.json)")
    p.add_argument("--resume", metavar="DIR", help="continue the interrupted run in DIR (its settings are reused)")
    p.add_argument("--judge", action="store_true",
                   help="also ask the configured chat LLM (llm.backend: local/openai) whether each answer agrees with the reference; "
                   "reported separately as LLM-as-judge, never part of a baseline")
    p.add_argument("--export", metavar="FILE.md", help="also copy the report (and its plots) to FILE.md, e.g. benchmarks/results/eval_seeds.md")
    p.add_argument("--report-only", action="store_true",
                   help="with --resume DIR (or --out DIR): score and report what the run folder holds, asking nothing")
    p.add_argument("--rescore", action="store_true",
                   help="with --report-only: recompute each row's answer and citation scores from what it holds (after a metric change)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)

    q = sub.add_parser(
        "eval-import",
        help="import SQuAD-format data (DRCD, CMRC 2018, your own) as an evaluation set",
        description="Convert SQuAD-format JSON into a BEIR-style evaluation set for `rag eval`: every paragraph joins "
        "one pooled corpus and each question must retrieve its own paragraph (open-domain retrieval QA).",
        epilog="example: rag eval-import squad ../shared/datasets/drcd/DRCD_dev.json --out evalsets/drcd-full",
    )
    q.add_argument("format", choices=["squad"], help="input format (a BEIR folder needs no import)")
    q.add_argument("file", metavar="FILE", help="SQuAD-format JSON file")
    q.add_argument("--out", required=True, metavar="DIR", help="folder to write the set into")
    q.add_argument("--name", help="set name (default: the folder name)")
    q.add_argument("--retrieval-only", action="store_true", help="make retrieval-only the set's default in evalset.json")
    q.set_defaults(func=run_import)


def run_import(args: argparse.Namespace) -> int:
    from rag.evaluate.harness import import_set

    defaults = {"retrieval_only": True} if args.retrieval_only else {}
    es = import_set(args.format, args.file, args.out, name=args.name, defaults=defaults)
    n_ans = sum(1 for a in es.answers.values() if a.get("answerable"))
    print(f"imported {len(es.queries)} questions ({n_ans} answerable) over {len(es.corpus)} paragraphs into {args.out}")
    print(f"evaluate with: rag eval {args.out}" + ("" if args.retrieval_only else " --retrieval-only"))
    return 0


def _canonical_command(evalset: str, rc, limit: int | None, sample: int | None = None, split: str = "all") -> str:
    parts = ["rag", "eval", evalset]
    if rc.retrieval_only:
        parts += ["--retrieval-only", "--mode", rc.mode, "--k", str(rc.k)]
    else:
        parts += ["--llm", rc.llm, "--mode", rc.mode, "--k", str(rc.k)]
    if limit:
        parts += ["--limit", str(limit)]
    if sample:
        parts += ["--sample", str(sample)]
    if split != "all":
        parts += ["--split", split]
    return " ".join(shlex.quote(p) for p in parts)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from rag.evaluate import harness as H
    from rag.evaluate import report as R

    # wide enough for metric names when output goes to a file or CI log (rich assumes 80 columns)
    console = Console(width=None if sys.stdout.isatty() else 160)
    err = Console(stderr=True, width=None if sys.stderr.isatty() else 160)
    evalset, out, configs, limit, sample, split = _resumed(args, H)
    if args.report_only:
        return _report_only(args, evalset, console, err, H, R)
    if not evalset:
        raise H.EvalError("give an evaluation set folder (e.g. evalsets/seeds) or --resume DIR")
    es_path = Path(evalset)
    bpath = Path(args.baseline) if args.baseline else H.baseline_path(es_path)
    s = _settings(args, H, es_path, bpath, limit, sample, split)
    limit, sample, split = s.limit, s.sample, s.split

    cfg = resolve_config(args, retrieve={"k": s.k, "mode": s.mode})
    if s.llm:  # from --llm or the baseline
        from rag.answer.assistant import parse_backend
        from rag.evaluate.naive import inner_backend

        kind, model = parse_backend(inner_backend(s.llm) or s.llm)
        cfg = cfg.replace(llm={"backend": kind, **({"model": model} if model else {})})
    if configs is None:
        configs = H.make_configs(cfg, llm=s.llm, mode=s.mode, k=s.k, retrieval_only=bool(s.retrieval_only), compare=args.compare)
    if args.check:
        H.check_config_matches(s.baseline, configs[0], limit, sample, split)
    judge_model = _judge_model(args, cfg, H) if args.judge else None
    command = " ".join(shlex.quote(a) for a in ["rag", *sys.argv[1:]]) if sys.argv and sys.argv[0] else None
    run_ = H.run_eval(
        es_path, cfg, configs=configs, limit=limit, sample=sample, out_dir=out, resume=True,
        progress=not args.no_progress and sys.stderr.isatty(), command=command, judge_model=judge_model, split=split,
    )
    _print_summary(console, R, run_.metrics)
    console.print(f"report: {run_.out_dir / 'report.md'}")
    if args.export:
        console.print(f"exported: {R.export_report(run_.out_dir, Path(args.export))}")
    n_err = sum(m.get("n_errors", 0) for m in run_.metrics["configs"].values())
    if n_err:
        err.print(f"[yellow]{n_err} question(s) failed; see 'error' in {run_.out_dir / 'results.jsonl'}[/]")
    status = _check_baseline(run_, s.baseline, bpath, console, err, H, R) if args.check else 0
    if args.update_baseline:
        b = H.write_baseline(bpath, run_, _canonical_command(str(evalset), run_.configs[0], limit, sample, split))
        console.print(f"baseline written: {bpath} ({len(b['metrics'])} metrics)")
    return status


def _resumed(args: argparse.Namespace, H) -> tuple:
    """(evalset, out, configs, limit, sample, split) as given, or as the run being resumed
    recorded them (`--resume DIR`: its settings are reused; configs None = not decided yet)."""
    if not args.resume:
        return args.evalset, args.out, None, args.limit, args.sample, args.split
    rj = Path(args.resume) / "run.json"
    if not rj.exists():
        raise H.EvalError(f"{args.resume} holds no run to resume (run.json missing)")
    prev = json.loads(rj.read_text(encoding="utf-8"))["settings"]
    configs = [H.RunConfig(**c) for c in prev["configs"]]
    return (args.evalset or prev["evalset"], args.resume, configs, prev.get("limit"), prev.get("sample"),
            prev.get("split") or "all")


def _report_only(args: argparse.Namespace, evalset, console, err, H, R) -> int:
    """`--report-only`: score and report what the run folder holds, asking nothing."""
    folder = args.resume or args.out
    if not folder:
        raise H.EvalError("--report-only needs the run folder: --resume DIR or --out DIR")
    run_ = H.report_only(folder, evalset, rescore=args.rescore)
    _print_summary(console, R, run_.metrics)
    if run_.info.get("partial"):
        p_ = run_.info["partial"]
        err.print(f"[yellow]partial run: {p_['questions_scored']} of {p_['questions_planned']} questions scored[/]")
    console.print(f"report: {run_.out_dir / 'report.md'}")
    if args.export:
        console.print(f"exported: {R.export_report(run_.out_dir, Path(args.export))}")
    return 0


def _settings(args: argparse.Namespace, H, es_path: Path, bpath: Path, limit, sample, split) -> SimpleNamespace:
    """The run's settings: the command line's, else (under --check) the baseline's, else the
    set's defaults (evalset.json); with the baseline itself (None without --check). Checks the
    option combinations."""
    manifest = H.read_manifest(es_path) if es_path.is_dir() else {}
    defaults = manifest.get("defaults") or {}
    baseline = H.read_baseline(bpath) if args.check else None
    bc = (baseline or {}).get("config") or {}
    # under --check, settings not given on the command line come from the baseline
    if limit is None and "limit" in bc and not args.resume:
        limit = bc.get("limit")
    if sample is None and "sample" in bc and not args.resume:
        sample = bc.get("sample")
    if split is None:
        split = bc.get("split") or "all"
    retrieval_only = args.retrieval_only
    if retrieval_only is None:
        retrieval_only = bc.get("retrieval_only", defaults.get("retrieval_only", False))
    if args.compare and (args.check or args.update_baseline):
        raise H.EvalError("--check/--update-baseline compare one configuration; drop --compare")
    for opt in ("limit", "sample"):
        if getattr(args, opt) is not None and getattr(args, opt) < 1:
            raise H.EvalError(f"--{opt} must be at least 1")
    return SimpleNamespace(baseline=baseline, llm=args.llm or bc.get("llm"), mode=args.mode or bc.get("mode"),
                           k=args.k or bc.get("k"), limit=limit, sample=sample, split=split,
                           retrieval_only=retrieval_only)


def _judge_model(args: argparse.Namespace, cfg, H):
    """`--judge`: the configured chat LLM (local or openai), asked whether answers agree."""
    from rag.llm.backends import get_chat_model

    jb = resolve_config(args).llm
    if jb.backend not in ("local", "openai"):
        raise H.EvalError(f"--judge needs a chat LLM; the configured llm.backend is {jb.backend!r} (set RAG_LLM_BACKEND=local)")
    return get_chat_model(jb, cfg.paths.models_dir)


def _check_baseline(run_, baseline, bpath: Path, console, err, H, R) -> int:
    """`--check`: 0 when every metric is within its tolerance of the baseline, else 1."""
    ok, rows = H.check_baseline(H.flat_metrics(run_.metrics["configs"][run_.configs[0].name]), baseline)
    if ok:
        console.print(f"baseline check passed: {len(rows)} metrics within tolerance of {bpath}")
        return 0
    bad = [r for r in rows if not r.ok]
    err.print(R.check_table(bad))
    err.print(f"[bold red]baseline check failed[/]: {len(bad)} of {len(rows)} metrics fell below {bpath} "
              f"by more than their tolerance")
    return 1


def _print_summary(console, R, metrics) -> None:
    console.print(R.summary_table(metrics))
    st = R.split_table(metrics)
    if st is not None:
        console.print(st)
