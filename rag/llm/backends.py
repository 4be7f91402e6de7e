"""LLM backends as LangChain chat models behind one factory: `get_chat_model(cfg, models_dir)`.

Backends
- ``local`` (default): a GGUF instruction model run in-process by llama.cpp (llama-cpp-python).
  No network, no API key. The model file is assembled once by `rag models install`
  (see rag.llm.install). The `llama_cpp.Llama` object is loaded once per process per
  (model file, n_ctx, n_threads) and shared by every chat model built for it; a lock serialises
  generations because a llama.cpp context is not thread-safe (the web chat may call concurrently).
  Keeping one Llama object alive is also what makes llama.cpp's prompt-prefix reuse work: the
  tokens of the previous prompt stay in the KV cache, so a new prompt that starts with the same
  fixed system prompt only evaluates the part after the shared prefix.
- ``openai``: any OpenAI-compatible endpoint (vLLM, Ollama, DeepSeek, DashScope, OpenAI) through
  `langchain_openai.ChatOpenAI`; base URL / key from the config or OPENAI_BASE_URL / OPENAI_API_KEY,
  `llm.timeout`; its checks and one-line errors are rag.llm.openai_backend's.
- ``fake``: `FakeChatModel`, scripted and deterministic, for unit tests of prompt/citation logic.
- ``extractive`` is deliberately not a chat model (no generation at all); the answer stage
  implements it, so asking this factory for it is a configuration error.

Deliberate compromise: the local wrapper is a thin hand-written BaseChatModel instead of
langchain_community's ChatLlamaCpp, because ChatLlamaCpp constructs its own Llama object per
instance (no sharing across instances, so no process-wide cache and no shared KV prefix) and
has no lock around the context.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import ConfigDict, Field, PrivateAttr

from rag.config import LLMConfig
from rag.errors import ConfigError, ModelNotInstalled, RagError

log = logging.getLogger(__name__)

BACKENDS = ("local", "openai", "fake")  # chat-model backends; "extractive" lives in the answer stage

FAKE_DEFAULT_RESPONSE = "根据现有资料【1】。"


def _message_text(m: BaseMessage) -> str:
    c = m.content
    if isinstance(c, str):
        return c
    # multimodal content blocks: keep the text parts only
    return "".join(b.get("text", "") if isinstance(b, dict) else str(b) for b in c)


def _role(m: BaseMessage) -> str:
    return {"human": "user", "ai": "assistant", "system": "system", "tool": "tool"}.get(m.type, "user")


def _apply_stop(text: str, stop: Sequence[str] | None) -> str:
    """Cut `text` at the first stop sequence, as a real model's server would.

    >>> _apply_stop("答案【1】。\\n问题：", ["\\n问题"])
    '答案【1】。'
    """
    if not stop:
        return text
    cut = min((i for s in stop if s and (i := text.find(s)) >= 0), default=len(text))
    return text[:cut]


class FakeChatModel(BaseChatModel):
    """Scripted chat model for unit tests: deterministic, streams, records what it was asked.

    `responses` is a list of strings (used in order; cycled when `cycle=True`, otherwise an
    exhausted list raises) or a callable `messages -> str` (to answer from the prompt).
    Streaming yields `chunk_size` characters per chunk so token-event code paths are exercised.
    Every call's messages are appended to `.calls` (list of message lists); `.prompts` gives
    them as plain text.

    >>> m = FakeChatModel(responses=["你好【1】"], chunk_size=2)
    >>> [c.content for c in m.stream("问") if c.content]
    ['你好', '【1', '】']
    >>> m.invoke("再问").content, len(m.calls)
    ('你好【1】', 2)
    """

    responses: Any = Field(default_factory=lambda: [FAKE_DEFAULT_RESPONSE])
    cycle: bool = True
    chunk_size: int = 1
    calls: list[list[BaseMessage]] = Field(default_factory=list)
    model_name: str = "fake"

    model_config = ConfigDict(arbitrary_types_allowed=True)

    _i: int = PrivateAttr(default=0)
    _lock: Any = PrivateAttr(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return "fake-chat"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name}

    @property
    def prompts(self) -> list[str]:
        """Each recorded call rendered as `role: text` lines."""
        return ["\n".join(f"{_role(m)}: {_message_text(m)}" for m in call) for call in self.calls]

    def reset(self) -> None:
        """Forget recorded calls and restart the script."""
        with self._lock:
            self.calls.clear()
            self._i = 0

    def _next(self, messages: list[BaseMessage]) -> str:
        with self._lock:
            self.calls.append(list(messages))
            if callable(self.responses):
                return str(self.responses(list(messages)))
            if not self.responses:
                raise ValueError("FakeChatModel has no responses")
            if self._i >= len(self.responses):
                if not self.cycle:
                    raise IndexError(f"FakeChatModel script exhausted after {len(self.responses)} responses")
                self._i = 0
            text = self.responses[self._i]
            self._i += 1
            return text

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        text = _apply_stop(self._next(messages), stop)
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        text = _apply_stop(self._next(messages), stop)
        step = max(1, int(self.chunk_size))
        for i in range(0, len(text), step):
            piece = text[i : i + step]
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=piece))
            if run_manager:
                run_manager.on_llm_new_token(piece, chunk=chunk)
            yield chunk


# ---------------------------------------------------------------------------------------------
# local backend: llama.cpp in-process


_LLAMA_CACHE: dict[tuple, tuple[Any, threading.Lock]] = {}
_LLAMA_CACHE_LOCK = threading.Lock()


def _threads(n: int) -> int:
    # llama-cpp-python's own default is cpu_count // 2, which halves speed on a 2-core machine
    return n if n and n > 0 else max(1, os.cpu_count() or 1)


def load_llama(
    model_path: str | Path, n_ctx: int = 4096, n_threads: int = 0, slot: str = "main",
    kernels: str = "auto", models_dir: str | Path | None = None,
) -> tuple[Any, threading.Lock]:
    """The process-wide `llama_cpp.Llama` for this file, settings and slot, with its lock.

    Loaded on first use (≈1 s for the 0.5B from page cache), then reused, which keeps the KV
    cache of the previous prompt so a shared prompt prefix is not evaluated again. A context
    holds one token sequence, so a different kind of prompt (e.g. rewriting a follow-up
    question) evicts the answer prompt's cached prefix; such calls can use their own `slot`
    (a second context over the same file: costs another copy of the weights in RAM, since
    llama.cpp repacks them for the CPU, and its own KV cache).

    `kernels`/`models_dir` choose the llama.cpp build on the first load in the process
    (rag.llm.kernels: the self-tested build for this CPU, or the portable one).
    """
    from rag.llm.kernels import activate

    # the model file lies in {models_dir}/llm/, the kernel builds in {models_dir}/llama/
    activate(kernels, models_dir if models_dir is not None else Path(model_path).resolve().parent.parent)
    try:
        import llama_cpp
    except ImportError as e:  # pragma: no cover - depends on the machine
        raise ConfigError(
            "the local LLM backend needs llama-cpp-python: `pip install llama-cpp-python==0.3.36` "
            "(or use --llm extractive / backend=openai)"
        ) from e
    path = str(Path(model_path).resolve())
    key = (path, int(n_ctx), _threads(n_threads), slot)
    with _LLAMA_CACHE_LOCK:
        hit = _LLAMA_CACHE.get(key)
        if hit is not None:
            return hit
        t0 = time.perf_counter()
        try:
            llm = llama_cpp.Llama(
                model_path=path,
                n_ctx=int(n_ctx),
                n_threads=key[2],
                n_threads_batch=key[2],
                n_batch=512,
                verbose=False,
            )
        except (ValueError, RuntimeError, OSError) as e:
            raise RagError(f"could not load the local model {path}: {e}; re-run `rag models install --force`") from e
        log.info("loaded %s in %.2fs", path, time.perf_counter() - t0)
        _LLAMA_CACHE[key] = (llm, threading.Lock())
        return _LLAMA_CACHE[key]


def unload_all() -> None:
    """Drop every cached Llama object (tests, benchmarks measuring cold loads)."""
    with _LLAMA_CACHE_LOCK:
        for llm, lock in _LLAMA_CACHE.values():
            with lock:
                try:
                    llm.close()
                except Exception:  # pragma: no cover - best effort
                    pass
        _LLAMA_CACHE.clear()


def _close_at_exit() -> None:
    """Close the models before the interpreter tears llama_cpp down (a Llama freed during
    shutdown calls into an already-unloaded library: "TypeError: 'NoneType' object is not
    callable"). A model still generating in another thread is left alone: exit never waits."""
    for llm, lock in list(_LLAMA_CACHE.values()):
        if lock.acquire(timeout=0.2):
            try:
                llm.close()
            except Exception:  # pragma: no cover - best effort at exit
                pass
            finally:
                lock.release()


atexit.register(_close_at_exit)


class LocalChatModel(BaseChatModel):
    """A chat model over a GGUF file run by llama.cpp in this process.

    The chat template comes from the GGUF metadata (Qwen2.5: ChatML). Streaming yields the
    model's text deltas as they are decoded; the lock is held for the whole generation and
    released if the consumer stops early (generator close).
    """

    model_path: str
    model_name: str = "local"
    n_ctx: int = 4096
    n_threads: int = 0
    temperature: float = 0.1
    max_tokens: int = 384
    seed: int = 0  # fixed so answers are reproducible at a given temperature
    slot: str = "main"  # which cached llama.cpp context to use (see load_llama)
    kernels: str = "auto"  # which llama.cpp build runs (rag.llm.kernels; fixed at the first load in a process)

    @property
    def _llm_type(self) -> str:
        return "llama-cpp-local"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name, "model_path": self.model_path, "temperature": self.temperature}

    def _llama(self) -> tuple[Any, threading.Lock]:
        return load_llama(self.model_path, self.n_ctx, self.n_threads, self.slot, self.kernels)

    def _request(self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]) -> dict[str, Any]:
        return dict(
            messages=[{"role": _role(m), "content": _message_text(m)} for m in messages],
            temperature=float(kwargs.get("temperature", self.temperature)),
            max_tokens=int(kwargs.get("max_tokens", self.max_tokens)),
            stop=stop or None,
            seed=self.seed,
        )

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        llm, lock = self._llama()
        with lock:
            out = llm.create_chat_completion(**self._request(messages, stop, kwargs), stream=False)
        choice = out["choices"][0]
        msg = AIMessage(
            content=choice["message"].get("content") or "",
            response_metadata={"finish_reason": choice.get("finish_reason"), "model_name": self.model_name},
            usage_metadata=_usage(out.get("usage")),
        )
        return ChatResult(generations=[ChatGeneration(message=msg)], llm_output={"usage": out.get("usage")})

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        llm, lock = self._llama()
        with lock:
            for part in llm.create_chat_completion(**self._request(messages, stop, kwargs), stream=True):
                choice = part["choices"][0]
                piece = (choice.get("delta") or {}).get("content") or ""
                finish = choice.get("finish_reason")
                if not piece and not finish:
                    continue
                meta = {"finish_reason": finish, "model_name": self.model_name} if finish else {}
                chunk = ChatGenerationChunk(message=AIMessageChunk(content=piece, response_metadata=meta))
                if run_manager and piece:
                    run_manager.on_llm_new_token(piece, chunk=chunk)
                yield chunk


