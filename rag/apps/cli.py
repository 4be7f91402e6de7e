"""The `rag` command: one console script, a subcommand per pipeline stage.

Each subcommand lives in `rag/apps/commands/<name>.py` and exposes `register(subparsers)`; heavy
imports (torch, faiss, gradio) stay inside the command's run function so `rag --help` is fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from rag import __version__
from rag.errors import RagError

# order is the order shown in --help
COMMANDS = ["models", "chunk", "index", "kb", "search", "ask", "report", "chat", "serve", "eval"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rag",
        description="Question answering with checked citations over Chinese documents.",
    )
    parser.add_argument("--version", action="version", version=f"rag {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug output")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"rag.apps.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing downloads at run time
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except RagError as e:
        print(f"rag {args.command}: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"rag {args.command}: interrupted", file=sys.stderr)
        return 130
    except OSError as e:
        # a full disk, a permission or a vanished file: one line naming what failed (the index
        # is published atomically, so the previous version is intact)
        what = f": {e.filename}" if getattr(e, "filename", None) else ""
        print(f"rag {args.command}: {e.strerror or e}{what}", file=sys.stderr)
        return 1
