"""Retrieval benchmark: BM25 vs dense vs hybrid on pooled DRCD / CMRC 2018 dev, plus speed at scale.

    nice python3 benchmarks/retrieval.py            # writes benchmarks/results/retrieval.{md,json}
    nice python3 benchmarks/retrieval.py --quick    # small subsets, no 100k scale-up (smoke run)

Quality. Every paragraph of a split is one chunk of one pooled corpus (title as heading, as the
chunker does); each question must find its own paragraph. Sets: DRCD dev (traditional), CMRC
2018 dev (simplified), both pooled as one mixed-script corpus, and DRCD questions converted to
simplified (OpenCC t2s) against the traditional DRCD corpus. Metrics through ranx: Recall@1/5/20
and MRR@10. Everything runs through the real index code (rag.index.build.build_version → IndexVersion →
rag.retrieve.searcher.HybridSearcher), with the real encoder (multilingual-e5-small unless --model).

No tuning on reported questions: questions are split in two by a hash of their id. The BM25
analyzer and the fusion method/parameters are chosen on the TUNE half (mean MRR@10 over DRCD and
CMRC); every number in the results table is on the other, REPORT half. (Full-set numbers for the
chosen configuration are given too, marked as such.)

Speed. Synthetic scale-up to 10k and 100k chunks: new chunks are made of sentences sampled from
the real paragraphs (realistic vocabulary and posting lengths), their vectors are mixtures of the
real paragraph vectors plus noise (no encoding needed). Measured: index build (write) time, load
time (open a version: manifest, FAISS, BM25, chunk offsets), hybrid query latency p50/p95
*including the query embedding* (each timed query is a real question), peak RSS.

Vectors are cached in benchmarks/.cache (git-ignored), keyed by model and text hash, so reruns
skip encoding; the first run's encoding throughput is recorded.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from _common import (  # noqa: E402 - benchmarks/ is on sys.path (the script's folder)
    CAND, RESULTS, CachingEncoder, build_paragraph_index, doc_of, evaluate, load_sets, passage_texts, pct_ms, rss_mb,
    synth_chunks, time_opens, time_queries, to_run, write_synthetic_version)
from rag.config import load_config  # noqa: E402
from retrieval_report import label, write_markdown  # noqa: E402 - the results file of this benchmark
from rag.index.bm25 import ANALYZERS  # noqa: E402
from rag.retrieve.fusion import Candidates, fuse as fusion_fuse  # noqa: E402
from rag.retrieve.searcher import HybridSearcher  # noqa: E402

# ------------------------------------------------------------------ data


def half(qid: str) -> str:
    return "tune" if int(hashlib.md5(qid.encode()).hexdigest(), 16) % 2 == 0 else "report"


# ------------------------------------------------------------------ the fusion grid


def candidates(searcher: HybridSearcher, qs: dict[str, str]) -> dict[str, Candidates]:
    """Per query: the production candidates (HybridSearcher.candidates: each retriever's top CAND
    and both exact scores on their union), the questions embedded in one batch."""
    qids = list(qs)
    qvecs = searcher.encoder.encode_queries([qs[q] for q in qids])
    return {q: searcher.candidates(qs[q], CAND, qv=qv) for q, qv in zip(qids, qvecs)}


def fuse(c: Candidates, method: dict) -> list[tuple[str, float]]:
    """One grid point's ranking: a single retriever's own list, or the production fusion."""
    kind = method["fusion"]
    if kind in ("dense", "bm25"):
        return getattr(c, kind)
    return fusion_fuse(c, kind, {"dense": method["w_dense"], "bm25": method["w_bm25"]},
                       rrf_k=method.get("rrf_k", 60), norm=method.get("norm", "minmax"))


def run_method(cands: dict, method: dict) -> dict[str, dict[str, float]]:
    return {q: to_run([(doc_of(i), s) for i, s in fuse(c, method)]) for q, c in cands.items()}


def grid():
    out = []
    for k in (2, 5, 10, 20, 60, 100):
        for wd in (0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0):
            out.append({"fusion": "rrf", "rrf_k": k, "w_dense": wd, "w_bm25": 1.0, "norm": "minmax"})
    for norm in ("minmax", "zscore", "max"):
        for a in (0.1, 0.2, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.8):
            out.append({"fusion": "convex", "rrf_k": 60, "w_dense": a, "w_bm25": round(1 - a, 2), "norm": norm})
    return out


# ------------------------------------------------------------------ scale


def scale_test(n: int, corpus: dict, pvecs: dict, queries: list[str], encoder, cfg, workdir: Path, analyzer: str,
               n_queries: int = 200) -> dict:
    """Write a synthetic version of n chunks (_common.synth_chunks), then time it in a fresh
    process (serve_test): honest load time and peak RSS (index + encoder only)."""
    import subprocess

    pids = list(corpus)
    chunks, vecs = synth_chunks(n, [corpus[p] for p in pids], np.stack([pvecs[p] for p in pids]), seed=n)
    kb_dir = Path(tempfile.mkdtemp(dir=workdir))
    path, t_bm, t_write = write_synthetic_version(kb_dir, chunks, vecs, cfg, analyzer, encoder.name)
    (Path(path) / "results_cfg.json").write_text(json.dumps(
        {f: getattr(cfg.retrieve, f) for f in ("fusion", "rrf_k", "w_dense", "w_bm25", "norm")}), encoding="utf-8")
    del chunks
    qfile = kb_dir / "queries.json"
    qfile.write_text(json.dumps(queries[:n_queries], ensure_ascii=False), encoding="utf-8")
    cmd = [sys.executable, __file__, "--serve-test", str(path), "--queries", str(qfile)]
    if cfg.embed.model:
        cmd += ["--model", cfg.embed.model]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    served = json.loads(out.strip().splitlines()[-1])
    size = sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())
    return {"chunks": n, "bm25_build_s": round(t_bm, 1), "write_s": round(t_write, 1),
            "index_mb": round(size / 2**20, 1), **served}


def serve_test(path: str, qfile: str, model: str | None) -> dict:
    """Run in a fresh process: open the index version, load the encoder, time queries."""
    from embeddings import load_encoder

    cfg = load_config(overrides={"embed": {"model": model} if model else {}})
    res = json.load(open(Path(path) / "results_cfg.json")) if (Path(path) / "results_cfg.json").exists() else {}
    for f, val in res.items():
        setattr(cfg.retrieve, f, val)
    queries = json.loads(Path(qfile).read_text(encoding="utf-8"))
    v, loads = time_opens(Path(path))
    rss_index = rss_mb()
    enc = load_encoder(cfg.embed, models_dir=cfg.paths.models_dir)
    t = time_queries(HybridSearcher(v, enc, cfg.retrieve), queries, k=5, version=v)
    return {
        "load_s": round(min(loads), 3), "load_s_first": round(loads[0], 3),
        "hybrid_p50_ms": pct_ms(t["hybrid"], 0.5), "hybrid_p95_ms": pct_ms(t["hybrid"], 0.95),
        "query_embed_p50_ms": pct_ms(t["embed"], 0.5), "query_embed_p95_ms": pct_ms(t["embed"], 0.95),
        "faiss_top50_p50_ms": pct_ms(t["dense"], 0.5),
        "bm25_p50_ms": pct_ms(t["bm25"], 0.5), "bm25_p95_ms": pct_ms(t["bm25"], 0.95),
        "rss_after_load_mb": round(rss_index, 0), "peak_rss_mb": round(rss_mb(), 0),
        "queries_timed": len(queries), "fusion": {f: getattr(cfg.retrieve, f) for f in ("fusion", "rrf_k", "w_dense", "w_bm25", "norm")},
    }


# ------------------------------------------------------------------ the steps of a run

TUNE_SETS = ("DRCD dev (traditional)", "CMRC 2018 dev (simplified)")


def choose_analyzer(corpora: dict, sets: dict, enc, cfg, work: Path, versions: dict) -> tuple[dict, str]:
    """BM25 alone on the TUNE half of DRCD and CMRC per analyzer: (scores, the best by mean
    MRR@10). `versions` caches the built versions by (corpus, analyzer)."""
    analyzer_scores = {}
    for an in ANALYZERS:
        row = {}
        for sname in TUNE_SETS:
            cname, qs, qrels = sets[sname]
            key = (cname, an)
            if key not in versions:
                versions[key] = build_paragraph_index(corpora[cname], enc, cfg, work, an)
            v = versions[key]
            tune = {q: t for q, t in qs.items() if half(q) == "tune"}
            run = {q: to_run([(doc_of(v.ids_by_row[r]), s) for r, s in v.bm25.search(t, 20)]) for q, t in tune.items()}
            row[sname] = evaluate({q: qrels[q] for q in tune}, run)
        analyzer_scores[an] = row
        print("analyzer", an, row, flush=True)
    best_an = max(ANALYZERS, key=lambda a: statistics.mean(r["mrr@10"] for r in analyzer_scores[a].values()))
    return analyzer_scores, best_an


def fusion_grid(cands: dict, sets: dict) -> list[dict]:
    """Every grid() method on the TUNE half of DRCD + CMRC, best first (mean MRR@10; R@1 breaks ties)."""
    grid_rows = []
    for m in grid():
        row = {}
        for sname in TUNE_SETS:
            _, qs, qrels = sets[sname]
            c = {q: v for q, v in cands[sname].items() if half(q) == "tune"}
            row[sname] = evaluate({q: qrels[q] for q in c}, run_method(c, m))
        score = statistics.mean(r["mrr@10"] for r in row.values())
        r1 = statistics.mean(r["recall@1"] for r in row.values())
        grid_rows.append({"method": m, "label": label(m), "mean_mrr@10": round(score, 4), "mean_r@1": round(r1, 4), "sets": row})
    grid_rows.sort(key=lambda r: (-r["mean_mrr@10"], -r["mean_r@1"], r["label"]))
    return grid_rows


def report_tables(cands: dict, sets: dict, best: dict, best_rrf: dict) -> tuple[dict, dict]:
    """(every retriever side by side on the REPORT half, the full sets for reference)."""
    methods = {
        "bm25": {"fusion": "bm25"},
        "dense": {"fusion": "dense"},
        "hybrid: RRF k=60 equal weights (baseline)": {"fusion": "rrf", "rrf_k": 60, "w_dense": 1.0, "w_bm25": 1.0, "norm": "minmax"},
        f"hybrid: best RRF ({label(best_rrf)})": best_rrf,
        f"hybrid: chosen ({label(best)})": best,
    }
    table = {}
    for sname, (_, qs, qrels) in sets.items():
        c = {q: v for q, v in cands[sname].items() if half(q) == "report"}
        table[sname] = {"n_questions": len(c)}
        for mname, m in methods.items():
            table[sname][mname] = evaluate({q: qrels[q] for q in c}, run_method(c, m))
    full = {}
    for sname, (_, qs, qrels) in sets.items():
        full[sname] = {mname: evaluate(qrels, run_method(cands[sname], m)) for mname, m in methods.items()
                       if mname in ("bm25", "dense") or m is best}
    return table, full


def searcher_agreement(version, enc, cfg, sets: dict, cands: dict, best: dict) -> str:
    """The chosen configuration through HybridSearcher.search itself must give the offline
    fusion's ranking: "agreeing/sampled" over 200 REPORT questions of DRCD. Sets cfg.retrieve."""
    rc = cfg.retrieve
    for f in ("fusion", "rrf_k", "w_dense", "w_bm25", "norm"):
        setattr(rc, f, best[f])
    sname = "DRCD dev (traditional)"
    _, qs, _ = sets[sname]
    s = HybridSearcher(version, enc, rc)
    sample = [q for q in qs if half(q) == "report"][:200]
    agree = sum([h.chunk.chunk_id for h in s.search(qs[q], k=10)] == [i for i, _ in fuse(cands[sname][q], best)[:10]]
                for q in sample)
    print("searcher agreement", agree, len(sample), flush=True)
    return f"{agree}/{len(sample)}"


