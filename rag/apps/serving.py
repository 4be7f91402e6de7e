"""Bounded requests for the REST API (rag.apps.api): the ASGI guard and the worker jobs.

- `Guard` (outermost middleware): the API key (Bearer, constant-time comparison; /health is
  always open), then the body size: a body is read (at most `Limits.body_bytes`, within
  `Limits.body_seconds`) and replayed to the app, so nothing parses a body over the limit; the
  reply is 413 whether the size was declared or only counted (chunked transfer). Under /v1/ (the
  OpenAI-compatible routes) every error is in OpenAI's shape (`openai_error`).
- `Job`: a request's work in a daemon thread that hands its items to the event loop; the loop
  reads them with the request's deadline (`LimitError("deadline")`), and the thread closes its
  iterator at its next item once the reader is gone (deadline, client disconnected, SIGTERM).

Compromises: a Python thread cannot be killed, so work past its deadline runs on until its next
item (a retrieval step, one token) — the input limits keep every step short; a body a little over
the limit (up to 8×) is read and dropped so the client sees the 413 rather than a reset
connection, a larger one is answered at once and the connection closed.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import threading
from typing import Any, Callable, Iterator

from rag.limits import LIMITS, LimitError, Limits, client_language, message

log = logging.getLogger(__name__)


def _json_bytes(payload: dict) -> bytes:
    # errors="replace": a lone surrogate a client sent must not turn an error reply into a 500
    return json.dumps(payload, ensure_ascii=False).encode("utf-8", errors="replace")


def error_payload(key: str, lang: str, error: str, **fields: object) -> dict[str, str]:
    return {"detail": message(key, lang, **fields), "error": error}


# the OpenAI-compatible routes (rag.apps.openai_api) answer errors the way OpenAI clients parse them
OPENAI_PREFIX = "/v1/"
_OPENAI_CODES = {"Unauthorized": "invalid_api_key", "ModelNotFound": "model_not_found", "NotFound": "unknown_url"}


def _openai_type(status: int) -> str:
    if status == 401:
        return "authentication_error"
    if status == 404:
        return "not_found_error"
    if status in (408, 504):
        return "timeout_error"
    return "server_error" if status >= 500 else "invalid_request_error"


def openai_error(payload: dict[str, str], status: int) -> dict[str, dict[str, object]]:
    """Our {detail, error} payload in OpenAI's error shape.

    >>> openai_error({"detail": "too big", "error": "PayloadTooLarge"}, 413)
    {'error': {'message': 'too big', 'type': 'invalid_request_error', 'param': None, 'code': 'payload_too_large'}}
    """
    name = payload["error"]
    code = _OPENAI_CODES.get(name) or "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")
    return {"error": {"message": payload["detail"], "type": _openai_type(status), "param": None, "code": code}}


def shaped(path: str, status: int, payload: dict[str, str]) -> dict:
    """The error payload for a reply to `path`: OpenAI's shape under /v1/, ours elsewhere."""
    return openai_error(payload, status) if path.startswith(OPENAI_PREFIX) else payload


# ------------------------------------------------------------------ the guard (ASGI middleware)


