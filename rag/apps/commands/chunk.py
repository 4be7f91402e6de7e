"""`rag chunk PATH… [--json] [--max-tokens N]`: show how files are ingested and chunked.

Human-readable by default (one panel per chunk: id, section path, span, tokens, text), JSON lines
with --json (one `Chunk.to_dict()` per line, the offset map left out unless --offsets). Files
that cannot be read are reported on stderr; the others are still shown. Exit code 0 when at least
one document loaded, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys

from rag.apps.commands import add_common, resolve_config


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "chunk",
        help="show the chunks a file or folder gives (ingest + clean + chunk)",
        description="Ingest files/folders (.txt .md .html .docx .pdf) and print their chunks.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="files or folders")
    p.add_argument("--json", action="store_true", help="JSON lines, one chunk per line")
    p.add_argument("--max-tokens", type=int, default=None, metavar="N", help="chunk size limit in tokens (default from config)")
    p.add_argument("--min-tokens", type=int, default=None, metavar="N", help="merge fragments smaller than this")
    p.add_argument("--overlap", type=int, default=None, metavar="N", help="whole sentences repeated between chunks")
    p.add_argument("--offsets", action="store_true", help="with --json: keep the per-character offset map")
    p.add_argument("--stats", action="store_true", help="only a per-document summary (chunks, tokens)")
    add_common(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rag.chunk.sections import chunk_document
    from rag.ingest.load import IngestFailure, iter_documents

    cfg = resolve_config(
        args,
        chunk={"max_tokens": args.max_tokens, "min_tokens": args.min_tokens, "overlap_sentences": args.overlap},
    )
    console = None
    if not args.json:
        from rich.console import Console

        console = Console(highlight=False, soft_wrap=False)
    n_docs = n_fail = 0
    for item in iter_documents(args.paths):
        if isinstance(item, IngestFailure):
            n_fail += 1
            print(f"rag chunk: skipped {item.path}: {item.error}", file=sys.stderr)
            continue
        n_docs += 1
        chunks = chunk_document(item, cfg.chunk)
        if args.json:
            for c in chunks:
                d = c.to_dict()
                if not args.offsets:
                    d["metadata"].pop("offset_runs", None)
                sys.stdout.write(json.dumps(d, ensure_ascii=False) + "\n")
            continue
        _show(console, item, chunks, stats_only=args.stats)
    if console is not None:
        console.print(f"[bold]{n_docs}[/] document(s), [bold]{n_fail}[/] skipped")
    return 0 if n_docs else 1


def _show(console, doc, chunks, stats_only: bool = False) -> None:
    from rich.panel import Panel
    from rich.text import Text

    meta = doc.metadata
    toks = [c.metadata.get("tokens", 0) for c in chunks]
    head = Text()
    head.append(f"{doc.doc_id}", style="bold cyan")
    head.append(f"  {doc.title}\n", style="bold")
    info = [f"source={doc.source}", f"format={meta.get('format')}"]
    for k in ("encoding", "date", "source_name", "author", "editor"):
        if meta.get(k):
            info.append(f"{k}={meta[k]}")
    info.append(f"chars={len(doc.text)}→{len(doc.clean)}")
    if toks:
        info.append(f"chunks={len(chunks)} tokens min/mean/max={min(toks)}/{sum(toks) / len(toks):.0f}/{max(toks)}")
    else:
        info.append("chunks=0")
    head.append("  ".join(info), style="dim")
    console.rule()
    console.print(head)
    if stats_only:
        return
    for c in chunks:
        title = Text()
        title.append(c.chunk_id, style="bold green")
        title.append(f"  [{c.start}:{c.end}]  {c.metadata.get('tokens', '?')} tok", style="dim")
        sub = " › ".join(c.section) if c.section else "(no section)"
        body = Text()
        body.append(sub + "\n", style="yellow")
        body.append(c.text)
        console.print(Panel(body, title=title, title_align="left", expand=True))