def encode_all(enc, corpora: dict, sets: dict) -> tuple[dict, list[str], dict]:
    """Every paragraph and question once, through the cache: (paragraphs, their texts, encodings/s)."""
    all_paras = {**corpora["drcd"], **corpora["cmrc"]}
    texts = passage_texts(all_paras)
    enc.encode_passages(texts, show_progress=True)
    enc.encode_queries([t for _, qs, _ in sets.values() for t in qs.values()])
    throughput = {
        k: (round(enc.encoded[k] / enc.seconds[k], 1) if enc.seconds[k] else None) for k in ("passage", "query")
    }
    print("encoding throughput (this run, 0 = all cached):", enc.encoded, throughput, flush=True)
    return all_paras, texts, throughput


# ------------------------------------------------------------------ main


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None, help="embedding model (default: config embed.model)")
    ap.add_argument("--quick", action="store_true", help="300 questions per set, 2k-chunk scale test only")
    ap.add_argument("--scale", default="10000,100000", help="chunk counts for the speed test")
    ap.add_argument("--out", default=str(RESULTS / "retrieval"), help="results path without suffix")
    ap.add_argument("--serve-test", metavar="VERSION_DIR", help=argparse.SUPPRESS)
    ap.add_argument("--queries", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve_test:
        print(json.dumps(serve_test(args.serve_test, args.queries, args.model)))
        return 0

    from embeddings import load_encoder

    cfg = load_config(overrides={"embed": {"model": args.model} if args.model else {}})
    t0 = time.perf_counter()
    raw_enc = load_encoder(cfg.embed, models_dir=cfg.paths.models_dir)
    t_model = time.perf_counter() - t0
    enc = CachingEncoder(raw_enc)
    corpora, sets = load_sets(args.quick)
    work = Path(tempfile.mkdtemp(prefix="rag-bench-"))
    print(f"model {enc.name} ({getattr(raw_enc, 'backend_name', '?')}), loaded in {t_model:.1f}s; work dir {work}", flush=True)

    all_paras, texts, throughput = encode_all(enc, corpora, sets)  # 1. every corpus once
    results: dict = {"model": enc.name, "backend": getattr(raw_enc, "backend_name", None), "quick": args.quick,
                     "command": "nice python3 benchmarks/retrieval.py" + (" --quick" if args.quick else ""),
                     "encoding": {"encoded_this_run": enc.encoded, "seconds": {k: round(v, 1) for k, v in enc.seconds.items()},
                                  "per_second": throughput},
                     "split": "questions split by md5(question id) parity: TUNE half chooses, REPORT half is reported"}
    versions: dict = {}
    results["bm25_analyzers_tune_half"], best_an = choose_analyzer(corpora, sets, enc, cfg, work, versions)  # 2.
    results["bm25_analyzer"] = best_an
    cands = {}  # 3. candidates for every set with the chosen analyzer
    for sname, (cname, qs, qrels) in sets.items():
        key = (cname, best_an)
        if key not in versions:
            versions[key] = build_paragraph_index(corpora[cname], enc, cfg, work, best_an)
        cands[sname] = candidates(HybridSearcher(versions[key], enc, cfg.retrieve), qs)
        print("candidates", sname, len(cands[sname]), flush=True)
    grid_rows = fusion_grid(cands, sets)  # 4.
    best = grid_rows[0]["method"]
    best_rrf = next(r["method"] for r in grid_rows if r["method"]["fusion"] == "rrf")
    print("best fusion (tune half):", label(best), grid_rows[0]["mean_mrr@10"], flush=True)
    results["fusion_grid_tune_half"] = [{k: r[k] for k in ("label", "mean_mrr@10", "mean_r@1")} for r in grid_rows]
    results["chosen"] = {"fusion": best, "best_rrf": best_rrf}
    results["report_half"], results["full_sets_for_reference"] = report_tables(cands, sets, best, best_rrf)  # 5.
    results["searcher_agrees_with_offline_fusion"] = searcher_agreement(  # 6. (cfg.retrieve = chosen from here)
        versions[(sets["DRCD dev (traditional)"][0], best_an)], enc, cfg, sets, cands, best)

    # 7. speed at scale (hybrid with the chosen fusion)
    pvecs = {pid: vec for pid, vec in zip(all_paras, enc.encode_passages(texts))}
    timed_q = [t for _, qs, _ in list(sets.values())[:2] for t in qs.values()]
    random.Random(0).shuffle(timed_q)
    results["scale"] = []
    for n in [int(x) for x in args.scale.split(",") if x] if not args.quick else [2000]:
        print("scale", n, flush=True)
        results["scale"].append(scale_test(n, all_paras, pvecs, timed_q, raw_enc, cfg, work, best_an))
        print(results["scale"][-1], flush=True)
    results["peak_rss_mb"] = round(rss_mb(), 0)
    results["machine"] = {"cpus": os.cpu_count(), "note": "2 shared cores, run under nice"}

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(results, ensure_ascii=False, indent=1), encoding="utf-8")
    write_markdown(results, out.with_suffix(".md"))
    print("wrote", out.with_suffix(".json"), out.with_suffix(".md"))
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
