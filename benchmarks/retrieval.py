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
import re
import resource
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

from rag.index.bm25 import ANALYZERS, BM25Index, top_k  # noqa: E402
from rag.config import load_config  # noqa: E402
from rag.evaluate.evalsets import import_squad  # noqa: E402
from rag.retrieve.fusion import convex, rrf  # noqa: E402
from rag.index.build import IndexVersion, build_version  # noqa: E402
from rag.retrieve.searcher import HybridSearcher  # noqa: E402
from rag.text.norm import t2s  # noqa: E402
from rag.types import Chunk, Document  # noqa: E402

DATA = ROOT.parent / "shared" / "datasets"
CACHE = ROOT / "benchmarks" / ".cache"
RESULTS = ROOT / "benchmarks" / "results"
CUTOFFS = (1, 5, 20)
METRICS = [f"recall@{c}" for c in CUTOFFS] + ["mrr@10"]
CAND = 50


# ------------------------------------------------------------------ cached encoder


class CachingEncoder:
    """Wraps an Encoder; vectors persisted per (model, query|passage, sha1(text))."""

    def __init__(self, enc):
        self.enc = enc
        self.name, self.dim = enc.name, enc.dim
        safe = re.sub(r"[^\w.-]+", "_", enc.name)
        self.paths = {kind: CACHE / f"{safe}-{kind}.npz" for kind in ("query", "passage")}
        self.mem: dict[str, dict[str, np.ndarray]] = {}
        self.encoded = {"query": 0, "passage": 0}
        self.seconds = {"query": 0.0, "passage": 0.0}
        for kind, p in self.paths.items():
            self.mem[kind] = {}
            if p.exists():
                z = np.load(p)
                self.mem[kind] = dict(zip(z["keys"].tolist(), z["vecs"]))

    def _get(self, kind: str, texts, show_progress=False) -> np.ndarray:
        keys = [hashlib.sha1(t.encode()).hexdigest() for t in texts]
        miss = sorted({k: t for k, t in zip(keys, texts) if k not in self.mem[kind]}.items())
        if miss:
            t0 = time.perf_counter()
            fn = self.enc.encode_queries if kind == "query" else self.enc.encode_passages
            kw = {} if kind == "query" else {"show_progress": show_progress}
            vecs = fn([t for _, t in miss], **kw)
            self.seconds[kind] += time.perf_counter() - t0
            self.encoded[kind] += len(miss)
            for (k, _), v in zip(miss, vecs):
                self.mem[kind][k] = np.asarray(v, np.float32)
            self.save(kind)
        return np.stack([self.mem[kind][k] for k in keys]) if keys else np.zeros((0, self.dim), np.float32)

    def save(self, kind: str) -> None:
        CACHE.mkdir(parents=True, exist_ok=True)
        keys = list(self.mem[kind])
        tmp = self.paths[kind].with_suffix(".tmp.npz")
        np.savez(tmp, keys=np.array(keys), vecs=np.stack([self.mem[kind][k] for k in keys]))
        os.replace(tmp, self.paths[kind])

    def encode_queries(self, texts):
        return self._get("query", list(texts))

    def encode_passages(self, texts, show_progress=False):
        return self._get("passage", list(texts), show_progress)


# ------------------------------------------------------------------ data


def para_chunks(doc: Document, _cc) -> list[Chunk]:
    """One chunk per paragraph (the benchmark's unit), title as the heading."""
    return [Chunk(f"{doc.doc_id}#0", doc.doc_id, 0, doc.title, (), doc.text, 0, len(doc.text), doc.source)]


def half(qid: str) -> str:
    return "tune" if int(hashlib.md5(qid.encode()).hexdigest(), 16) % 2 == 0 else "report"


