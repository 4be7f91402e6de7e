"""REST API (FastAPI; OpenAPI schema at /docs and /openapi.json).

    POST /ask        {question, history?, llm?, k?, mode?, stream?, kb?}
                     stream=false → the JSON of `rag ask --json`;
                     stream=true  → Server-Sent Events: `status`, `evidence`, `token`…, `final`
                     (the same typed events Assistant.ask yields), or `error`.
    POST /search     {query, k?, mode?, kb?} → ranked hits
    GET  /documents  ?kb= → the documents of a knowledge base
    GET  /health     → status, version, knowledge bases, default backend (never needs the key)
    GET  /v1/models, POST /v1/chat/completions → the OpenAI-compatible API (rag.apps.openai_api:
                     one model per knowledge base; errors there in OpenAI's shape)

Robustness (issue 11), all before any work starts:
- Limits (`rag.limits.LIMITS`): the body is read by an ASGI guard (`rag.apps.serving.Guard`) that answers 413 above
  `body_bytes` (declared or counted) before anything parses it; lengths of the question, of
  each history turn, the number of turns, `k` and KB names are in the pydantic schema (so the
  OpenAPI document states them); KB names go through `rag.limits.check_kb_name`.
- A deadline per request: the work runs in a daemon thread (`rag.apps.serving.Job`) that feeds events to the event
  loop; the handler waits at most until the deadline (504, or an `error` event when streaming),
  then tells the thread to stop at its next event. A cancelled request (client gone, SIGTERM)
  stops it the same way. Daemon threads never hold up the process when the server exits.
  At most `max_inflight` such threads run; more requests get 503.
- Errors: every response that is not a success is one-line JSON {detail, error}; `detail` in
  Chinese when Accept-Language prefers zh; no stack trace, no server path (an unknown KB says
  its name only; other messages go through `scrub_paths`); OSError → 503 with its errno name.
- `api_key`: Bearer token required for everything but /health (constant-time comparison).

Compromise: a thread cannot be killed, so work past its deadline runs to its next event (a
retrieval, one token); the tokenizers it calls are bounded by the input limits, so that is short.
Assistants (and so knowledge bases and models) are opened once per knowledge base and reused,
through the one cache the web chat uses too (`rag.apps.service.AssistantCache`: rebuilt over the same
KB when its index version changes).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
from typing import Annotated, Any, Callable, Iterator, Literal

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, BeforeValidator, Field, StrictBool
from starlette.exceptions import HTTPException as StarletteHTTPException

from rag import __version__
from rag.answer.assistant import Assistant, QuestionError, answer_to_json
from rag.config import Config, RETRIEVE_MODES, load_config
from rag.errors import ConfigError, IndexMissing, ModelMismatch, ModelNotInstalled, RagError, in_chinese
from rag.limits import LIMITS, Limits, LimitError, check_kb_name, client_language, scrub_paths
from rag.apps.serving import OPENAI_PREFIX, Guard, Job, error_payload, shaped
from rag.apps.service import AssistantCache
from rag.types import Evidence, Final, Status, Token

log = logging.getLogger(__name__)

Backend = Literal["local", "openai", "extractive", "fake"]
Mode = Literal[RETRIEVE_MODES]  # the one list (rag.config); Literal[tuple] is Literal of its items
Turn = Annotated[str, Field(max_length=LIMITS.turn_chars)]
# The name pattern is stated in the schema for clients, and checked by rag.limits.check_kb_name (400,
# as before), not by pydantic; likewise "a question has a non-blank character" (400 "empty").
KB_PATTERN = r"^(\w[\w.\-]*)?$"  # "" = the default knowledge base
KbName = Annotated[str | None, Field(max_length=LIMITS.kb_name_chars, json_schema_extra={"pattern": KB_PATTERN},
                                     description="knowledge base name; default from the configuration")]
_NONBLANK = {"pattern": r"\S"}


def _json_int(v: Any) -> int:
    """A JSON Schema integer: an int or an integral float, never a bool or a numeric string."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (isinstance(v, float) and not v.is_integer()):
        raise ValueError("Input should be a valid integer")
    return int(v)


K = Annotated[int, Field(ge=1, le=LIMITS.k_max), BeforeValidator(_json_int)]


class ChatMessage(BaseModel):
    role: Literal["user", "assistant"]
    content: Turn


class AskRequest(BaseModel):
    question: str = Field(..., min_length=1, max_length=LIMITS.question_chars, examples=["安达市委实施了哪些措施？"],
                          json_schema_extra=_NONBLANK)
    history: list[tuple[Turn, Turn] | ChatMessage] = Field(
        default_factory=list, max_length=LIMITS.history_turns,
        description="earlier turns: [question, answer] pairs or {role, content} messages",
    )
    llm: Backend | None = Field(None, description="backend; default from the server's configuration")
    # as JSON Schema says: `true` is no k (49.0 is) and `0` no boolean — not pydantic's coercions
    k: K | None = None
    mode: Mode | None = None
    stream: StrictBool = False
    kb: KbName = None


