"""`rag index [PATH…] [--kb NAME] [--sync] [--rebuild]`: build or update a knowledge base.

Incremental by default: new and changed files are chunked and embedded, unchanged ones are kept
as they are. `--sync` also removes documents whose files are gone; `--rebuild` re-indexes from
scratch (e.g. after changing the embedding model or chunk size; the old index stays usable until
the new one is complete) and reads nothing of the old index, so it also recovers a damaged one.
A damaged index is detected by the incremental run too (sizes and checksums, rag.index.verify):
it builds on the previous undamaged version, or from the given files, and says what it found.
Without PATH, the seed corpus (cfg.paths.seeds_dir) is indexed.
Prints a summary: added / updated / removed / unchanged documents, chunks, embedded chunks,
failures with their reasons, time. Exit code 0, or 1 if some files failed.
"""

from __future__ import annotations

import argparse
import json
import sys

from rag.apps.commands import add_common, resolve_config


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "index",
        help="build or update a knowledge base from files/folders (incremental)",
        description="Index files and folders (.txt .md .html .docx .pdf) into a knowledge base: "
        "FAISS (dense) + BM25, atomic and incremental.",
    )
    p.add_argument("paths", nargs="*", metavar="PATH", help="files or folders (default: the seed corpus)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--sync", action="store_true", help="also remove documents whose files are no longer in PATH")
    g.add_argument("--rebuild", action="store_true", help="re-index everything from scratch (new model / chunker)")
    p.add_argument("--delete", metavar="DOC_ID", action="append", help="remove a document by id (repeatable)")
    p.add_argument("--model", metavar="NAME", help="embedding model (default from config)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_common(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rag.index.kb import IndexReport, KnowledgeBase

    cfg = resolve_config(args, embed={"model": args.model})
    paths = args.paths or ([] if args.delete else [cfg.paths.seeds()])
    # --rebuild opens nothing of the old index: it must work whatever state the folder is in
    kb = KnowledgeBase.open(cfg.paths.kb, cfg, create=True, check_model_=not args.rebuild,
                           load=not args.rebuild or bool(args.delete))
    progress = not args.no_progress and not args.json and sys.stderr.isatty()
    report = IndexReport()
    for doc_id in args.delete or []:
        r = kb.delete_document(doc_id)
        report.removed += r.removed
        report.n_chunks, report.seconds, report.version = r.n_chunks, report.seconds + r.seconds, r.version
    if paths:
        if not args.json:
            print(f"indexing {', '.join(map(str, paths))} into knowledge base '{kb.name}' ({kb.path})", file=sys.stderr)
        if args.rebuild:
            r = kb.rebuild(paths, progress=progress)
        elif args.sync:
            r = kb.sync(paths, progress=progress)
        else:
            r = kb.add_paths(paths, progress=progress)
        r.removed = report.removed + r.removed
        r.seconds += report.seconds
        report = r
    if args.json:
        print(json.dumps({"kb": kb.name, "path": str(kb.path), **report.to_dict()}, ensure_ascii=False, indent=1))
    else:
        _print_summary(kb, report)
    return 1 if report.failures else 0


def _print_summary(kb, r) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console(highlight=False)
    t = Table(title=f"knowledge base '{kb.name}'", show_header=False, box=None, pad_edge=False)
    t.add_column(style="bold")
    t.add_column()

    def names(xs):
        return f"{len(xs)}" + (f"  ({', '.join(xs[:6])}{' …' if len(xs) > 6 else ''})" if xs else "")

    t.add_row("added", names(r.added))
    t.add_row("updated", names(r.updated))
    t.add_row("removed", names(r.removed))
    t.add_row("unchanged", str(len(r.unchanged)))
    t.add_row("chunks", f"{r.n_chunks} in the index; {r.embedded} embedded now, {r.reused_vectors} vectors reused")
    t.add_row("documents", str(len(kb.documents())))
    t.add_row("time", f"{r.seconds:.1f} s")
    t.add_row("index", str(kb.version.path if kb.version else kb.path))
    con.print(t)
    from rich.markup import escape

    for line in getattr(r, "repaired", []):
        con.print(f"[bold yellow]damaged index found and rebuilt around:[/] {escape(line)}")
    if r.failures:
        con.print(f"[bold red]{len(r.failures)} file(s) failed[/] (their previous version, if any, is kept):")
        for f in r.failures:
            con.print(f"  [red]✗[/] {getattr(f, 'path', f)}: {getattr(f, 'error', '')}")
    if not r.changed and not r.failures:
        con.print("nothing changed.")