def load_sets(quick: bool):
    drcd = import_squad(DATA / "drcd" / "DRCD_dev.json", "drcd")
    cmrc = import_squad(DATA / "cmrc2018" / "cmrc2018_dev.json", "cmrc")

    def prep(es, limit=None):
        corpus = {pid: {"title": v.get("title", ""), "text": v["text"]} for pid, v in es.corpus.items()}
        qs = {q: es.queries[q]["text"] for q in es.qrels}
        if limit:
            qs = dict(list(qs.items())[:limit])
        return corpus, qs, {q: es.qrels[q] for q in qs}

    lim = 300 if quick else None
    dc, dq, dr = prep(drcd, lim)
    cc, cq, cr = prep(cmrc, lim)
    # ids are disjoint between the two datasets (DRCD "1147-5", CMRC "DEV_0…"): check anyway
    assert not set(dc) & set(cc) and not set(dq) & set(cq)
    sets = {
        "DRCD dev (traditional)": ("drcd", dq, dr),
        "CMRC 2018 dev (simplified)": ("cmrc", cq, cr),
        "DRCD + CMRC pooled (mixed script)": ("mixed", {**dq, **cq}, {**dr, **cr}),
        "DRCD questions in simplified": ("drcd", {q: t2s(t) for q, t in dq.items()}, dr),
    }
    corpora = {"drcd": dc, "cmrc": cc, "mixed": {**dc, **cc}}
    return corpora, sets


def build(corpus: dict, encoder, cfg, workdir: Path, analyzer: str) -> IndexVersion:
    docs = [Document(pid, pid, v["title"], v["text"], v["text"], range(len(v["text"])), {}) for pid, v in corpus.items()]
    kb_dir = Path(tempfile.mkdtemp(dir=workdir))
    path, _ = build_version(kb_dir, None, docs, cfg, encoder, chunk_fn=para_chunks, progress=False, analyzer=analyzer)
    return IndexVersion(path)


# ------------------------------------------------------------------ evaluation helpers


def evaluate(qrels: dict, run: dict) -> dict[str, float]:
    from ranx import Qrels, Run, evaluate as ranx_eval

    run = {q: (r if r else {"__none__": 0.0}) for q, r in run.items()}  # ranx wants every query present
    res = ranx_eval(Qrels.from_dict(qrels), Run.from_dict(run), METRICS, make_comparable=True)
    return {m: round(float(res[m]), 4) for m in METRICS}


def to_run(ranked: list[tuple[str, float]], n: int = 20) -> dict[str, float]:
    # ranx sorts by score; encode the rank (not the raw score) so our tie-breaks are kept
    return {doc: float(n - i) for i, (doc, _) in enumerate(ranked[:n])}


def candidates(searcher: HybridSearcher, qs: dict[str, str]) -> dict[str, dict]:
    """Per query: dense and BM25 top-CAND lists with exact scores of both retrievers on the union."""
    v = searcher.version
    ids = v.ids_by_row
    out = {}
    qids = list(qs)
    qvecs = searcher.encoder.encode_queries([qs[q] for q in qids])
    for q, qv in zip(qids, qvecs):
        dense = v.dense_search(qv, CAND)
        bs = v.bm25.get_scores(qs[q])
        bm = top_k(bs, CAND)
        union = sorted({r for r, _ in dense} | {r for r, _ in bm})
        dsc = dict(zip(union, (v.vectors(union) @ qv).tolist()))
        out[q] = {
            "dense": [(ids[r], s) for r, s in dense],
            "bm25": [(ids[r], s) for r, s in bm],
            "dense_all": {ids[r]: dsc[r] for r in union},
            "bm25_all": {ids[r]: float(bs[r]) for r in union},
        }
    return out


def doc_of(cid: str) -> str:
    return cid.rsplit("#", 1)[0]


def fuse(c: dict, method: dict) -> list[tuple[str, float]]:
    kind = method["fusion"]
    if kind == "dense":
        return c["dense"]
    if kind == "bm25":
        return c["bm25"]
    w = {"dense": method["w_dense"], "bm25": method["w_bm25"]}
    if kind == "rrf":
        return rrf({"dense": [i for i, _ in c["dense"]], "bm25": [i for i, _ in c["bm25"]]}, k=method["rrf_k"], weights=w)
    return convex({"dense": c["dense_all"], "bm25": c["bm25_all"]}, weights=w, norm=method["norm"])


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


def label(m: dict) -> str:
    if m["fusion"] == "rrf":
        return f"RRF k={m['rrf_k']} w_dense={m['w_dense']} w_bm25={m['w_bm25']}"
    if m["fusion"] == "convex":
        return f"convex {m['norm']} w_dense={m['w_dense']} w_bm25={m['w_bm25']}"
    return m["fusion"]


