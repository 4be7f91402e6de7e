"""`rag kb check [--kb NAME]` and `rag kb repair [PATH…] [--kb NAME]`: verify and repair a knowledge base.

`check` verifies every version folder completely — the size and sha256 of every file against its
manifest, then a full open (FAISS, BM25, chunk table) — and prints one line per version that is
sound and one line per problem. Read-only. Exit 0 if nothing is damaged, 1 if something is.

`repair` without PATH makes the newest undamaged version current again and removes the damaged
ones (nothing is re-embedded); with PATH it rebuilds the KB from those files, reading nothing of
the old index (the same as `rag index PATH --rebuild`). Exit 0 when the KB is sound afterwards.
"""

from __future__ import annotations

import argparse
import sys

from rag.apps.commands import add_common, resolve_config


def register(subparsers) -> None:
    p = subparsers.add_parser("kb", help="verify (check) or repair a knowledge base's index",
                              description="Verify or repair the index of a knowledge base.")
    sub = p.add_subparsers(dest="kb_command", metavar="ACTION")
    c = sub.add_parser("check", help="verify every file of every index version (sizes and checksums)")
    add_common(c)
    c.set_defaults(func=run_check)
    r = sub.add_parser("repair", help="make the newest undamaged version current, or rebuild from PATH")
    r.add_argument("paths", nargs="*", metavar="PATH", help="rebuild from these files/folders instead")
    add_common(r)
    r.set_defaults(func=run_repair)
    p.set_defaults(func=lambda args: (p.print_help(), 0)[1])


def _kb_dir(args):
    from rag.index.kb import resolve_kb_dir

    cfg = resolve_config(args)
    name, path = resolve_kb_dir(cfg.paths.kb, cfg)  # ConfigError (one line) for a bad name
    return cfg, name, path


def run_check(args: argparse.Namespace) -> int:
    from rag.errors import IndexMissing
    from rag.index.build import check_kb

    cfg, name, path = _kb_dir(args)
    if cfg.index.backend == "milvus":
        return _check_milvus(cfg, name)
    if not path.is_dir():
        raise IndexMissing(f"knowledge base '{name}' does not exist; run `rag index PATH --kb {name}`")
    ok, bad = check_kb(path)
    if not ok and not bad:
        raise IndexMissing(f"knowledge base '{name}' has no index; run `rag index PATH --kb {name}`")
    for line in ok:
        print(line)
    for line in bad:
        print(f"damaged: {line}")
    if bad:
        print(f"knowledge base '{name}': {len(bad)} problem(s); `rag kb repair --kb {name}` restores the newest "
              f"undamaged version, `rag kb repair PATH --kb {name}` rebuilds from the documents", file=sys.stderr)
    return 1 if bad else 0


def _check_milvus(cfg, name: str) -> int:
    """Milvus backend: the alias's collection and manifest open, and every row the manifest
    names is there (IndexDamaged, one line, otherwise)."""
    from rag.index.kb import KnowledgeBase

    kb = KnowledgeBase.open(name, cfg, check_model_=False)
    kb.version.preload()
    print(f"{name}/{kb.version.name} (current, Milvus {kb.uri if '@' not in kb.uri else '(remote)'}): ok, "
          f"{len(kb)} chunks, {len(kb.documents())} documents, every row present")
    return 0


def run_repair(args: argparse.Namespace) -> int:
    from rag.errors import IndexDamaged, RagError
    from rag.index.build import check_kb
    from rag.index.kb import KnowledgeBase

    cfg, name, path = _kb_dir(args)
    if args.paths:
        # reads nothing of the old index, so it works whatever state the folder is in
        kb = KnowledgeBase.open(cfg.paths.kb, cfg, create=True, check_model_=False, load=False)
        r = kb.rebuild(args.paths, progress=sys.stderr.isatty())
        print(f"knowledge base '{name}': rebuilt from {', '.join(args.paths)}: {len(r.added)} documents, "
              f"{r.n_chunks} chunks, version {r.version}")
        for f in r.failures:
            print(f"  skipped {getattr(f, 'path', f)}: {getattr(f, 'error', '')}", file=sys.stderr)
    else:
        _, bad = check_kb(path) if path.is_dir() else ([], [])
        if not bad:
            print(f"knowledge base '{name}': nothing to repair")
            return 0
        # load=False: repair() finds the version to restore itself (and says so in one line if none)
        kb = KnowledgeBase.open(cfg.paths.kb, cfg, create=True, check_model_=False, load=False)
        try:
            r = kb.repair()
        except IndexDamaged as e:
            raise RagError(f"no undamaged version of knowledge base '{name}' is left ({e.version}/{e.file} "
                           f"and any older one); rebuild it from its documents: `rag kb repair PATH --kb {name}`"
                           ) from None
        for line in bad:
            print(f"fixed: {line}")
        print(f"knowledge base '{name}': version {r.version} is current ({r.n_chunks} chunks, "
              f"{len(kb.documents())} documents)")
    _, bad = check_kb(path)
    for line in bad:
        print(f"still damaged: {line}", file=sys.stderr)
    return 1 if bad else 0
