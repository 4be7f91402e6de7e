"""What several benchmarks measure with: one home, imported as `_common` (a benchmark run as a
script has benchmarks/ on sys.path).

- data: `data_dir` (the DRCD / CMRC 2018 dev sets), `load_sets`, `passage_texts`, `build_paragraph_index` (one
  chunk per paragraph, through the production `rag.index.build.build_version`), `CachingEncoder`
  (vectors cached in benchmarks/.cache) — retrieval.py, scale.py, milvus_parity.py;
- ranking metrics through ranx: `evaluate`, `to_run`, `doc_of` — retrieval.py, milvus_parity.py;
- the synthetic corpus of the speed tests: `synth_chunks` (sentences of real paragraphs, mixed
  real vectors) and `write_synthetic_version` (the production `write_version`) — retrieval.py,
  scale.py;
- reports: `md_table`;
- timing: `time_opens` (IndexVersion opens), `time_queries` (hybrid / embedding / dense / BM25
  latency of each question, the query embedding inside the timed search), `pct_ms`, `quantile`;
- the machine: `status_kb` / `rss_mb` (/proc), `load_average`.

The production code is imported, never copied: everything here only drives or times it.

Compromise: two percentile definitions remain, because committed results were computed with
each and changing one would move published numbers: `pct_ms` (the value at index floor(p·n),
in ms — retrieval, scale, milvus_parity) and `quantile` (the value at index round(p·(n-1)), in the
input's unit — answer_latency, api_load). rag.* is imported inside the functions: scale.py's
"before" child puts an older tree's rag first on sys.path before importing this module.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "benchmarks" / ".cache"
RESULTS = ROOT / "benchmarks" / "results"
CUTOFFS = (1, 5, 20)
METRICS = [f"recall@{c}" for c in CUTOFFS] + ["mrr@10"]
CAND = 50  # dense / BM25 candidates per retriever, as the searcher's default


# ------------------------------------------------------------------ machine


def status_kb(field: str, pid: int | str = "self") -> int:
    """A kB field (VmRSS, VmHWM, …) of /proc/<pid>/status; 0 when the process or field is gone."""
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_mb(field: str = "VmHWM") -> float:
    """Peak (VmHWM) or current (VmRSS) resident memory of this process, MB. VmHWM, not
    getrusage's ru_maxrss, which after fork+exec on Linux includes the parent's peak (used only
    where /proc is missing)."""
    kb = status_kb(field)
    if not kb and not Path("/proc/self/status").exists():
        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def md_table(columns: list[tuple[str, str]], rows: list[dict]) -> list[str]:
    """Markdown lines of a right-aligned table: `columns` are (key, heading), a missing key is blank.

    >>> md_table([("n", "chunks"), ("s", "seconds")], [{"n": 10}])
    ['| chunks | seconds |', '| ---: | ---: |', '| 10 |  |']
    """
    return (["| " + " | ".join(h for _, h in columns) + " |", "|" + " ---: |" * len(columns)]
            + ["| " + " | ".join(str(row.get(k, "")) for k, _ in columns) + " |" for row in rows])


def pct_ms(xs, p: float) -> float:
    """The value at index floor(p·n) of the sorted seconds `xs`, in ms (0.0 for none).

    >>> pct_ms([0.003, 0.001, 0.002, 0.004], 0.5)
    3.0
    """
    xs = sorted(xs)
    return round(1000 * xs[min(len(xs) - 1, int(p * len(xs)))], 1) if xs else 0.0


def quantile(xs, p: float) -> float:
    """The value at index round(p·(n-1)) of the sorted `xs` (nan for none).

    >>> quantile([3, 1, 2, 4], 0.5), quantile([3, 1, 2, 4], 0.9)
    (3, 4)
    """
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p * (len(xs) - 1))))] if xs else float("nan")


# ------------------------------------------------------------------ data


def data_dir() -> Path:
    """The folder holding drcd/ and cmrc2018/: $RAG_BENCH_DATA, else shared/datasets beside the
    checkout (a worktree sits one level deeper), else /work/shared/datasets."""
    for p in (os.environ.get("RAG_BENCH_DATA"), ROOT.parent / "shared" / "datasets",
              ROOT.parent.parent / "shared" / "datasets", Path("/work/shared/datasets")):
        if p and (Path(p) / "drcd").is_dir():
            return Path(p)
    raise SystemExit("datasets not found: set RAG_BENCH_DATA to the folder holding drcd/ and cmrc2018/")


def load_sets(quick: bool):
    """(corpora {"drcd"|"cmrc"|"mixed": {pid: {title, text}}}, sets {name: (corpus, queries, qrels)})
    from the DRCD and CMRC 2018 dev sets; `quick`: 300 questions per set."""
    from rag.evaluate.evalsets import import_squad
    from rag.text.norm import t2s

    data = data_dir()
    drcd = import_squad(data / "drcd" / "DRCD_dev.json", "drcd")
    cmrc = import_squad(data / "cmrc2018" / "cmrc2018_dev.json", "cmrc")

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


def passage_texts(corpus: dict) -> list[str]:
    """What the index embeds for each paragraph of `corpus` ({pid: {title, text}}): the
    production `Chunk.embed_text` of its one chunk (to fill the vector cache ahead of a build)."""
    from rag.types import Chunk

    return [Chunk("", "", 0, v["title"], (), v["text"], 0, len(v["text"])).embed_text for v in corpus.values()]


def para_chunks(doc, _cc) -> list:
    """One chunk per paragraph (the benchmarks' unit), title as the heading."""
    from rag.types import Chunk

    return [Chunk(f"{doc.doc_id}#0", doc.doc_id, 0, doc.title, (), doc.text, 0, len(doc.text), doc.source)]


def build_paragraph_index(corpus: dict, encoder, cfg, workdir: Path, analyzer: str):
    """An IndexVersion of `corpus` ({pid: {title, text}}), one chunk per paragraph, built by the
    production build_version in a new folder under `workdir`."""
    from rag.index.build import IndexVersion, build_version
    from rag.types import Document

    docs = [Document(pid, pid, v["title"], v["text"], v["text"], range(len(v["text"])), {}) for pid, v in corpus.items()]
    kb_dir = Path(tempfile.mkdtemp(dir=workdir))
    path, _ = build_version(kb_dir, None, docs, cfg, encoder, chunk_fn=para_chunks, progress=False, analyzer=analyzer)
    return IndexVersion(path)


class CachingEncoder:
    """Wraps an Encoder; vectors persisted per (model, query|passage, sha1(text)) in CACHE."""

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


# ------------------------------------------------------------------ ranking metrics


def evaluate(qrels: dict, run: dict) -> dict[str, float]:
    """METRICS of `run` ({qid: {doc: score}}) against `qrels`, through ranx."""
    from ranx import Qrels, Run, evaluate as ranx_eval

    run = {q: (r if r else {"__none__": 0.0}) for q, r in run.items()}  # ranx wants every query present
    res = ranx_eval(Qrels.from_dict(qrels), Run.from_dict(run), METRICS, make_comparable=True)
    return {m: round(float(res[m]), 4) for m in METRICS}


def to_run(ranked: list[tuple[str, float]], n: int = 20) -> dict[str, float]:
    """A ranx run row from a ranking: the rank is encoded (not the raw score) so our tie-breaks are kept.

    >>> to_run([("a", 0.2), ("b", 0.2)], 3)
    {'a': 3.0, 'b': 2.0}
    """
    return {doc: float(n - i) for i, (doc, _) in enumerate(ranked[:n])}


def doc_of(cid: str) -> str:
    """The document id of a chunk id.

    >>> doc_of("1147-5#0")
    '1147-5'
    """
    return cid.rsplit("#", 1)[0]


# ------------------------------------------------------------------ the synthetic corpus


def synth_chunks(n: int, paras: list[dict], base: np.ndarray, seed: int):
    """n chunks and their L2-normalised vectors: the real paragraphs `paras` ({title, text},
    vectors `base`) first, then chunks of 4–9 sentences sampled from them whose vectors mix two
    real vectors (0.6 / 0.4) plus noise — realistic vocabulary and posting lengths, no encoding."""
    from rag.types import Chunk

    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    sents = [s for p in paras for s in re.findall(r"[^。！？]+[。！？]?", p["text"]) if s.strip()]
    chunks, vecs = [], np.zeros((n, base.shape[1]), np.float32)
    for i in range(n):
        if i < len(paras):  # the real paragraphs first
            text, v = paras[i]["text"], base[i]
        else:
            text = "".join(rng.choice(sents) for _ in range(rng.randint(4, 9)))
            a, b = rng.randrange(len(paras)), rng.randrange(len(paras))
            v = 0.6 * base[a] + 0.4 * base[b] + nrng.normal(0, 0.02, base.shape[1])
        vecs[i] = v / np.linalg.norm(v)
        title = paras[i % len(paras)]["title"]
        chunks.append(Chunk(f"s{i}#0", f"s{i}", 0, title, (), text, 0, len(text), f"s{i}"))
    return chunks, vecs


def write_synthetic_version(kb_dir: Path, chunks, vecs: np.ndarray, cfg, analyzer: str, model: str):
    """One local index version of already-embedded chunks (one document each) through the
    production BM25Index.build and write_version: (path, BM25 build seconds, write seconds)."""
    from rag.index.bm25 import BM25Index
    from rag.index.build import FORMAT, write_version

    t0 = time.perf_counter()
    bm = BM25Index.build([c.embed_text for c in chunks], analyzer)
    t_bm = time.perf_counter() - t0
    docs = [{"doc_id": c.doc_id, "source": c.source, "title": c.title, "sha256": "", "date": "", "added": "",
             "updated": "", "n_chunks": 1, "first_row": i, "chunk_ids": [c.chunk_id], "metadata": {}}
            for i, c in enumerate(chunks)]
    manifest = {"format": FORMAT, "embedding": {"model": model, "config_model": cfg.embed.model,
                                                "dim": int(vecs.shape[1]), "normalized": True},
                "bm25": {"analyzer": analyzer}, "chunker": {}, "n_chunks": len(chunks), "n_documents": len(chunks),
                "corpus_hash": "synthetic", "documents": docs, "versions": {}, "built_at": "", "build_seconds": None}
    t0 = time.perf_counter()
    path = write_version(kb_dir, chunks, vecs, bm, manifest, cfg)
    return path, t_bm, time.perf_counter() - t0


# ------------------------------------------------------------------ timing a version


def time_opens(path: Path, n: int = 3):
    """(the last IndexVersion, seconds of each of `n` opens of the version at `path`)."""
    from rag.index.build import IndexVersion

    loads = []
    for _ in range(n):
        t0 = time.perf_counter()
        v = IndexVersion(Path(path))
        loads.append(time.perf_counter() - t0)
    return v, loads


def time_queries(searcher, queries: list[str], k: int, version=None) -> dict[str, list]:
    """Per question, seconds of: the hybrid `searcher.search(q, k)` (it embeds the question
    itself: each timed query is a fresh one) and, with the searcher's `version`, the query
    embedding and the dense top-CAND search; then the BM25 search. Plus the hybrid top-k ids
    ("tops") and the query vectors ("qvs"). `searcher`: a HybridSearcher or a knowledge base
    (anything with `search(q, k=, mode=)`). Five untimed searches first (lazy imports, jieba's
    dictionary, the first page faults)."""
    for q in queries[:5]:
        searcher.search(q, k=k)
    out: dict[str, list] = {"hybrid": [], "embed": [], "dense": [], "bm25": [], "tops": [], "qvs": []}
    for q in queries:
        t0 = time.perf_counter()
        hits = searcher.search(q, k=k)
        out["hybrid"].append(time.perf_counter() - t0)
        out["tops"].append([h.chunk.chunk_id for h in hits])
        if version is not None:
            t0 = time.perf_counter()
            qv = searcher.embed_query(q)
            out["embed"].append(time.perf_counter() - t0)
            out["qvs"].append(qv)
            t0 = time.perf_counter()
            version.dense_search(qv, CAND)
            out["dense"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        searcher.search(q, k=k, mode="bm25")
        out["bm25"].append(time.perf_counter() - t0)
    return out
