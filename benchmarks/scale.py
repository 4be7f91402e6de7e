"""Scale benchmark: 10k and 100k chunks, insert rate, load time, query latency and RSS per backend.

    nice python3 benchmarks/scale.py                       # writes benchmarks/results/scale.{md,json}
    nice python3 benchmarks/scale.py --sizes 2000 --quick  # smoke run
    nice python3 benchmarks/scale.py --before '' --backends local,milvus --out benchmarks/results/scale_milvus.md

Data. Synthetic chunks made of sentences sampled from the real DRCD + CMRC dev paragraphs
(realistic vocabulary and posting lengths); their vectors are mixtures of real paragraph vectors
(multilingual-e5-small, encoded once and cached in benchmarks/.cache) plus noise, so no 100k
encoding is needed. Queries are real DRCD/CMRC questions, embedded *inside* the timed search
(each timed query is a fresh question: no query cache).

Everything goes through the production code: the local backend's version is written by
`rag.index.build.write_version` and opened by `rag.index.build.IndexVersion` (plus a `KnowledgeBase` open for
the load time the CLI sees), and searched by `rag.retrieve.searcher.HybridSearcher`. Load and query are
timed in a fresh process per (backend, size) so load time and RSS are honest (the page cache is
warm: the files were just written).

Recall: for every timed query, the top-10 of the production hybrid search and of dense-only
search are compared with the same search over an exact float32 flat scan of the same vectors
(`exact=True` on the version): the share of queries whose top-10 is identical is reported.

Milvus (`--backends local,milvus`): the KB folder holding that local version gets its first
Milvus build through the production migration (`MilvusKnowledgeBase.add_documents([])`, Milvus
Lite embedded at {kb}/milvus.db: chunks, vectors and BM25 tokens copied, nothing re-embedded),
timed in a child process; then a fresh child (OMP_NUM_THREADS=1, docs/milvus.md) times the open,
the same questions through `kb.search`, the RSS of itself plus the Lite server process, and how
often its hybrid top-10 equals the local backend's (benchmarks/scale_milvus.py).

"Insert" is the write of a version from already-embedded chunks (BM25 tokenising + matrix, vector
store, chunk store, checksums): the embedding of the passages is not included (it is the same for
every backend; see benchmarks/results/embeddings.md).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
if "--code" in sys.argv:  # a fresh process timing another tree's code (the "before" column)
    sys.path.insert(0, sys.argv[sys.argv.index("--code") + 1])
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from _common import (  # noqa: E402 - benchmarks/ is on sys.path (the script's folder)
    RESULTS, CachingEncoder, load_average, load_sets, md_table, pct_ms, rss_mb, synth_chunks,
    time_opens, time_queries, write_synthetic_version)
from rag.config import load_config  # noqa: E402
from scale_milvus import build_milvus, serve_milvus  # noqa: E402


# ------------------------------------------------------------------ data


def base_data(n_base: int, model: str | None):
    """(paragraphs [(title, text)], their vectors, questions) from DRCD + CMRC dev."""
    from embeddings import load_encoder

    corpora, sets = load_sets(quick=False)
    paras = list(corpora["mixed"].values())
    random.Random(0).shuffle(paras)
    paras = paras[:n_base]
    cfg = load_config(overrides={"embed": {"model": model} if model else {}})
    enc = CachingEncoder(load_encoder(cfg.embed, models_dir=cfg.paths.models_dir))
    vecs = np.asarray(enc.encode_passages([f"{p['title']}\n{p['text']}" for p in paras], show_progress=True), np.float32)
    questions = [t for _, qs, _ in list(sets.values())[:2] for t in qs.values()]
    random.Random(1).shuffle(questions)
    return paras, vecs, questions, enc


def convert_version(src: Path, kb_dir: Path, cfg) -> Path:
    """Rewrite the version `src` with whatever code is on sys.path (no re-tokenising, no
    re-embedding): how the "before" version is made by the previous code in a subprocess. Uses
    only APIs both the old and the new code have (ChunkStore, BM25Index.load, write_version)."""
    import faiss

    from rag.index.bm25 import BM25Index
    from rag.index.build import ChunkStore, write_version

    manifest = json.loads((src / "manifest.json").read_text(encoding="utf-8"))
    if "documents" not in manifest:
        manifest["documents"] = json.loads((src / "documents.json").read_text(encoding="utf-8"))
    manifest.pop("files", None)
    manifest["format"] = 1
    flat = faiss.read_index(str(src / "vectors.faiss"))
    vecs = flat.reconstruct_n(0, flat.ntotal)
    chunks = ChunkStore(src / "chunks.jsonl").all()
    return write_version(kb_dir, chunks, vecs, BM25Index.load(src), manifest, cfg)


# ------------------------------------------------------------------ the timed side (fresh process)


def serve_local(path: str, qfile: str, model: str | None, exact_reference: bool) -> dict:
    """Open the version (3 times: first and best), load the encoder, time hybrid searches (the
    query embedding included), and their parts; with `exact_reference`, compare the top-10 with
    the same search over an exact float32 scan."""
    from embeddings import load_encoder
    from rag.retrieve.searcher import HybridSearcher

    cfg = load_config(overrides={"embed": {"model": model} if model else {}})
    queries = json.loads(Path(qfile).read_text(encoding="utf-8"))
    v, loads = time_opens(Path(path))
    rss_index = round(rss_mb("VmRSS"), 1)
    enc = load_encoder(cfg.embed, models_dir=cfg.paths.models_dir)
    s = HybridSearcher(v, enc, cfg.retrieve)
    t = time_queries(s, queries, k=10, version=v)
    tops, qvs = t["tops"], t["qvs"]
    out = {
        "load_s": round(min(loads), 3), "load_s_first": round(loads[0], 3),
        "hybrid_p50_ms": pct_ms(t["hybrid"], 0.5), "hybrid_p95_ms": pct_ms(t["hybrid"], 0.95),
        "embed_p50_ms": pct_ms(t["embed"], 0.5), "dense_top50_p50_ms": pct_ms(t["dense"], 0.5),
        "bm25_p50_ms": pct_ms(t["bm25"], 0.5), "queries": len(queries),
        "rss_after_load_mb": rss_index, "peak_rss_mb": round(rss_mb(), 1), "tops": tops,
    }
    dense = getattr(v, "dense", None)
    if exact_reference and dense is not None and dense.use_coarse:
        approx_dense = [[r for r, _ in v.dense_search(qv, 10)] for qv in qvs]
        dense.use_coarse = False  # the reference: an exact float32 scan, everything else the same
        same_h = sum(t == [h.chunk.chunk_id for h in s.search(q, k=10)] for q, t in zip(queries, tops))
        same_d = sum(a == [r for r, _ in v.dense_search(qv, 10)] for a, qv in zip(approx_dense, qvs))
        out["top10_identical_hybrid"] = round(same_h / len(queries), 4)
        out["top10_identical_dense"] = round(same_d / len(queries), 4)
    return out


# ------------------------------------------------------------------ driver


def run_child(code: Path | None, *args: str, env: dict | None = None) -> dict:
    cmd = [sys.executable, __file__, *args] + (["--code", str(code)] if code else [])
    out = subprocess.run(cmd, check=True, capture_output=True, text=True,
                         env={**os.environ, **(env or {})}).stdout
    return json.loads(out.strip().splitlines()[-1])


def old_tree(ref: str, workdir: Path) -> Path:
    """The code at git `ref`, unpacked into workdir (for the "before" column)."""
    dst = workdir / f"code-{ref}"
    dst.mkdir()
    data = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "rag", "embeddings"], check=True,
                          capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dst)], input=data, check=True)
    return dst


def backend_available(name: str) -> str | None:
    """None if `name` is an index backend of this tree's config, else why not."""
    from rag.config import CHOICES

    allowed = CHOICES.get(("index", "backend"))
    if allowed is None or name not in allowed:
        return f"index.backend = {name!r} is not in this tree's rag.config (allowed: {allowed})"
    return None


