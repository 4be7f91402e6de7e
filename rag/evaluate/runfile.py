"""Run files in the open TREC format (`qid Q0 docid rank score tag`), read by trec_eval, ranx,
pyserini and BEIR's evaluators: every evaluation run writes one per configuration and retrieval
mode beside report.md, so another system's run can be compared on the same qrels (qrels/ of the
set) without this project's code.

Scores are the retriever's own (the fused score for hybrid); a row written before scores were
kept gets `n − rank + 1`, which preserves the order.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterable, Mapping


def trec_lines(rows: Iterable[Mapping[str, Any]], config: str, mode: str) -> list[str]:
    """The run of one configuration and mode, one line per retrieved chunk, in rank order.

    >>> rows = [{"config": "c", "qid": "q1", "retrieved": {"bm25": ["d#2", "d#0"]},
    ...          "retrieved_scores": {"bm25": [7.5, 3.25]}}]
    >>> trec_lines(rows, "c", "bm25")
    ['q1 Q0 d#2 1 7.5 c/bm25', 'q1 Q0 d#0 2 3.25 c/bm25']
    >>> trec_lines([{"config": "c", "qid": "q2", "retrieved": {"dense": ["a#1", "b#0"]}}], "c", "dense")
    ['q2 Q0 a#1 1 2 c/dense', 'q2 Q0 b#0 2 1 c/dense']
    """
    out: list[str] = []
    tag = f"{config}/{mode}".replace(" ", "_")
    for r in rows:
        if r.get("config") != config:
            continue
        ids = (r.get("retrieved") or {}).get(mode) or []
        scores = (r.get("retrieved_scores") or {}).get(mode) or [len(ids) - i for i in range(len(ids))]
        out.extend(f"{r['qid']} Q0 {cid} {i} {s:g} {tag}" for i, (cid, s) in enumerate(zip(ids, scores), 1))
    return out


def write_runs(out: Path, rows: Iterable[Mapping[str, Any]]) -> list[Path]:
    """`runs/<config>.<mode>.trec` in the report folder, one per configuration and mode."""
    rows = list(rows)
    pairs = dict.fromkeys((r.get("config"), m) for r in rows for m in (r.get("retrieved") or {}))
    written = []
    for config, mode in pairs:
        if not config:
            continue
        p = Path(out) / "runs" / f"{re.sub(r'[^0-9A-Za-z_.-]+', '_', config)}.{mode}.trec"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("\n".join(trec_lines(rows, config, mode)) + "\n", encoding="utf-8")
        written.append(p)
    return written
