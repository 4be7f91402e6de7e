"""The `openai` LLM backend: any OpenAI-compatible server (vLLM, Ollama, llama.cpp's server,
DeepSeek, DashScope, OpenAI) through `langchain_openai.ChatOpenAI`, with one-line errors.

`openai_chat_model(cfg)` (called by `rag.llm.backends.get_chat_model`) builds an `OpenAIChatModel`: a
ChatOpenAI whose failures are `BackendError`s a person can act on, naming the endpoint and the
setting to change — never the client's multi-line exception:
- the server cannot be reached, or the connection breaks off while answering (a server that
  died mid-answer); a stream that ends without a finish reason is an error too, so a cut-off
  answer is never taken for a whole one (the answer stage then yields no Final answer: nothing
  is checked, shown as final or saved);
- no byte within `llm.timeout` seconds (connecting, or between streamed pieces);
- an unknown model: before its first request the model asks the server's `GET /v1/models` once
  and refuses a name the server does not list, because some servers (llama.cpp's) silently
  answer with whatever model they have; a server without that route is not checked;
- a refused API key, and any other HTTP error with the server's own message.

Compromises: no retries (`max_retries=0`): a retry would double the wait the timeout promises,
and an answer already streaming cannot be retried without repeating its tokens. The model list
is read once per chat model (one GET per process and model), not before every request.
"""

from __future__ import annotations

import threading
from typing import Any, Iterator

from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_openai import ChatOpenAI
from pydantic import PrivateAttr

from rag.config import LLMConfig
from rag.errors import BackendError, ConfigError