# ------------------------------------------------------------------ scale


def rss_mb() -> float:
    """Peak RSS of this process (VmHWM; getrusage's ru_maxrss would include the parent's peak
    after fork+exec on Linux)."""
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def scale_test(n: int, corpus: dict, pvecs: dict, queries: list[str], encoder, cfg, workdir: Path, analyzer: str,
               n_queries: int = 200) -> dict:
    from rag.index.build import write_version

    rng = random.Random(n)
    nrng = np.random.default_rng(n)
    pids = list(corpus)
    sents = [s for pid in pids for s in re.findall(r"[^。！？]+[。！？]?", corpus[pid]["text"]) if s.strip()]
    base = np.stack([pvecs[p] for p in pids])
    chunks, vecs = [], np.zeros((n, base.shape[1]), np.float32)
    for i in range(n):
        if i < len(pids):  # the real paragraphs first
            p = pids[i]
            text, v = corpus[p]["text"], base[i]
        else:
            text = "".join(rng.choice(sents) for _ in range(rng.randint(4, 9)))
            a, b = rng.randrange(len(pids)), rng.randrange(len(pids))
            v = 0.6 * base[a] + 0.4 * base[b] + nrng.normal(0, 0.02, base.shape[1])
        vecs[i] = v / np.linalg.norm(v)
        chunks.append(Chunk(f"s{i}#0", f"s{i}", 0, corpus[pids[i % len(pids)]]["title"], (), text, 0, len(text), f"s{i}"))
    t0 = time.perf_counter()
    bm = BM25Index.build([c.embed_text for c in chunks], analyzer)
    t_bm = time.perf_counter() - t0
    docs = [{"doc_id": c.doc_id, "source": c.source, "title": c.title, "sha256": "", "date": "", "added": "",
             "updated": "", "n_chunks": 1, "first_row": i, "chunk_ids": [c.chunk_id], "metadata": {}}
            for i, c in enumerate(chunks)]
    manifest = {"format": 1, "embedding": {"model": encoder.name, "config_model": cfg.embed.model, "dim": encoder.dim},
                "bm25": {"analyzer": analyzer}, "chunker": {}, "n_chunks": n, "n_documents": n, "corpus_hash": "synthetic",
                "documents": docs, "versions": {}, "built_at": "", "build_seconds": None}
    kb_dir = Path(tempfile.mkdtemp(dir=workdir))
    t0 = time.perf_counter()
    path = write_version(kb_dir, chunks, vecs, bm, manifest, cfg)
    t_write = time.perf_counter() - t0
    (Path(path) / "results_cfg.json").write_text(json.dumps(
        {f: getattr(cfg.retrieve, f) for f in ("fusion", "rrf_k", "w_dense", "w_bm25", "norm")}), encoding="utf-8")
    del chunks, bm
    # load + query in a fresh process: honest load time and peak RSS (index + encoder only)
    import subprocess

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
    loads = []
    for _ in range(3):
        t0 = time.perf_counter()
        v = IndexVersion(Path(path))
        loads.append(time.perf_counter() - t0)
    rss_index = rss_mb()
    enc = load_encoder(cfg.embed, models_dir=cfg.paths.models_dir)
    s = HybridSearcher(v, enc, cfg.retrieve)
    for q in queries[:5]:
        s.search(q, k=5)  # warm-up (first query pays lazy imports, jieba's dictionary)
    lat, lat_bm, lat_dense, lat_emb = [], [], [], []
    for q in queries:
        # the timed hybrid search embeds the question itself (no cache): real end-to-end latency
        t0 = time.perf_counter()
        s.search(q, k=5)
        lat.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        s.search(q, k=5, mode="bm25")
        lat_bm.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        qv = s.embed_query(q)
        lat_emb.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        v.dense_search(qv, CAND)
        lat_dense.append(time.perf_counter() - t0)

    def pct(xs, p):
        xs = sorted(xs)
        return round(1000 * xs[min(len(xs) - 1, int(p * len(xs)))], 1)

    return {
        "load_s": round(min(loads), 3), "load_s_first": round(loads[0], 3),
        "hybrid_p50_ms": pct(lat, 0.5), "hybrid_p95_ms": pct(lat, 0.95),
        "query_embed_p50_ms": pct(lat_emb, 0.5), "query_embed_p95_ms": pct(lat_emb, 0.95),
        "faiss_top50_p50_ms": pct(lat_dense, 0.5),
        "bm25_p50_ms": pct(lat_bm, 0.5), "bm25_p95_ms": pct(lat_bm, 0.95),
        "rss_after_load_mb": round(rss_index, 0), "peak_rss_mb": round(rss_mb(), 0),
        "queries_timed": len(queries), "fusion": {f: getattr(cfg.retrieve, f) for f in ("fusion", "rrf_k", "w_dense", "w_bm25", "norm")},
    }


