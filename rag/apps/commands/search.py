"""`rag search "问题" [-k 5] [--mode hybrid|dense|bm25] [--json]`: show what retrieval finds.

For each hit: rank, fused score, chunk id, document, title, section path, the span in the
original file, each retriever's rank and score, and the text. `--json` prints one object with
the hits (`Hit.to_dict()`) and the time taken.
"""

from __future__ import annotations

import argparse
import json
import time

from rag.apps.commands import add_common, resolve_config
from rag.config import RETRIEVE_MODES


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "search",
        help="search a knowledge base (hybrid, dense or BM25) and show the passages",
        description="Retrieve passages for a question; shows per-retriever ranks and scores.",
    )
    p.add_argument("query", metavar="QUESTION", help="the question (either Chinese script, or English)")
    p.add_argument("-k", type=int, default=None, help="number of hits (default from config)")
    p.add_argument("--mode", choices=RETRIEVE_MODES, default=None, help="retriever (default: hybrid)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--full", action="store_true", help="show whole passages (default: first 300 characters)")
    add_common(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rag.errors import ConfigError
    from rag.index.kb import KnowledgeBase

    if args.k is not None and args.k <= 0:
        raise ConfigError("-k must be a positive number")
    from rag.limits import LIMITS

    # the same rules as `rag ask` and the API: an empty or oversized query is one line, not 0 hits
    if not args.query.strip():
        raise ConfigError('the query is empty: type what to search for, e.g. rag search "创先争优活动的主题"')
    if len(args.query) > LIMITS.question_chars:
        raise ConfigError(f"the query is {len(args.query)} characters long; the limit is {LIMITS.question_chars}")
    cfg = resolve_config(args, retrieve={"k": args.k, "mode": args.mode})
    kb = KnowledgeBase.open(cfg.paths.kb, cfg)
    t0 = time.perf_counter()
    hits = kb.search(args.query, k=cfg.retrieve.k, mode=cfg.retrieve.mode)
    dt = time.perf_counter() - t0
    if args.json:
        out = {"query": args.query, "kb": kb.name, "mode": cfg.retrieve.mode, "seconds": round(dt, 4),
               "hits": [h.to_dict() for h in hits]}
        for h in out["hits"]:
            h.get("metadata", {}).pop("offset_runs", None)  # internal offset map, not for people
        print(json.dumps(out, ensure_ascii=False, indent=1))
        return 0
    _show(kb, args.query, hits, cfg.retrieve.mode, dt, full=args.full)
    return 0


def _show(kb, query, hits, mode, dt, full=False) -> None:
    from rich.console import Console
    from rich.panel import Panel
    from rich.text import Text

    con = Console(highlight=False)
    con.print(f"[bold]{query}[/]  ·  {mode}  ·  knowledge base '{kb.name}'  ·  {len(hits)} hit(s) in {dt * 1000:.0f} ms")
    if not hits:
        con.print("no passage matches; try other words, --mode dense, or check `rag index` has indexed your files.")
        return
    for h in hits:
        c = h.chunk
        head = Text()
        head.append(f"#{h.rank}  ", style="bold")
        head.append(c.chunk_id, style="bold cyan")
        head.append(f"  score {h.score:.4f}\n")
        per = "   ".join(
            f"{name}: rank {h.ranks[name] if name in h.ranks else '–'}, score {h.scores[name]:.4f}"
            for name in ("dense", "bm25") if name in h.scores
        )
        if per:
            head.append(per + "\n", style="magenta")
        head.append(f"{c.title or c.doc_id}", style="bold")
        if c.section:
            head.append("  › " + " › ".join(c.section), style="yellow")
        head.append(f"\n{c.source or c.doc_id}  [{c.start}:{c.end}]", style="dim")
        body = c.text if full or len(c.text) <= 300 else c.text[:300] + " …"
        con.print(head)
        con.print(Panel(Text(body), expand=True, border_style="dim"))
