"""The Milvus side of benchmarks/scale.py (`--backends local,milvus`), each part run in a child
process of it: `build_milvus` (the production migration of the local version into Milvus Lite,
timed) and `serve_milvus` (open and query times, RSS of this process plus the Lite server)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from _common import pct_ms, status_kb, time_queries  # benchmarks/ is on sys.path (the script's folder)
from rag.config import load_config


def tree_rss_mb() -> float:
    """Current RSS of this process plus its descendants (the embedded Milvus Lite server is a
    child process), MB. Reads /proc: no psutil here."""
    def kids(pid: int) -> list[int]:
        out = []
        for t in Path(f"/proc/{pid}/task").glob("*"):
            try:
                out += [int(x) for x in (t / "children").read_text().split()]
            except OSError:
                pass
        return out

    total, todo = 0, [os.getpid()]
    while todo:
        pid = todo.pop()
        if not Path(f"/proc/{pid}").exists():
            continue
        total += status_kb("VmRSS", pid)
        todo += kids(pid)
    return round(total / 1024, 1)


def milvus_cfg(model: str | None):
    return load_config(overrides={"embed": {"model": model} if model else {}, "index": {"backend": "milvus"}})


def build_milvus(kb_dir: str, model: str | None) -> dict:
    """The first Milvus build of the KB folder holding the local version: the production
    migration (`rag index --backend milvus` = `add_documents([])` on a KB with a local index,
    Milvus Lite embedded at {kb}/milvus.db). The encoder is loaded before the clock starts."""
    import rag.index.milvus.store as ms
    from embeddings import load_encoder
    from rag.index.milvus.kb import MilvusKnowledgeBase
    from rag.index.milvus.schema import close_clients

    cfg = milvus_cfg(model)
    enc = load_encoder(cfg.embed, models_dir=cfg.paths.models_dir)
    write_s = []
    real = ms.write_milvus_version

    def timed(*a, **kw):  # the production writer, only timed
        t = time.perf_counter()
        try:
            return real(*a, **kw)
        finally:
            write_s.append(time.perf_counter() - t)

    ms.write_milvus_version = timed
    t0 = time.perf_counter()
    kb = MilvusKnowledgeBase.open(kb_dir, cfg, encoder=enc, create=True)
    rep = kb.add_documents([])
    total = time.perf_counter() - t0
    n = len(kb)
    assert rep.embedded == 0 and n > 0, rep.to_dict()
    close_clients()
    size = sum(f.stat().st_size for f in (Path(kb_dir) / "milvus.db").rglob("*") if f.is_file())
    return {"insert_s": round(total, 1), "insert_per_s": round(n / total), "write_s": round(sum(write_s), 1),
            "index_mb": round(size / 2**20, 1), "n": n}


def serve_milvus(kb_dir: str, qfile: str, model: str | None) -> dict:
    """Like serve_local for the Milvus KB built by build_milvus: open (first = starting the
    embedded Milvus Lite server and loading the collection; then twice more after closing it),
    load the encoder, time `kb.search(q, k=10)` (query embedding included), RSS of this process
    and the Milvus Lite server after the open."""
    from rag.index.milvus.kb import MilvusKnowledgeBase
    from rag.index.milvus.schema import close_clients

    cfg = milvus_cfg(model)
    queries = json.loads(Path(qfile).read_text(encoding="utf-8"))
    loads = []
    for i in range(3):
        if i:
            close_clients()
        t0 = time.perf_counter()
        kb = MilvusKnowledgeBase.open(kb_dir, cfg)  # the encoder is loaded later (as for local)
        kb.search(queries[0], k=10, mode="bm25")  # the first search loads the collection
        loads.append(time.perf_counter() - t0)
    rss_index = tree_rss_mb()
    kb._get_encoder()  # the KB's own lazy load (checks the model against the manifest)
    t = time_queries(kb, queries, k=10)
    out = {"load_s": round(min(loads), 3), "load_s_first": round(loads[0], 3),
           "hybrid_p50_ms": pct_ms(t["hybrid"], 0.5), "hybrid_p95_ms": pct_ms(t["hybrid"], 0.95),
           "bm25_p50_ms": pct_ms(t["bm25"], 0.5), "queries": len(queries), "rss_after_load_mb": rss_index,
           "rss_end_mb": tree_rss_mb(), "tops": t["tops"]}
    close_clients()
    return out
