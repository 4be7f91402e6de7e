"""Ranking parity: the Milvus backend against the local one, hybrid R@1/R@5/MRR@10 on DRCD dev +
CMRC 2018 dev pooled (mixed script), one run, the same vectors in both.

The local index is built by benchmarks/_common.py's `build_paragraph_index` (one chunk per
paragraph, vectors through its cached encoder); the Milvus index is made from it the way `rag index --backend milvus`
migrates a KB (MilvusKnowledgeBase copies chunks, vectors and BM25 tokens into Milvus Lite); then
every question is searched through both production searchers (`HybridSearcher`,
`MilvusSearcher`) with the production retrieval config. Also reported: dense-only and BM25-only
metrics, the share of questions whose top-10 ids are identical, and query latency of each.

    nice python3 benchmarks/milvus_parity.py [--limit N]   # N questions (a stated subset) or all

Writes benchmarks/results/milvus_parity.{md,json} with the command and the load average.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _common import (  # noqa: E402 - benchmarks/ is on sys.path (the script's folder)
    METRICS, RESULTS, CachingEncoder, build_paragraph_index, doc_of, evaluate, load_sets, passage_texts, pct_ms,
    to_run)
from rag.config import RETRIEVE_MODES  # noqa: E402
from rag.config import load_config  # noqa: E402
from rag.retrieve.searcher import HybridSearcher  # noqa: E402

POOLED = "DRCD + CMRC pooled (mixed script)"
MODES = RETRIEVE_MODES


def run_searcher(searcher, qs: dict[str, str], mode: str) -> tuple[dict, dict, list[float]]:
    run, tops, lat = {}, {}, []
    for q, text in qs.items():
        t0 = time.perf_counter()
        hits = searcher.search(text, k=10, mode=mode)
        lat.append(time.perf_counter() - t0)
        ranked = [(doc_of(h.chunk.chunk_id), h.score) for h in hits]
        run[q] = to_run(ranked, 10)
        tops[q] = [d for d, _ in ranked]
    return run, tops, lat


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--limit", type=int, default=0, help="questions (a subset, chosen by md5 of the id); 0 = all")
    ap.add_argument("--modes", default=",".join(MODES), help="comma-separated: hybrid,dense,bm25")
    ap.add_argument("--out", default=str(RESULTS / "milvus_parity"))
    args = ap.parse_args(argv)
    from embeddings import load_encoder
    from rag.index.milvus.kb import MilvusKnowledgeBase
    from rag.index.milvus.schema import close_clients

    cfg = load_config()
    enc = CachingEncoder(load_encoder(cfg.embed, models_dir=cfg.paths.models_dir))
    corpora, sets = load_sets(False)
    _, qs, qrels = sets[POOLED]
    if args.limit:
        keep = sorted(qs, key=lambda q: hashlib.md5(q.encode()).hexdigest())[: args.limit]
        qs = {q: qs[q] for q in keep}
    qrels = {q: qrels[q] for q in qs}
    corpus = corpora["mixed"]
    print(f"{len(corpus)} paragraphs, {len(qs)} questions; encoding (cached in benchmarks/.cache)", flush=True)
    enc.encode_passages(passage_texts(corpus), show_progress=True)
    enc.encode_queries(list(qs.values()))

    work = Path(tempfile.mkdtemp(prefix="rag-parity-"))
    t0 = time.perf_counter()
    v = build_paragraph_index(corpus, enc, cfg, work, cfg.retrieve.bm25_analyzer)
    t_local = time.perf_counter() - t0
    mcfg = cfg.replace(index={"backend": "milvus", "milvus_uri": str(work / "milvus.db")})
    t0 = time.perf_counter()
    mkb = MilvusKnowledgeBase.open(str(v.path.parent), mcfg, encoder=enc, create=True)
    rep = mkb.add_documents([])  # the first Milvus build of a KB with a local index copies it
    t_milvus = time.perf_counter() - t0
    assert rep.embedded == 0 and len(mkb) == v.n_chunks, rep.to_dict()
    searchers = {"local": HybridSearcher(v, enc, cfg.retrieve), "milvus": mkb._searcher}

    cmd = " ".join(["nice python3 benchmarks/milvus_parity.py", *(argv if argv is not None else sys.argv[1:])])
    res: dict = {"command": cmd,
                 "set": POOLED, "questions": len(qs), "paragraphs": len(corpus), "model": enc.name,
                 "load_average_start": os.getloadavg(), "build_seconds": {"local": round(t_local, 1),
                 "milvus_copy": round(t_milvus, 1)}, "retrieve": vars(cfg.retrieve), "modes": {}}
    for mode in args.modes.split(","):
        row: dict = {}
        tops = {}
        for name, s in searchers.items():
            run, tops[name], lat = run_searcher(s, qs, mode)
            row[name] = {**evaluate(qrels, run), "p50_ms": pct_ms(lat, 0.5), "p95_ms": pct_ms(lat, 0.95)}
            print(mode, name, row[name], flush=True)
        row["top10_identical"] = round(sum(tops["local"][q] == tops["milvus"][q] for q in qs) / max(1, len(qs)), 4)
        row["delta_points"] = {m: round(100 * (row["milvus"][m] - row["local"][m]), 2) for m in METRICS}
        res["modes"][mode] = row
    res["load_average_end"] = os.getloadavg()
    close_clients()
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(res, ensure_ascii=False, indent=1), encoding="utf-8")
    write_markdown(res, out.with_suffix(".md"))
    print(out.with_suffix(".md").read_text(encoding="utf-8"))
    return 0


def write_markdown(res: dict, path: Path) -> None:
    la0 = ", ".join(f"{x:.1f}" for x in res["load_average_start"])
    la1 = ", ".join(f"{x:.1f}" for x in res["load_average_end"])
    L = ["# Ranking parity: Milvus backend vs local backend", "",
         f"Command: `{res['command']}`  ", f"Set: {res['set']}: {res['questions']} questions over {res['paragraphs']} "
         f"paragraphs (one chunk each); model {res['model']}; retrieval config as shipped "
         f"(fusion {res['retrieve']['fusion']}/{res['retrieve']['norm']}, w_dense {res['retrieve']['w_dense']}, "
         f"{res['retrieve']['candidates']} candidates).  ",
         f"Load average (1/5/15 min) at start {la0}, at end {la1}: the machine is shared (2 cores, several "
         "jobs), so latencies are side-by-side in one run, not absolute.  ",
         f"Build: local {res['build_seconds']['local']} s (incl. BM25), Milvus Lite copy of it "
         f"{res['build_seconds']['milvus_copy']} s (no re-embedding).", "",
         "| mode | backend | R@1 | R@5 | MRR@10 | p50 ms | p95 ms | top-10 identical |", "|---|---|---|---|---|---|---|---|"]
    for mode, row in res["modes"].items():
        for name in ("local", "milvus"):
            m = row[name]
            L.append(f"| {mode} | {name} | {m['recall@1']:.4f} | {m['recall@5']:.4f} | "
                     f"{m['mrr@10']:.4f} | {m['p50_ms']} | {m['p95_ms']} | "
                     f"{row['top10_identical'] if name == 'milvus' else ''} |")
        d = row["delta_points"]
        L.append(f"| {mode} | Δ points | {d['recall@1']:+.2f} | {d['recall@5']:+.2f} | {d['mrr@10']:+.2f} | | | |")
    L += ["", "Top-10 identical: share of questions whose ten returned paragraph ids are the same, in the same "
          "order, on both backends. Latency includes the "
          "query embedding (served from the benchmark's vector cache, so it is ~0) and, for Milvus, the gRPC "
          "round trips to the in-process Milvus Lite server (hybrid: dense search, BM25 search, and the two "
          "calls that fill in exact scores for the union of candidates)."]
    path.write_text("\n".join(L) + "\n", encoding="utf-8")


if __name__ == "__main__":
    raise SystemExit(main())