# ------------------------------------------------------------------ report

BEGIN, END = "<!-- generated by benchmarks/retrieval.py: begin -->", "<!-- generated by benchmarks/retrieval.py: end -->"


def _pct(x):
    return f"{100 * x:.1f}"


def write_markdown(res: dict, path: Path) -> None:
    """Tables from the JSON, between markers; text outside the markers (the discussion) is kept."""
    L = []
    L.append(f"Command: `{res['command']}` (model `{res['model']}`, backend {res['backend']}). "
             f"Raw numbers: `{path.with_suffix('.json').name}`.\n")
    L.append(f"Split: {res['split']}. BM25 analyzer chosen on TUNE: **{res['bm25_analyzer']}**; "
             f"fusion chosen on TUNE: **{label(res['chosen']['fusion'])}**.\n")
    L.append("### Quality on the REPORT half (Recall@1 / @5 / @20, MRR@10, in %)\n")
    for sname, rows in res["report_half"].items():
        L.append(f"**{sname}** — {rows['n_questions']} questions\n")
        L.append("| retriever | R@1 | R@5 | R@20 | MRR@10 |")
        L.append("| --- | ---: | ---: | ---: | ---: |")
        for m, r in rows.items():
            if m == "n_questions":
                continue
            L.append(f"| {m} | {_pct(r['recall@1'])} | {_pct(r['recall@5'])} | {_pct(r['recall@20'])} | {_pct(r['mrr@10'])} |")
        L.append("")
    L.append("### Full question sets, for reference (the chosen hybrid was tuned on half of these)\n")
    L.append("| set | retriever | R@1 | R@5 | R@20 | MRR@10 |")
    L.append("| --- | --- | ---: | ---: | ---: | ---: |")
    for sname, rows in res["full_sets_for_reference"].items():
        for m, r in rows.items():
            L.append(f"| {sname} | {m} | {_pct(r['recall@1'])} | {_pct(r['recall@5'])} | {_pct(r['recall@20'])} | {_pct(r['mrr@10'])} |")
    L.append("")
    L.append("### BM25 analyzers (TUNE half, BM25 alone, R@1 / MRR@10 in %)\n")
    L.append("| analyzer | " + " | ".join(next(iter(res["bm25_analyzers_tune_half"].values())).keys()) + " |")
    L.append("| --- |" + " ---: |" * len(next(iter(res["bm25_analyzers_tune_half"].values()))))
    for an, row in res["bm25_analyzers_tune_half"].items():
        L.append(f"| {an} | " + " | ".join(f"{_pct(r['recall@1'])} / {_pct(r['mrr@10'])}" for r in row.values()) + " |")
    L.append("")
    L.append("### Fusion search on the TUNE half (mean over DRCD and CMRC; best 12 of "
             f"{len(res['fusion_grid_tune_half'])})\n")
    L.append("| fusion | mean MRR@10 | mean R@1 |")
    L.append("| --- | ---: | ---: |")
    for r in res["fusion_grid_tune_half"][:12]:
        L.append(f"| {r['label']} | {_pct(r['mean_mrr@10'])} | {_pct(r['mean_r@1'])} |")
    L.append("")
    L.append(f"`HybridSearcher.search` with the chosen settings reproduces the offline fusion on "
             f"{res['searcher_agrees_with_offline_fusion']} sampled questions (top-10 identical).\n")
    enc = res["encoding"]
    L.append(f"### Speed\n\nEncoding this run: {enc['encoded_this_run']} texts in {enc['seconds']} s "
             f"→ {enc['per_second']} per second (0/None = served from the vector cache).\n")
    if res.get("scale"):
        keys = [("chunks", "chunks"), ("index_mb", "index MB"), ("bm25_build_s", "BM25 build s"), ("write_s", "write s"),
                ("load_s", "load s (best of 3)"), ("load_s_first", "load s (first)"),
                ("hybrid_p50_ms", "hybrid p50 ms"), ("hybrid_p95_ms", "hybrid p95 ms"),
                ("query_embed_p50_ms", "query embedding p50 ms"), ("query_embed_p95_ms", "query embedding p95 ms"),
                ("faiss_top50_p50_ms", "FAISS top-50 p50 ms"), ("bm25_p50_ms", "BM25 p50 ms"), ("bm25_p95_ms", "BM25 p95 ms"),
                ("rss_after_load_mb", "RSS after load MB"), ("peak_rss_mb", "peak RSS MB")]
        L.append("| " + " | ".join(h for _, h in keys) + " |")
        L.append("|" + " ---: |" * len(keys))
        for row in res["scale"]:
            L.append("| " + " | ".join(str(row.get(k, "")) for k, _ in keys) + " |")
        L.append("")
        L.append(f"Peak RSS of the whole benchmark process: {res['peak_rss_mb']} MB (includes the encoder and "
                 "every evaluation index). Latencies are on a 2-core machine shared with other jobs, under `nice`.\n")
    auto = "\n".join(L)
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    if BEGIN in old and END in old:
        new = old[: old.index(BEGIN) + len(BEGIN)] + "\n" + auto + "\n" + old[old.index(END):]
    else:
        new = f"# Retrieval benchmark\n\n{BEGIN}\n{auto}\n{END}\n"
    path.write_text(new, encoding="utf-8")


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

    # 1. encode every corpus once (through the cache)
    all_paras = {**corpora["drcd"], **corpora["cmrc"]}
    texts = [(v["title"] + "\n" + v["text"]) if v["title"] else v["text"] for v in all_paras.values()]
    enc.encode_passages(texts, show_progress=True)
    enc.encode_queries([t for _, qs, _ in sets.values() for t in qs.values()])
    throughput = {
        k: (round(enc.encoded[k] / enc.seconds[k], 1) if enc.seconds[k] else None) for k in ("passage", "query")
    }
    print("encoding throughput (this run, 0 = all cached):", enc.encoded, throughput, flush=True)

    results: dict = {"model": enc.name, "backend": getattr(raw_enc, "backend_name", None), "quick": args.quick,
                     "command": "nice python3 benchmarks/retrieval.py" + (" --quick" if args.quick else ""),
                     "encoding": {"encoded_this_run": enc.encoded, "seconds": {k: round(v, 1) for k, v in enc.seconds.items()},
                                  "per_second": throughput},
                     "split": "questions split by md5(question id) parity: TUNE half chooses, REPORT half is reported"}

    # 2. BM25 analyzer on the TUNE half (bm25 only)
    analyzer_scores = {}
    cand_cache: dict[tuple[str, str], dict] = {}
    versions = {}
    for an in ANALYZERS:
        row = {}
        for sname in ("DRCD dev (traditional)", "CMRC 2018 dev (simplified)"):
            cname, qs, qrels = sets[sname]
            key = (cname, an)
            if key not in versions:
                versions[key] = build(corpora[cname], enc, cfg, work, an)
            v = versions[key]
            tune = {q: t for q, t in qs.items() if half(q) == "tune"}
            run = {q: to_run([(doc_of(v.ids_by_row[r]), s) for r, s in v.bm25.search(t, 20)]) for q, t in tune.items()}
            row[sname] = evaluate({q: qrels[q] for q in tune}, run)
        analyzer_scores[an] = row
        print("analyzer", an, row, flush=True)
    best_an = max(ANALYZERS, key=lambda a: statistics.mean(r["mrr@10"] for r in analyzer_scores[a].values()))
    results["bm25_analyzers_tune_half"] = analyzer_scores
    results["bm25_analyzer"] = best_an

    # 3. candidates for every set with the chosen analyzer
    cands = {}
    for sname, (cname, qs, qrels) in sets.items():
        key = (cname, best_an)
        if key not in versions:
            versions[key] = build(corpora[cname], enc, cfg, work, best_an)
        s = HybridSearcher(versions[key], enc, cfg.retrieve)
        cands[sname] = candidates(s, qs)
        print("candidates", sname, len(cands[sname]), flush=True)

    # 4. fusion grid on the TUNE half of DRCD + CMRC (mean MRR@10; R@1 breaks ties)
    tune_sets = ("DRCD dev (traditional)", "CMRC 2018 dev (simplified)")
    grid_rows = []
    for m in grid():
        row = {}
        for sname in tune_sets:
            _, qs, qrels = sets[sname]
            c = {q: v for q, v in cands[sname].items() if half(q) == "tune"}
            row[sname] = evaluate({q: qrels[q] for q in c}, run_method(c, m))
        score = statistics.mean(r["mrr@10"] for r in row.values())
        r1 = statistics.mean(r["recall@1"] for r in row.values())
        grid_rows.append({"method": m, "label": label(m), "mean_mrr@10": round(score, 4), "mean_r@1": round(r1, 4), "sets": row})
    grid_rows.sort(key=lambda r: (-r["mean_mrr@10"], -r["mean_r@1"], r["label"]))
    best = grid_rows[0]["method"]
    best_rrf = next(r["method"] for r in grid_rows if r["method"]["fusion"] == "rrf")
    print("best fusion (tune half):", label(best), grid_rows[0]["mean_mrr@10"], flush=True)
    results["fusion_grid_tune_half"] = [{k: r[k] for k in ("label", "mean_mrr@10", "mean_r@1")} for r in grid_rows]
    results["chosen"] = {"fusion": best, "best_rrf": best_rrf}

    # 5. report half: every retriever side by side
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
    results["report_half"] = table
    full = {}
    for sname, (_, qs, qrels) in sets.items():
        full[sname] = {mname: evaluate(qrels, run_method(cands[sname], m)) for mname, m in methods.items()
                       if mname in ("bm25", "dense") or m is best}
    results["full_sets_for_reference"] = full

    # 6. the chosen configuration through HybridSearcher.search itself must give the same ranking
    rc = cfg.retrieve
    for f in ("fusion", "rrf_k", "w_dense", "w_bm25", "norm"):
        setattr(rc, f, best[f])
    sname = "DRCD dev (traditional)"
    cname, qs, qrels = sets[sname]
    s = HybridSearcher(versions[(cname, best_an)], enc, rc)
    sample = [q for q in qs if half(q) == "report"][:200]
    agree = sum([h.chunk.chunk_id for h in s.search(qs[q], k=10)] == [i for i, _ in fuse(cands[sname][q], best)[:10]]
                for q in sample)
    results["searcher_agrees_with_offline_fusion"] = f"{agree}/{len(sample)}"
    print("searcher agreement", agree, len(sample), flush=True)

    # 7. speed at scale (hybrid with the chosen fusion)
    pvecs = {pid: vec for pid, vec in zip(all_paras, enc.encode_passages(texts))}
    timed_q = [t for _, qs, _ in list(sets.values())[:2] for t in qs.values()]
    random.Random(0).shuffle(timed_q)
    scale = []
    sizes = [int(x) for x in args.scale.split(",") if x] if not args.quick else [2000]
    for n in sizes:
        print("scale", n, flush=True)
        scale.append(scale_test(n, all_paras, pvecs, timed_q, raw_enc, cfg, work, best_an))  # cfg.retrieve = chosen
        print(scale[-1], flush=True)
    results["scale"] = scale
    results["peak_rss_mb"] = round(rss_mb(), 0)
    results["machine"] = {"cpus": os.cpu_count(), "note": "2 shared cores, run under nice"}

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(results, ensure_ascii=False, indent=1), encoding="utf-8")
    write_markdown(results, out.with_suffix(".md"))
    print("wrote", out.with_suffix(".json"), out.with_suffix(".md"))
    import shutil

    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
