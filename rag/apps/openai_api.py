"""The assistant as an OpenAI-compatible model: `GET /v1/models`, `POST /v1/chat/completions`.

Mounted by `rag.apps.api.create_app`, so `rag serve` serves both APIs with the same guard (body limit
413, API key as `Authorization: Bearer KEY`, which every OpenAI client sends), the same deadline
(504) and in-flight cap (503), and the same event stream (`Assistant.ask`): nothing here answers,
it only translates. Any OpenAI client (Open WebUI, LobeChat, Cherry Studio, the `openai` SDK)
can use a knowledge base as a model.

- Models: one per knowledge base with an index, id `rag-zh/<kb>`; the bare KB name is accepted
  too. Any other id → 404 `model_not_found`.
- Messages: the last message must be the user's question; earlier user/assistant messages are
  the conversation (the assistant condenses a follow-up with them, as in /ask and the chat; the
  last `history_turns` exchanges are used). System/developer/tool messages are ignored: the
  assistant's instructions are fixed, a client's system prompt does not change them. Content is
  a string or text parts; image or audio parts are a 400.
- The answer (`message.content`) is the checked answer with 【n】 markers, as /ask gives it; a
  refusal is a normal answer carrying the refusal text. The citations (the /ask citation
  objects, plus `supported`) are in the extra field `citations` — on the choice's message, at
  the top level, and in the final stream chunk — and `rag` holds refused, grounded,
  refusal_reason, standalone_question, claims and rejected_citations.
- Streaming: `data: {chunk}` lines (`chat.completion.chunk`) and `data: [DONE]`. The checked
  answer is only known after the citation check, so while the model writes, its progress (stage
  messages, then the unchecked draft) streams as `delta.reasoning_content` — the field Open WebUI,
  LobeChat and Cherry Studio show as a collapsible "thinking" block and other clients ignore —
  and the checked answer follows as `delta.content`, sentence by sentence, then a last chunk
  with `finish_reason: "stop"`, `citations` and `rag`. A draft is never sent as content: a client
  that shows `content` shows only checked text. An error after the stream started is one
  `data: {"error": {...}}` line (the `openai` SDK raises it as APIError), without `[DONE]`.
- Errors: OpenAI's shape `{"error": {"message", "type", "param", "code"}}` for everything under
  /v1/ (rag.apps.serving.openai_error), one line, Chinese when Accept-Language prefers zh.

Compromises: sampling parameters (temperature, max_tokens, stop, tools, …) are accepted and
ignored — the server's configuration decides, since the citation check is tuned for it; `n` must
be 1; `usage` is not reported (the assistant does not count the tokens of every backend).
Extra request fields `k` and `mode` (retrieval) pass through, e.g. the SDK's `extra_body`.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Annotated, Any, Callable, Iterator, Literal

from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from rag.answer.edges import QuestionError, answer_to_json
from rag.config import RETRIEVE_MODES, Config
from rag.errors import ConfigError, RagError, in_chinese
from rag.limits import LIMITS, LimitError, client_language, scrub_paths, valid_kb_name
from rag.apps.serving import error_payload, openai_error
from rag.types import Answer, Final, Status, Token

MODEL_PREFIX = "rag-zh/"
MAX_MESSAGES = 200  # a long chat window; only the last `history_turns` exchanges are read
OWNER = "rag-zh"


class TextPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str = Field(..., max_length=40)
    text: str | None = Field(None, max_length=LIMITS.turn_chars)


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore")  # name, tool_calls, …
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: Annotated[str, Field(max_length=LIMITS.turn_chars)] | list[TextPart] | None = None


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")  # temperature, max_tokens, stop, user, tools: the server decides
    model: str = Field(..., min_length=1, max_length=200, examples=["rag-zh/seeds"])
    messages: list[Message] = Field(..., min_length=1, max_length=MAX_MESSAGES)
    stream: StrictBool = False
    n: int | None = Field(None, ge=1, le=1, description="one answer per request")
    k: int | None = Field(None, ge=1, le=LIMITS.k_max, strict=True, description="rag-zh: passages retrieved")
    mode: Literal[RETRIEVE_MODES] | None = Field(None, description="rag-zh: retrieval mode")  # type: ignore[valid-type]


def kb_of_model(model: str) -> str | None:
    """The knowledge base a model id names (`rag-zh/<kb>` or `<kb>`), None when it cannot be one.

    >>> kb_of_model("rag-zh/seeds"), kb_of_model("seeds"), kb_of_model("rag-zh/../etc")
    ('seeds', 'seeds', None)
    """
    name = model.strip()
    name = name[len(MODEL_PREFIX):] if name.startswith(MODEL_PREFIX) else name
    return name if valid_kb_name(name) else None


def _text(m: Message) -> str:
    if m.content is None or isinstance(m.content, str):
        return m.content or ""
    other = [p.type for p in m.content if p.type != "text"]
    if other:
        raise QuestionError(f"only text content is supported (got a {other[0]!r} part)")
    text = "".join(p.text or "" for p in m.content)
    if len(text) > LIMITS.turn_chars:
        raise QuestionError(f"a message is longer than {LIMITS.turn_chars} characters")
    return text


def split_messages(messages: list[Message], history_turns: int = LIMITS.history_turns) -> tuple[str, list[dict[str, str]]]:
    """(the question, the conversation before it as {role, content} messages: the last
    `history_turns` exchanges). System and tool messages are left out.

    >>> q, h = split_messages([Message(role="system", content="你是猫"), Message(role="user", content="问"),
    ...                        Message(role="assistant", content="答"), Message(role="user", content="再问")])
    >>> q, h
    ('再问', [{'role': 'user', 'content': '问'}, {'role': 'assistant', 'content': '答'}])
    """
    turns = [{"role": m.role, "content": _text(m)} for m in messages if m.role in ("user", "assistant")]
    if not turns or turns[-1]["role"] != "user":
        raise QuestionError("the last message must be the user's question")
    return turns[-1]["content"], turns[:-1][-2 * history_turns:]


def citations_and_extension(answer: Answer) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(the shown citations, each with `supported`: the /ask citation objects; the `rag` field)."""
    j = answer_to_json(answer)
    cites = [{**c, "supported": True} for c in j["citations"]]
    rag = {k: j[k] for k in ("refused", "grounded", "refusal_reason", "standalone_question", "claims", "model")}
    rag["rejected_citations"] = [{**c, "supported": False} for c in j["rejected_citations"]]
    return cites, rag


