"""`rag serve`: the REST API (FastAPI + uvicorn); OpenAPI docs at http://HOST:PORT/docs.

Access: `--api-key KEY` (or `RAG_API_KEY`) requires `Authorization: Bearer KEY` on everything
but /health. Binding to an address that is not loopback without a key is refused (exit 2, one
line on stderr) unless `--insecure` says the exposure is intended.

Stopping: on SIGTERM/SIGINT uvicorn stops accepting, waits at most `GRACE_SECONDS` for requests
in flight, then cancels them (an answer being streamed gets cancelled and its worker thread
stops at its next event; worker threads are daemons, so none keeps the process alive).
Compromise: a key given on the command line is visible in the process list; prefer the
environment variable on shared machines.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys

from rag.apps.commands import add_common, resolve_config

GRACE_SECONDS = 1  # well inside the 2 s a supervisor may wait after SIGTERM


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="run the REST API (POST /ask, POST /search, GET /documents, GET /health)",
        description="Serve the REST API. Interactive OpenAPI docs at /docs.",
    )
    add_common(p)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; 0.0.0.0 = every interface)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--llm", choices=["local", "openai", "extractive", "fake"], help="default answer backend")
    p.add_argument("--model", help="default model name")
    p.add_argument("--api-key", metavar="KEY", help="require 'Authorization: Bearer KEY' (default: $RAG_API_KEY)")
    p.add_argument("--insecure", action="store_true", help="allow a non-loopback address without an API key")
    p.add_argument("--deadline", type=float, metavar="SECONDS", help="longest a request may take (default 120)")
    p.set_defaults(func=run)


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1).

    >>> is_loopback("127.0.0.1"), is_loopback("localhost"), is_loopback("0.0.0.0"), is_loopback("::")
    (True, True, False, False)
    """
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to anything, so it is not loopback
        return False


def run(args: argparse.Namespace) -> int:
    cfg = resolve_config(args, llm={"backend": args.llm, "model": args.model}, serve={"api_key": args.api_key})
    api_key = cfg.serve.api_key or None
    if not is_loopback(args.host) and not api_key and not args.insecure:
        print(f"rag serve: refusing to serve {args.host} without an API key; "
              "give --api-key KEY (or RAG_API_KEY), bind 127.0.0.1, or pass --insecure", file=sys.stderr)
        return 2
    if args.deadline is not None and not args.deadline > 0:
        print("rag serve: --deadline must be a positive number of seconds", file=sys.stderr)
        return 2

    import dataclasses

    import uvicorn

    from rag.apps.api import create_app
    from rag.limits import LIMITS

    limits = LIMITS if args.deadline is None else dataclasses.replace(LIMITS, deadline_seconds=args.deadline)
    app = create_app(cfg, limits=limits, api_key=api_key)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info",
                timeout_graceful_shutdown=GRACE_SECONDS,
                # connections beyond this get 503 from uvicorn itself, before the app sees them
                limit_concurrency=4 * limits.max_inflight)
    return 0
