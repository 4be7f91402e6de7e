"""REST API (FastAPI; OpenAPI schema at /docs and /openapi.json).

    POST /ask        {question, history?, llm?, k?, mode?, stream?, kb?}
                     stream=false → the JSON of `rag ask --json`;
                     stream=true  → Server-Sent Events: `status`, `evidence`, `token`…, `final`
                     (the same typed events Assistant.ask yields), or `error`.
    POST /search     {query, k?, mode?, kb?} → ranked hits
    GET  /documents  ?kb= → the documents of a knowledge base
    GET  /health     → status, version, knowledge bases, default backend

Bad requests get a 4xx with a readable `detail` (pydantic validation → 422; empty question,
unknown backend/mode → 400; unknown knowledge base → 404; model not installed → 503); an
unexpected error is a 500 with the exception type only — never a stack trace.

Assistants (and so knowledge bases and models) are opened once per knowledge base and reused.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
from typing import Any, Callable, Iterator, Literal

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from rag import __version__
from rag.answer import MAX_QUESTION_CHARS, Assistant, QuestionError, answer_to_json
from rag.config import Config, load_config
from rag.errors import ConfigError, IndexMissing, ModelMismatch, ModelNotInstalled, RagError
from rag.types import Evidence, Final, Status, Token

log = logging.getLogger(__name__)

Backend = Literal["local", "openai", "extractive", "fake"]
Mode = Literal["hybrid", "dense", "bm25"]


class ChatMessage(BaseModel):
    role: Literal["user", "assistant"]
    content: str


class AskRequest(BaseModel):
    question: str = Field(..., min_length=1, max_length=MAX_QUESTION_CHARS, examples=["安达市委实施了哪些措施？"])
    history: list[tuple[str, str] | ChatMessage] = Field(
        default_factory=list, description="earlier turns: [question, answer] pairs or {role, content} messages"
    )
    llm: Backend | None = Field(None, description="backend; default from the server's configuration")
    k: int | None = Field(None, ge=1, le=100)
    mode: Mode | None = None
    stream: bool = False
    kb: str | None = Field(None, description="knowledge base name; default from the configuration")


class SearchRequest(BaseModel):
    query: str = Field(..., min_length=1, max_length=MAX_QUESTION_CHARS)
    k: int | None = Field(None, ge=1, le=100)
    mode: Mode | None = None
    kb: str | None = None


def _status_for(e: RagError) -> int:
    if isinstance(e, IndexMissing):
        return 404
    if isinstance(e, (ModelNotInstalled, ModelMismatch)):
        return 503
    return 400  # QuestionError, ConfigError and other expected failures of the request


def _sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def event_to_sse(ev: Any) -> str:
    """One Assistant event as a Server-Sent Event."""
    if isinstance(ev, Token):
        return _sse("token", {"text": ev.text})
    if isinstance(ev, Status):
        return _sse("status", {"stage": ev.stage, "message": ev.message})
    if isinstance(ev, Evidence):
        return _sse("evidence", {"hits": [h.to_dict() for h in ev.hits]})
    if isinstance(ev, Final):
        return _sse("final", answer_to_json(ev.answer))
    raise TypeError(f"unknown event {type(ev).__name__}")


def create_app(cfg: Config | None = None, assistant_factory: Callable[[str], Assistant] | None = None) -> FastAPI:
    """The FastAPI app. `assistant_factory(kb_name)` builds an Assistant (tests inject one with
    a stand-in KB and a fake model); by default `Assistant.open(kb_name, cfg)`."""
    cfg = cfg or load_config()
    factory = assistant_factory or (lambda name: Assistant.open(name, cfg))
    cache: dict[str, Assistant] = {}
    lock = threading.Lock()

    def assistant(kb: str | None) -> Assistant:
        name = (kb or cfg.paths.kb).strip()
        if not name or "/" in name or "\\" in name or name.startswith("."):
            raise ConfigError(f"invalid knowledge base name {kb!r}")
        with lock:
            if name not in cache:
                cache[name] = factory(name)
            return cache[name]

    app = FastAPI(
        title="rag-zh",
        version=__version__,
        description="Question answering with checked citations over Chinese documents.",
    )

    @app.exception_handler(RagError)
    async def _rag_error(request: Request, exc: RagError):
        return JSONResponse({"detail": str(exc), "error": type(exc).__name__}, status_code=_status_for(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        msgs = []
        for err in exc.errors():
            loc = ".".join(str(x) for x in err.get("loc", ()) if x != "body")
            msgs.append(f"{loc}: {err.get('msg', 'invalid')}" if loc else str(err.get("msg", "invalid")))
        return JSONResponse({"detail": "; ".join(msgs) or "invalid request", "error": "ValidationError"}, status_code=422)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("unexpected error on %s", request.url.path)
        return JSONResponse({"detail": f"internal error ({type(exc).__name__})", "error": "InternalError"}, status_code=500)

    @app.get("/health")
    def health() -> dict[str, Any]:
        try:
            from rag.kb import list_kbs

            kbs = list_kbs(cfg)
        except Exception:  # health must answer even when the KB module is broken
            kbs = []
        return {"status": "ok", "version": __version__, "default_kb": cfg.paths.kb, "kbs": kbs, "llm": cfg.llm.backend}

    @app.post("/ask")
    def ask(req: AskRequest):
        a = assistant(req.kb)
        history = [h.model_dump() if isinstance(h, ChatMessage) else tuple(h) for h in req.history]
        # validation (empty question, backend, mode) happens here, before any streaming starts
        events = a.ask(req.question, history, llm_backend=req.llm, k=req.k, mode=req.mode)
        if not req.stream:
            final = None
            for ev in events:
                if isinstance(ev, Final):
                    final = ev.answer
            return answer_to_json(final)

        def gen() -> Iterator[str]:
            try:
                for ev in events:
                    yield event_to_sse(ev)
            except RagError as e:
                yield _sse("error", {"detail": str(e), "error": type(e).__name__})
            except Exception as e:  # the status line is already sent: report in-band
                log.exception("error while streaming an answer")
                yield _sse("error", {"detail": f"internal error ({type(e).__name__})", "error": "InternalError"})

        return StreamingResponse(gen(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    @app.post("/search")
    def search(req: SearchRequest) -> dict[str, Any]:
        q = req.query.strip()
        if not q:
            raise QuestionError("the query is empty")
        a = assistant(req.kb)
        hits = a.kb.search(q, k=req.k or cfg.retrieve.k, mode=req.mode)
        return {"query": q, "hits": [h.to_dict() for h in hits]}

    @app.get("/documents")
    def documents(kb: str | None = Query(None, description="knowledge base name")) -> dict[str, Any]:
        a = assistant(kb)
        docs = []
        for d in a.kb.documents():
            docs.append(dataclasses.asdict(d) if dataclasses.is_dataclass(d) else dict(d))
        return {"kb": kb or cfg.paths.kb, "documents": docs}

    return app