def completion(answer: Answer, model: str, cid: str, created: int) -> dict[str, Any]:
    """The `chat.completion` object of a finished answer."""
    cites, rag = citations_and_extension(answer)
    message = {"role": "assistant", "content": answer.text, "citations": cites}
    return {"id": cid, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}],
            "citations": cites, "rag": rag}


def chunk(cid: str, created: int, model: str, delta: dict[str, Any], finish: str | None = None,
          **extra: Any) -> str:
    """One `chat.completion.chunk` as an SSE line.

    >>> chunk("c1", 0, "rag-zh/seeds", {"content": "答"})[:60]
    'data: {"id": "c1", "object": "chat.completion.chunk", "creat'
    """
    body = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}], **extra}
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


def add_openai_routes(app: FastAPI, cfg: Config, *, assistant: Callable[[str], Any], job: Callable[..., Any]) -> None:
    """Mount /v1/models and /v1/chat/completions. `assistant(kb)` and `job(produce)` are
    rag.apps.api's: the cached Assistant of a KB (LimitError 404 when it has no index) and the
    bounded worker (deadline, in-flight cap)."""

    def card(name: str) -> dict[str, Any]:
        try:
            created = int(cfg.paths.kb_dir(name).stat().st_mtime)
        except OSError:
            created = 0
        return {"id": MODEL_PREFIX + name, "object": "model", "created": created, "owned_by": OWNER}

    def kbs() -> list[str]:
        from rag.index.kb import list_kbs

        return list_kbs(cfg)

    def missing(model: str) -> LimitError:
        return LimitError("model_missing", 404, model=model[:80])

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [card(n) for n in kbs()]}

    @app.get("/v1/models/{model:path}")
    async def model(model: str) -> dict[str, Any]:
        name = kb_of_model(model)
        if name is None or name not in kbs():
            raise missing(model)
        return card(name)

    @app.post("/v1/chat/completions")
    async def chat_completions(req: ChatCompletionRequest, request: Request):
        name = kb_of_model(req.model)
        if name is None:
            raise missing(req.model)
        question, history = split_messages(req.messages)

        def produce() -> Iterator[Any]:
            try:
                a = assistant(name)
            except LimitError as e:
                raise (missing(req.model) if e.key == "kb_missing" else e) from None
            events = a.ask(question, history, k=req.k, mode=req.mode)  # checks the question first
            yield "started"
            yield from events

        items = job(produce).items()
        await items.__anext__()  # the request's own errors, while a status can still be sent
        cid, created, model_id = f"chatcmpl-{uuid.uuid4().hex}", int(time.time()), MODEL_PREFIX + name
        if not req.stream:
            final = None
            async for ev in items:
                if isinstance(ev, Final):
                    final = ev.answer
            if final is None:  # Assistant.ask always ends with Final; a broken one is a server error
                raise RagError("the answer ended without a final result")
            return completion(final, model_id, cid, created)
        lang = client_language(request.headers.get("accept-language"))
        return StreamingResponse(_stream(items, lang, cid, created, model_id), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def _stream(items: Any, lang: str, cid: str, created: int, model: str) -> Any:
    """The SSE text of one answer (see the module doc); errors in-band, in OpenAI's shape."""
    from rag.cite.review import pieces

    def error(status: int, key: str, kind: str, **fields: Any) -> str:
        return f"data: {json.dumps(openai_error(error_payload(key, lang, kind, **fields), status), ensure_ascii=False)}\n\n"

    yield chunk(cid, created, model, {"role": "assistant", "content": ""})
    drafting = False
    try:
        async for ev in items:
            if isinstance(ev, Status):
                yield chunk(cid, created, model, {"reasoning_content": ("\n" if drafting else "") + f"{ev.message}\n"})
                drafting = False
            elif isinstance(ev, Token):
                drafting = True
                yield chunk(cid, created, model, {"reasoning_content": ev.text})
            elif isinstance(ev, Final):
                for piece in pieces(ev.answer.text) or [ev.answer.text]:
                    yield chunk(cid, created, model, {"content": piece})
                cites, rag = citations_and_extension(ev.answer)
                yield chunk(cid, created, model, {}, "stop", citations=cites, rag=rag)
                yield "data: [DONE]\n\n"
                return
        yield error(500, "error", "InternalError", detail="the answer ended without a final result")
    except LimitError as e:
        yield error(e.status, e.key, "DeadlineExceeded" if e.key == "deadline" else "LimitError", **e.fields)
    except RagError as e:  # a bad request, or the model failed while answering (a server's error)
        status = 400 if isinstance(e, (QuestionError, ConfigError)) else 503
        yield error(status, "error", type(e).__name__, detail=scrub_paths(in_chinese(e) if lang == "zh" else str(e)))
    except Exception as e:  # noqa: BLE001 - reported in-band, logged by rag.apps.api's logger
        import logging

        logging.getLogger("rag.apps.api").exception("error while streaming an OpenAI-style answer")
        yield error(500, "internal", "InternalError", kind=type(e).__name__)
    finally:
        await items.aclose()
