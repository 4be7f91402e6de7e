"""`rag chat`: start the web chat (Gradio) on a knowledge base.

On the first start the default knowledge base ("seeds") does not exist yet: it is indexed from
`cfg.paths.seeds_dir` with progress printed, so `rag chat` on a fresh clone ends with a page
that answers about the seed documents. Another missing KB name is created empty (upload files
in the Documents tab). Binds 127.0.0.1 unless `--host` says otherwise; a public bind without
`--auth` is allowed but warned about.
"""

from __future__ import annotations

import argparse
import sys

from rag.apps.commands import add_common, resolve_config


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "chat",
        help="start the web chat (indexes the seed documents on first start)",
        description="Start the web chat. Open the printed URL in a browser.",
    )
    add_common(p)
    p.add_argument("--host", help="address to bind (default 127.0.0.1; 0.0.0.0 = every interface)")
    p.add_argument("--port", type=int, help="port (default 7860)")
    p.add_argument("--llm", choices=["local", "openai", "extractive", "fake"], help="default LLM backend of new sessions")
    p.add_argument("--model", help="default model name (local: qwen2.5-1.5b | qwen2.5-0.5b; openai: the served model)")
    p.add_argument("--auth", metavar="USER:PASS", help="require a login (recommended with --host 0.0.0.0)")
    p.add_argument("--no-index", action="store_true", help="do not index the seeds when the KB is missing")
    p.set_defaults(func=run)


def ensure_kb(cfg, *, index_seeds: bool = True, out=sys.stderr) -> str:
    """Make sure the configured KB exists: the seeds KB is indexed from cfg.paths.seeds_dir,
    any other missing name is created empty. Returns a one-line description."""
    from rag.index.kb import KnowledgeBase, list_kbs

    name = cfg.paths.kb
    if name in list_kbs(cfg):
        kb = KnowledgeBase.open(name, cfg)
        return f"knowledge base '{name}': {len(kb.documents())} documents, {len(kb)} chunks"
    if name == "seeds" and index_seeds:
        seeds = cfg.paths.seeds()  # a ConfigError naming paths.seeds_dir / RAG_SEEDS_DIR when there is none
        files = sorted(p for p in seeds.rglob("*") if p.is_file())
        print(f"first start: indexing {len(files)} seed files from {seeds} into knowledge base '{name}'…", file=out, flush=True)
        kb = KnowledgeBase.open(name, cfg, create=True)
        rep = kb.add_paths([seeds], progress=True)
        for f in rep.failures:
            print(f"  skipped {getattr(f, 'path', f)}: {getattr(f, 'error', '')}", file=out)
        print(
            f"indexed {len(rep.added) + len(rep.updated)} documents, {rep.n_chunks} chunks in {rep.seconds:.1f} s",
            file=out,
            flush=True,
        )
        return f"knowledge base '{name}': {rep.n_chunks} chunks"
    KnowledgeBase.open(name, cfg, create=True)
    return f"knowledge base '{name}' is new and empty: upload files in the 文档 Documents tab"


def run(args: argparse.Namespace) -> int:
    cfg = resolve_config(
        args,
        ui={"host": args.host, "port": args.port, "auth": args.auth},
        llm={"backend": args.llm, "model": args.model},
    )
    from ui.app import parse_auth, serve

    parse_auth(cfg.ui.auth)  # a malformed --auth fails before any indexing
    print(ensure_kb(cfg, index_seeds=not args.no_index), file=sys.stderr, flush=True)
    if cfg.ui.host not in ("127.0.0.1", "localhost", "::1") and not cfg.ui.auth:
        print(
            f"WARNING: binding {cfg.ui.host} without --auth: anyone who can reach this machine can read and "
            "change the knowledge bases. Add --auth USER:PASS.",
            file=sys.stderr,
            flush=True,
        )
    print(f"web chat: http://{'127.0.0.1' if cfg.ui.host in ('0.0.0.0', '::') else cfg.ui.host}:{cfg.ui.port}/", file=sys.stderr, flush=True)
    serve(cfg)
    return 0