def one_size(n: int, paras, base, questions, enc_name: str, cfg, args, work: Path, before: Path | None) -> list[dict]:
    chunks, vecs = synth_chunks(n, paras, base, seed=n)
    qfile = work / f"queries-{n}.json"
    qfile.write_text(json.dumps(questions[: args.queries], ensure_ascii=False), encoding="utf-8")
    rows = []
    from rag.index.bm25 import BM25Index  # noqa: F401  (imported here so its import is not timed)
    from rag.index.build import write_version  # noqa: F401  (likewise)

    t0 = time.perf_counter()
    path, _, _ = write_synthetic_version(work / f"local-{n}", chunks, vecs, cfg, args.analyzer, enc_name)
    insert_s = time.perf_counter() - t0
    size = sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())
    del chunks
    if before is not None:
        t0 = time.perf_counter()
        old = run_child(before, "--convert", str(path), str(work / f"before-{n}"))
        served = run_child(before, "--serve", old["path"], str(qfile), *(["--model", args.model] if args.model else []))
        served.pop("tops", None)
        rows.append({"chunks": n, "backend": "local", "code": f"before ({args.before})", "write_s": old["write_s"],
                     "index_mb": old["index_mb"], **served})
        shutil.rmtree(work / f"before-{n}", ignore_errors=True)
    mflag = ["--model", args.model] if args.model else []
    served = run_child(None, "--serve", str(path), str(qfile), "--exact-reference", *mflag)
    local_tops = served.pop("tops")
    rows.append({"chunks": n, "backend": "local", "code": "after", "insert_s": round(insert_s, 1),
                 "insert_per_s": round(n / insert_s), "index_mb": round(size / 2**20, 1), **served})
    for b in args.backends.split(","):
        if b == "milvus" and backend_available(b) is None:
            built = run_child(None, "--build-milvus", str(work / f"local-{n}"), *mflag)
            assert built.pop("n") == n, built
            print("milvus build", built, flush=True)
            served = run_child(None, "--serve-milvus", str(work / f"local-{n}"), str(qfile), *mflag,
                               env={"OMP_NUM_THREADS": "1"})  # docs/milvus.md: single queries
            tops = served.pop("tops")
            same = sum(a == b for a, b in zip(tops, local_tops)) / len(tops)
            overlap = sum(len(set(a) & set(b)) for a, b in zip(tops, local_tops)) / (10 * len(tops))
            rows.append({"chunks": n, "backend": "milvus (Lite, embedded)", "code": "after", **built, **served,
                         "top10_identical_local": round(same, 4), "top10_overlap_local": round(overlap, 4)})
        elif b and b != "local":
            why = backend_available(b)
            rows.append({"chunks": n, "backend": b, "code": "after",
                         "note": why or "not measured: this benchmark does not drive that backend yet"})
    shutil.rmtree(work / f"local-{n}", ignore_errors=True)
    return rows