class SearchRequest(BaseModel):
    query: str = Field(..., min_length=1, max_length=LIMITS.question_chars, json_schema_extra=_NONBLANK)
    k: K | None = None
    mode: Mode | None = None
    kb: KbName = None


class ErrorBody(BaseModel):
    detail: str = Field(..., description="one line, in Chinese when Accept-Language prefers zh")
    error: str = Field(..., description="a stable name: ValidationError, IndexMissing, PayloadTooLarge, …")


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The error responses a route can give, for the OpenAPI document (clients and fuzzers)."""
    what = {400: "bad request", 401: "missing or wrong API key", 404: "unknown knowledge base", 408: "body too slow",
            413: "body too large", 422: "invalid request", 503: "busy, model missing or storage error",
            504: "deadline exceeded"}
    return {c: {"model": ErrorBody, "description": what[c]} for c in codes}


_ASK_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "the answer (JSON), or Server-Sent Events when stream=true",
          "content": {"text/event-stream": {}}},
    **_errors(400, 401, 404, 408, 413, 422, 503, 504),
}


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


# ------------------------------------------------------------------ the app


def create_app(cfg: Config | None = None, assistant_factory: Callable[[str], Assistant] | None = None, *,
               limits: Limits = LIMITS, api_key: str | None = None) -> FastAPI:
    """The FastAPI app. `assistant_factory(kb_name)` builds an Assistant (tests inject one with
    a stand-in KB and a fake model); by default `Assistant.open(kb_name, cfg)`. `limits` sets the
    body size, deadline and concurrency (the schema's lengths are LIMITS'); `api_key` requires
    `Authorization: Bearer KEY` everywhere but /health."""
    cfg = cfg or load_config()
    if assistant_factory is not None:
        assistants = AssistantCache(lambda name, _variant, _previous: assistant_factory(name))
    else:  # a rebuild after a new index version keeps the opened KB (and its encoder)
        assistants = AssistantCache(lambda name, _variant, previous: Assistant.open(
            previous.kb if previous is not None else name, cfg))
    slots = threading.BoundedSemaphore(limits.max_inflight)

    def assistant(kb: str | None) -> Assistant:
        name = check_kb_name(kb or cfg.paths.kb, limits)
        try:
            return assistants.get(name)
        except IndexMissing:  # its message names the server's folder: say the name only
            raise LimitError("kb_missing", 404, name=name) from None

    def job(produce: Callable[[], Iterator[Any]]) -> Job:
        if not slots.acquire(blocking=False):
            raise LimitError("busy", 503, limit=limits.max_inflight)
        return Job(produce, limits.deadline_seconds, slots)

    app = FastAPI(title="rag-zh", version=__version__,
                  description="Question answering with checked citations over Chinese documents.")
    _add_error_handlers(app)
    _add_routes(app, cfg, assistant=assistant, job=job)

    from rag.apps.openai_api import add_openai_routes

    add_openai_routes(app, cfg, assistant=assistant, job=job)  # GET /v1/models, POST /v1/chat/completions
    # outermost of the app's own layers: nothing reads a body or routes before the guard
    app.add_middleware(Guard, limits=limits, api_key=api_key)
    return app


def _add_routes(app: FastAPI, cfg: Config, *, assistant: Callable[[str | None], Assistant],
                job: Callable[[Callable[[], Iterator[Any]]], Job]) -> None:
    """The REST routes (/health, /ask, /search, /documents). `assistant(kb)` opens a knowledge
    base's Assistant (404 for an unknown one); `job(produce)` runs work in a bounded thread with
    the request's deadline (503 when all slots are taken)."""

    async def one(compute: Callable[[], Any]) -> Any:
        """`compute()` in a bounded job; its result."""
        items = job(lambda: iter([compute()])).items()
        try:
            return await items.__anext__()
        finally:
            await items.aclose()

    @app.get("/health")
    async def health() -> dict[str, Any]:
        try:
            from rag.index.kb import list_kbs

            kbs = list_kbs(cfg)
        except Exception:  # health must answer even when the KB module is broken
            kbs = []
        return {"status": "ok", "version": __version__, "default_kb": cfg.paths.kb, "kbs": kbs, "llm": cfg.llm.backend}

    @app.post("/ask", responses=_ASK_RESPONSES)
    async def ask(req: AskRequest, request: Request):
        history = [h.model_dump() if isinstance(h, ChatMessage) else tuple(h) for h in req.history]

        def produce() -> Iterator[Any]:
            # validation (empty question, backend, mode) happens here, before any streaming starts
            events = assistant(req.kb).ask(req.question, history, llm_backend=req.llm, k=req.k, mode=req.mode)
            yield "started"
            yield from events

        items = job(produce).items()
        await items.__anext__()  # raises the request's own errors while a status can still be sent
        if not req.stream:
            final = None
            async for ev in items:
                if isinstance(ev, Final):
                    final = ev.answer
            return answer_to_json(final)
        lang = client_language(request.headers.get("accept-language"))
        return StreamingResponse(_stream(items, lang), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    @app.post("/search", responses=_errors(400, 401, 404, 408, 413, 422, 503, 504))
    async def search(req: SearchRequest) -> dict[str, Any]:
        q = req.query.strip()
        if not q:
            raise QuestionError("the query is empty")
        hits = await one(lambda: assistant(req.kb).kb.search(q, k=req.k or cfg.retrieve.k, mode=req.mode))
        return {"query": q, "hits": [h.to_dict() for h in hits]}

    @app.get("/documents", responses=_errors(400, 401, 404, 422, 503, 504))
    async def documents(kb: str | None = Query(None, max_length=LIMITS.kb_name_chars, description="knowledge base name",
                                               json_schema_extra={"pattern": KB_PATTERN})) -> dict[str, Any]:
        docs = await one(lambda: list(assistant(kb).kb.documents()))
        out = [dataclasses.asdict(d) if dataclasses.is_dataclass(d) else dict(d) for d in docs]
        return {"kb": kb or cfg.paths.kb, "documents": out}


async def _stream(items, lang: str) -> Any:
    """SSE text of the job's events; an error after the status line is sent is reported in-band."""
    try:
        async for ev in items:
            yield event_to_sse(ev)
    except LimitError as e:
        kind = "DeadlineExceeded" if e.key == "deadline" else "LimitError"
        yield _sse("error", error_payload(e.key, lang, kind, **e.fields))
    except RagError as e:
        yield _sse("error", error_payload("error", lang, type(e).__name__,
                                          detail=scrub_paths(in_chinese(e) if lang == "zh" else str(e))))
    except Exception as e:
        log.exception("error while streaming an answer")
        yield _sse("error", error_payload("internal", lang, "InternalError", kind=type(e).__name__))


def _add_error_handlers(app: FastAPI) -> None:
    """One-line JSON for every failure, in the client's language, without paths or tracebacks."""

    def lang(request: Request) -> str:
        return client_language(request.headers.get("accept-language"))

    def reply(request: Request, status: int, payload: dict, headers: dict | None = None) -> JSONResponse:
        return JSONResponse(shaped(request.url.path, status, payload), status_code=status, headers=headers)

    @app.exception_handler(LimitError)
    async def _limit(request: Request, exc: LimitError):
        kind = {"deadline": "DeadlineExceeded", "busy": "Busy", "kb_missing": "IndexMissing",
                "model_missing": "ModelNotFound"}.get(exc.key, "LimitError")
        if exc.key == "kb_name":
            kind = "ConfigError"
        return reply(request, exc.status, error_payload(exc.key, lang(request), kind, **exc.fields))

    @app.exception_handler(RagError)
    async def _rag_error(request: Request, exc: RagError):
        key = ("model" if isinstance(exc, (ModelNotInstalled, ModelMismatch))
               else "invalid" if isinstance(exc, (QuestionError, ConfigError)) else "error")
        # the generic message has no Chinese frame of its own: the error's kind leads in Chinese
        detail = scrub_paths(in_chinese(exc) if key == "error" and lang(request) == "zh" else str(exc))
        return reply(request, _status_for(exc), error_payload(key, lang(request), type(exc).__name__, detail=detail))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        msgs = []
        for err in exc.errors():
            loc = ".".join(str(x) for x in err.get("loc", ()) if x != "body")
            msgs.append(f"{loc}: {err.get('msg', 'invalid')}" if loc else str(err.get("msg", "invalid")))
        detail = "; ".join(msgs) or "invalid request"
        status = 400 if request.url.path.startswith(OPENAI_PREFIX) else 422  # OpenAI says 400 for a bad request
        return reply(request, status, error_payload("invalid", lang(request), "ValidationError", detail=detail[:500]))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 404:
            payload = error_payload("not_found", lang(request), "NotFound")
        else:
            payload = error_payload("error", lang(request), "HTTPError", detail=str(exc.detail))
        return reply(request, exc.status_code, payload, getattr(exc, "headers", None))

    @app.exception_handler(OSError)
    async def _os_error(request: Request, exc: OSError):
        import errno

        log.error("OS error on %s: %s", request.url.path, exc)
        kind = errno.errorcode.get(exc.errno or 0, type(exc).__name__)
        return reply(request, 503, error_payload("storage", lang(request), "StorageError", kind=kind))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("unexpected error on %s", request.url.path)
        return reply(request, 500, error_payload("internal", lang(request), "InternalError", kind=type(exc).__name__))