def _usage(u: dict[str, Any] | None) -> dict[str, int] | None:
    if not u:
        return None
    return {
        "input_tokens": int(u.get("prompt_tokens", 0)),
        "output_tokens": int(u.get("completion_tokens", 0)),
        "total_tokens": int(u.get("total_tokens", 0)),
    }


# ---------------------------------------------------------------------------------------------
# factory


def get_chat_model(cfg: LLMConfig, models_dir: str | Path | None = None, *, slot: str = "main") -> BaseChatModel:
    """The chat model for `cfg.backend` (local | openai | fake).

    `slot` (local only): calls of a different kind than answering, e.g. condensing a follow-up,
    can pass `slot="condense"` to run in their own llama.cpp context, so they do not evict the
    answer prompt's cached prefix (fixed system prompt + evidence); see load_llama.

    `models_dir` is where `rag models install` put the GGUFs (`cfg.paths.models_dir`); it is
    only needed for the local backend and defaults to `$RAG_MODELS_DIR` / `~/.rag-zh/models`.
    Raises ConfigError for an unknown backend or incomplete openai settings and
    ModelNotInstalled when the local model file has not been assembled yet.
    """
    backend = (cfg.backend or "").strip().lower()
    if backend == "fake":
        return FakeChatModel()
    if backend == "openai":
        return _openai_model(cfg)
    if backend == "local":
        from rag.llm.install import model_path

        if models_dir is None:
            from rag.config import PathsConfig

            models_dir = PathsConfig().models_dir
        path = model_path(cfg.model, models_dir)  # raises ModelNotInstalled / ConfigError
        return LocalChatModel(
            model_path=str(path),
            model_name=cfg.model,
            n_ctx=cfg.n_ctx,
            n_threads=cfg.n_threads,
            temperature=cfg.temperature,
            max_tokens=cfg.max_tokens,
            slot=slot,
            kernels=cfg.kernels,
        )
    if backend == "extractive":
        raise ConfigError(
            "the extractive backend has no chat model; the answer stage handles it (use Assistant / `rag ask --llm extractive`)"
        )
    raise ConfigError(f"unknown LLM backend {cfg.backend!r}; choose one of: local, openai, extractive, fake")


def _openai_model(cfg: LLMConfig) -> BaseChatModel:
    from rag.llm.openai_backend import openai_chat_model  # langchain_openai is imported only when used

    return openai_chat_model(cfg)
