"""`rag serve`: the REST API (FastAPI + uvicorn); OpenAPI docs at http://HOST:PORT/docs."""

from __future__ import annotations

import argparse

from rag.commands import add_common, resolve_config


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
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from rag.api import create_app

    cfg = resolve_config(args, llm={"backend": args.llm, "model": args.model})
    uvicorn.run(create_app(cfg), host=args.host, port=args.port, log_level="info")
    return 0