def _detail(e: BaseException, limit: int = 200) -> str:
    """The one-line gist of a client error: the server's message when it sent one.

    >>> _detail(ValueError("line one\\n  line two"))
    'line one line two'
    """
    body = getattr(e, "body", None)
    msg = body.get("message") if isinstance(body, dict) else None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        msg = body["error"].get("message") or msg
    text = " ".join(str(msg or getattr(e, "message", None) or e).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _root(e: BaseException) -> BaseException:
    """The innermost cause (langchain wraps openai's error, which wraps httpx's)."""
    for _ in range(8):
        nxt = e.__cause__ or e.__context__
        if nxt is None:
            break
        e = nxt
    return e


def backend_error(e: Exception, base_url: str, model: str, timeout: float, *, answering: bool = False) -> BackendError:
    """`e` (from openai/httpx) as one actionable line. `answering`: pieces had arrived already."""
    import httpx
    import openai

    where = f"the OpenAI-compatible server at {base_url}"
    if isinstance(e, (openai.APITimeoutError, httpx.TimeoutException)):
        return BackendError(f"{where} sent nothing for {timeout:g} s (llm.timeout, RAG_LLM_TIMEOUT); "
                            "it may be overloaded, or raise the timeout")
    if isinstance(e, openai.NotFoundError):
        return BackendError(f"{where} has no model {model!r} (llm.model, RAG_LLM_MODEL): {_detail(e)}")
    if isinstance(e, (openai.AuthenticationError, openai.PermissionDeniedError)):
        return BackendError(f"{where} refused the API key (llm.api_key or OPENAI_API_KEY): {_detail(e)}")
    if isinstance(e, openai.APIStatusError):
        return BackendError(f"{where} answered HTTP {e.status_code}: {_detail(e)}")
    if isinstance(e, (openai.APIConnectionError, httpx.TransportError)):
        cause = _root(e)  # the transport's own error (httpx) says what happened
        if answering:
            return BackendError(f"the connection to {where} broke off during the answer ({type(cause).__name__}); "
                                "the unfinished answer was discarded")
        return BackendError(f"could not reach {where} (llm.base_url, RAG_LLM_BASE_URL): {_detail(cause)}")
    return BackendError(f"{where} failed: {type(e).__name__}: {_detail(e)}")


class OpenAIChatModel(ChatOpenAI):
    """ChatOpenAI with the checks and one-line errors of the module doc."""

    _checked: bool = PrivateAttr(default=False)
    _check_lock: Any = PrivateAttr(default_factory=threading.Lock)

    def _error(self, e: Exception, answering: bool = False) -> BackendError:
        return backend_error(e, str(self.openai_api_base), self.model_name, float(self.request_timeout or 0), answering=answering)

    def check_model(self) -> None:
        """Refuse a model name the server does not list (once; servers without /v1/models pass)."""
        import openai

        with self._check_lock:
            if self._checked:
                return
            try:
                served = [m.id for m in self.root_client.models.list()]
            except (openai.NotFoundError, openai.UnprocessableEntityError, openai.BadRequestError):
                served = None  # no model list on this server: its answer will tell
            except openai.APIStatusError as e:
                if e.status_code in (405, 501):
                    served = None
                else:
                    raise self._error(e) from None
            except Exception as e:  # noqa: BLE001 - unreachable server, timeout: one line
                raise self._error(e) from None
            if served is not None and self.model_name not in served:
                shown = ", ".join(served[:10]) + (" …" if len(served) > 10 else "")
                raise BackendError(f"the OpenAI-compatible server at {self.openai_api_base} has no model "
                                   f"{self.model_name!r} (llm.model, RAG_LLM_MODEL); it serves: {shown or 'nothing'}")
            self._checked = True

    def _stream(self, *args: Any, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        self.check_model()
        answering, finished = False, False
        try:
            for chunk in super()._stream(*args, **kwargs):
                answering = answering or bool(chunk.text)
                finished = finished or bool((chunk.generation_info or {}).get("finish_reason"))
                yield chunk
        except Exception as e:  # noqa: BLE001 - GeneratorExit (the consumer stopped) is not caught
            raise self._error(e, answering) from None
        if not finished:
            raise BackendError(f"the OpenAI-compatible server at {self.openai_api_base} ended the answer without "
                               "finishing it; the unfinished answer was discarded")

    def _generate(self, *args: Any, **kwargs: Any) -> ChatResult:
        self.check_model()
        try:
            return super()._generate(*args, **kwargs)
        except Exception as e:  # noqa: BLE001
            raise self._error(e) from None


def openai_chat_model(cfg: LLMConfig) -> OpenAIChatModel:
    """The chat model for `cfg` (backend `openai`); ConfigError when the endpoint or model is missing."""
    base_url = (cfg.base_url or "").strip()  # OPENAI_BASE_URL / OPENAI_API_KEY: read by rag.config
    api_key = (cfg.api_key or "").strip()
    model = (cfg.model or "").strip()
    if not base_url:
        raise ConfigError(
            "the openai backend needs an endpoint: set llm.base_url (RAG_LLM_BASE_URL) or OPENAI_BASE_URL, "
            "e.g. http://127.0.0.1:8000/v1 for vLLM, http://127.0.0.1:11434/v1 for Ollama, "
            "https://api.openai.com/v1 for OpenAI"
        )
    if not model:
        raise ConfigError("the openai backend needs a model name: set llm.model (RAG_LLM_MODEL)")
    from rag.llm.install import MODELS

    if model in MODELS:
        # the default model name is a local GGUF name, which no server knows
        raise ConfigError(
            f"llm.model is {model!r}, a local model name; set llm.model (RAG_LLM_MODEL) to the model the "
            f"endpoint {base_url} serves (e.g. qwen2.5:1.5b on Ollama, deepseek-chat on DeepSeek)"
        )
    # local servers (vLLM, Ollama, llama.cpp server) accept any key; the client insists on one
    return OpenAIChatModel(
        model=model,
        base_url=base_url,
        api_key=api_key or "not-needed",
        temperature=cfg.temperature,
        max_tokens=cfg.max_tokens,
        timeout=cfg.timeout,
        max_retries=0,
    )