class Guard:
    """Outermost layer: API key, then the body size (413 before parsing; the body is buffered,
    at most `body_bytes`, and replayed to the app). A body a little over the limit is drained so
    the client reads the 413 instead of a reset connection; a far larger one closes it."""

    def __init__(self, app: Any, limits: Limits = LIMITS, api_key: str | None = None):
        self.app, self.limits, self.key = app, limits, api_key

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        lang = client_language(headers.get(b"accept-language", b"").decode("latin-1"))
        has_body = b"content-length" in headers or b"transfer-encoding" in headers
        path = scope.get("path", "")

        def _reply(send: Callable, status: int, payload: dict, headers: list | None = None, close: bool = False):
            return _send_reply(send, status, shaped(path, status, payload), headers, close)

        if self.key and scope.get("path") != "/health" and not self._authorized(headers):
            return await _reply(send, 401, error_payload("unauthorized", lang, "Unauthorized"),
                                [(b"www-authenticate", b"Bearer")], close=has_body)
        if scope.get("method") in ("GET", "HEAD", "OPTIONS") and not has_body:
            return await self.app(scope, receive, send)
        limit = self.limits.body_bytes
        declared = headers.get(b"content-length")
        if declared is not None and not declared.strip().isdigit():
            return await _reply(send, 400, error_payload("invalid", lang, "ValidationError",
                                                          detail="Content-Length is not a number"), close=True)
        too_big = error_payload("body_too_large", lang, "PayloadTooLarge", limit=limit)
        if declared is not None and int(declared) > 8 * limit:
            return await _reply(send, 413, too_big, close=True)
        try:
            body, total, complete = await asyncio.wait_for(_read_body(receive, limit, 8 * limit), self.limits.body_seconds)
        except asyncio.TimeoutError:
            return await _reply(send, 408, error_payload("body_too_slow", lang, "RequestTimeout",
                                                          seconds=self.limits.body_seconds), close=True)
        if body is None:
            return  # the client went away
        if total > limit:
            return await _reply(send, 413, too_big, close=not complete)
        sent = False

        async def replay() -> dict:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # http.disconnect, which streaming responses listen for

        await self.app(scope, replay, send)

    def _authorized(self, headers: dict[bytes, bytes]) -> bool:
        got = headers.get(b"authorization", b"")
        want = b"Bearer " + self.key.encode()
        return hmac.compare_digest(got, want)


async def _read_body(receive: Callable, limit: int, drain: int) -> tuple[bytes | None, int, bool]:
    """(body — None if the client disconnected —, bytes received, whether the body ended).
    Stores at most `limit` bytes; past it, reads and drops up to `drain` bytes."""
    parts, total = [], 0
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            return None, total, False
        chunk = msg.get("body", b"")
        total += len(chunk)
        if total <= limit:
            parts.append(chunk)
        if not msg.get("more_body", False):
            return b"".join(parts), total, True
        if total > drain:
            return b"", total, False


async def _send_reply(send: Callable, status: int, payload: dict, headers: list | None = None, close: bool = False) -> None:
    body = _json_bytes(payload)
    hs = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())] + (headers or [])
    if close:  # an unread body is still arriving: do not keep the connection for another request
        hs.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": hs})
    await send({"type": "http.response.body", "body": body})


# ------------------------------------------------------------------ bounded work in a thread

_END = object()


class _Raised:
    def __init__(self, exc: BaseException):
        self.exc = exc


class Job:
    """`produce()` (returning an iterator) runs in a daemon thread; the event loop reads its
    items with a deadline. `stop()` makes the thread close the iterator at its next item."""

    def __init__(self, produce: Callable[[], Iterator[Any]], deadline: float, slots: threading.BoundedSemaphore):
        self.loop = asyncio.get_running_loop()
        self.deadline, self.seconds = self.loop.time() + deadline, deadline
        self.queue: asyncio.Queue = asyncio.Queue()
        self.cancel = threading.Event()
        self.slots = slots
        threading.Thread(target=self._run, args=(produce,), name="rag-api-job", daemon=True).start()

    def _put(self, item: Any) -> None:
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, item)
        except RuntimeError:  # the loop is closed: the server is stopping, nobody is listening
            self.cancel.set()

    def _run(self, produce: Callable[[], Iterator[Any]]) -> None:
        it = None
        try:
            it = produce()
            for item in it:
                if self.cancel.is_set():
                    break
                self._put(item)
        except BaseException as e:  # handed to the request; the thread itself never dies loudly
            self._put(_Raised(e))
        finally:
            if it is not None and hasattr(it, "close"):
                try:
                    it.close()  # a streaming model stops decoding here
                except Exception:
                    log.debug("closing a cancelled answer failed", exc_info=True)
            self._put(_END)
            self.slots.release()

    def stop(self) -> None:
        self.cancel.set()

    async def items(self):
        """The items, raising the thread's exception, or LimitError("deadline") when it is late."""
        try:
            while True:
                remaining = self.deadline - self.loop.time()
                try:
                    item = await asyncio.wait_for(self.queue.get(), max(remaining, 0.0))
                except asyncio.TimeoutError:
                    raise LimitError("deadline", 504, seconds=self.seconds) from None
                if item is _END:
                    return
                if isinstance(item, _Raised):
                    raise item.exc
                yield item
        finally:  # deadline, error, client gone or server stopping: the thread stops too
            self.stop()