COLUMNS = [("chunks", "chunks"), ("backend", "backend"), ("code", "code"), ("insert_per_s", "insert chunks/s"),
           ("insert_s", "insert s"), ("write_s", "write s"), ("index_mb", "index MB"), ("load_s", "load s (best of 3)"),
           ("load_s_first", "load s (first)"), ("hybrid_p50_ms", "hybrid p50 ms"), ("hybrid_p95_ms", "hybrid p95 ms"),
           ("embed_p50_ms", "query embedding p50 ms"), ("dense_top50_p50_ms", "dense top-50 p50 ms"),
           ("bm25_p50_ms", "BM25 p50 ms"), ("rss_after_load_mb", "RSS after load MB"), ("peak_rss_mb", "peak RSS MB"),
           ("rss_end_mb", "RSS after the queries MB"),
           ("top10_identical_hybrid", "hybrid top-10 = exact"), ("top10_identical_dense", "dense top-10 = exact"),
           ("top10_identical_local", "hybrid top-10 = local"), ("top10_overlap_local", "hybrid top-10 overlap with local"),
           ("note", "note")]


def write_markdown(res: dict, path: Path) -> None:
    L = ["# Scale benchmark: 10k / 100k chunks", "", f"Command: `{res['command']}`", "",
         f"Run {res['started']} – {res['finished']} UTC on {res['cpus']} CPUs. Load average at start "
         f"{res['load_start']}, at the end {res['load_end']}: **the machine is shared** with other jobs "
         "(several helpers and their tests), so absolute latencies are noisy; the rows of one size (before/after, "
         "local/Milvus) were measured in the same run, one right after the other.", "",
         "Data: synthetic chunks from sentences of real DRCD + CMRC dev paragraphs, vectors mixed from "
         f"{res['base']} real multilingual-e5-small paragraph vectors (see benchmarks/scale.py); "
         f"{res['queries']} real questions, each embedded inside the timed search (no query cache).", "",
         "- *before*: the code at the given commit (format 1: the document table inside manifest.json, FAISS "
         "read into memory, exact float32 flat scan); *after*: this tree (rag.index.vectors int8 scan + exact rescoring, "
         "format 2 with documents.json / chunks.ids.json beside a small manifest).",
         "- *insert* = writing a version from already-embedded chunks (BM25 tokenising and matrix, vectors, "
         "chunk store, checksums); *write* = the version write alone (no tokenising).",
         "- *hybrid p50/p95*: `HybridSearcher.search(q, k=10)` with the default fusion, query embedding included.",
         "- *top-10 = exact*: share of queries whose top-10 equals the same search over an exact float32 scan.", ""]
    if not any(str(r.get("code", "")).startswith("before") for r in res["rows"]):
        L = [x for x in L if not x.startswith("- *before*")]
    if any(str(r.get("backend", "")).startswith("milvus") for r in res["rows"]):
        L[0] = "# Scale benchmark: local and Milvus backends, 10k / 100k chunks"
        L[-1:-1] = [
            "- *milvus*: Milvus Lite embedded at {kb}/milvus.db, made from the same local version by the production "
            "migration (`MilvusKnowledgeBase.add_documents([])` on the KB folder, what `rag index --backend milvus` "
            "does: chunks, vectors and BM25 tokens copied, nothing re-embedded). *insert* = that whole first build "
            "(reading the local version, writing the collection and building its indexes, publishing the alias, "
            "reading the rows back once); *write* = `write_milvus_version` alone. Load and queries in a fresh "
            "process with OMP_NUM_THREADS=1 (docs/milvus.md); *load* = `MilvusKnowledgeBase.open` + the first "
            "(BM25) search, which starts the Lite server and loads the collection; best of 3 after closing the "
            "client (the Lite server is stopped and restarted each time); *RSS* = this process **plus the Milvus "
            "Lite server process** (local: the one process); 'RSS after load' is before the encoder is loaded.",
            "- *hybrid top-10 = local*: share of queries whose ten chunk ids (in order) equal the local backend's "
            "hybrid top-10 for the same question; *overlap*: mean share of the ten ids in common."]
    L += md_table(COLUMNS, res["rows"]) + [""]
    L += res.get("notes", [])
    path.write_text("\n".join(L) + "\n", encoding="utf-8")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--backends", default="local", help="comma-separated: local, milvus (through KnowledgeBase)")
    ap.add_argument("--before", default="bb66e31", help="git ref of the code for the 'before' rows ('' = none)")
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--base", type=int, default=2000, help="real paragraphs encoded for the synthetic vectors")
    ap.add_argument("--analyzer", default="jieba+bigram")
    ap.add_argument("--model", default=None)
    ap.add_argument("--out", default=str(RESULTS / "scale.md"))
    ap.add_argument("--code", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--serve", nargs=2, metavar=("VERSION", "QUERIES"), help=argparse.SUPPRESS)
    ap.add_argument("--exact-reference", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--convert", nargs=2, metavar=("SRC", "KB_DIR"), help=argparse.SUPPRESS)
    ap.add_argument("--build-milvus", metavar="KB_DIR", help=argparse.SUPPRESS)
    ap.add_argument("--serve-milvus", nargs=2, metavar=("KB_DIR", "QUERIES"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.build_milvus:
        print(json.dumps(build_milvus(args.build_milvus, args.model)))
        return 0
    if args.serve_milvus:
        print(json.dumps(serve_milvus(args.serve_milvus[0], args.serve_milvus[1], args.model)))
        return 0
    if args.serve:
        print(json.dumps(serve_local(args.serve[0], args.serve[1], args.model, args.exact_reference)))
        return 0
    if args.convert:
        t0 = time.perf_counter()
        p = convert_version(Path(args.convert[0]), Path(args.convert[1]), load_config())
        size = sum(f.stat().st_size for f in Path(p).rglob("*") if f.is_file())
        print(json.dumps({"path": str(p), "write_s": round(time.perf_counter() - t0, 1), "index_mb": round(size / 2**20, 1)}))
        return 0

    res = {"command": "nice python3 benchmarks/scale.py " + shlex.join(argv if argv is not None else sys.argv[1:]),
           "started": time.strftime("%Y-%m-%d %H:%M", time.gmtime()), "load_start": load_average(),
           "cpus": os.cpu_count(), "base": args.base, "queries": args.queries, "rows": [], "notes": []}
    paras, base, questions, enc = base_data(args.base, args.model)
    cfg = load_config(overrides={"embed": {"model": args.model} if args.model else {}})
    work = Path(tempfile.mkdtemp(prefix="rag-scale-"))
    try:
        before = old_tree(args.before, work) if args.before else None
        for n in [int(x) for x in args.sizes.split(",") if x]:
            print("size", n, load_average(), flush=True)
            for row in one_size(n, paras, base, questions, enc.name, cfg, args, work, before):
                print(row, flush=True)
                res["rows"].append(row)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    res["finished"] = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    res["load_end"] = load_average()
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(res, ensure_ascii=False, indent=1), encoding="utf-8")
    write_markdown(res, out)
    print("wrote", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
