"""Input limits: one home for every bound the assistant puts on what a client sends, and the
one-line, two-language messages a client gets when it crosses one.

`LIMITS` (a frozen `Limits`) holds the numbers; `rag.apps.api` enforces them before any work starts
(the body size in an ASGI middleware, the shape of a request in its pydantic schema, so the
OpenAPI document states them too), and `rag.answer.condense` reads only `condense_chars` of each
earlier question, so no tokenizer ever sees more than that, whatever a caller passes.

Why these numbers:
- `body_bytes` 1 MiB: the largest legitimate request (20 turns × 4,000 characters of history,
  JSON-escaped at 6 bytes a character) is ≈ 0.5 MB; a 1 MB body parses in milliseconds.
- `question_chars` 1,000: `rag.answer.assistant.MAX_QUESTION_CHARS` is this value (a test keeps them equal;
  rag.answer.assistant imports it from here).
- `history_turns` 20 and `turn_chars` 4,000: the condenser reads only the last 4 questions, and
  an answer with its citations stays well below 4,000 characters; the rest is accepted only so
  that a chat client can send its whole window without trimming it.
- `condense_chars` 1,000: an earlier question is itself a question (≤ 1,000 characters), so
  nothing a real conversation holds is lost; jieba's HMM step is quadratic and 1,000 characters
  take ≈ 15 ms, where the 1,048,576 characters of the finding took 13 minutes.
- `k` ≤ 100: the bound `Assistant.ask` already checks.
- `kb_name_chars` 60: a name becomes a folder name (255 bytes on most file systems; 60
  characters of at most 4 UTF-8 bytes fit; a 256-character name gave ENAMETOOLONG → 500).
- `deadline_seconds` 120: a long answer from the local 1.5B model (≈ 9 tokens/s, first token
  ≈ 3 s) ends well inside it; extractive answers take < 1 s. `rag serve --deadline` changes it.
- `max_inflight` 32: concurrent answers in worker threads; more get 503 rather than a queue
  that grows without bound (a thread that ran past its deadline still holds its slot until it
  stops, so runaway work cannot pile up).

Compromise: messages are chosen by the client's Accept-Language only (zh… → Chinese), not by
the script of the question: scripts that ask Chinese questions parse the English messages today
(tests/test_api.py does), and a header is the HTTP way to ask for a language.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    body_bytes: int = 1 << 20
    body_seconds: float = 15.0  # the whole body must arrive within this (a slow sender holds a connection)
    question_chars: int = 1000
    history_turns: int = 20
    turn_chars: int = 4000
    condense_chars: int = 1000
    k_max: int = 100
    kb_name_chars: int = 60
    deadline_seconds: float = 120.0
    max_inflight: int = 32


LIMITS = Limits()


class LimitError(Exception):
    """A request crossed a limit or is malformed in a way the schema cannot say. `key` names the
    message in MESSAGES; `status` is the HTTP status; `args_` fill the message's fields.
    (Not a RagError on purpose: rag.errors is shared, and the API maps both.)"""

    def __init__(self, key: str, status: int = 422, **fields: object):
        self.key, self.status, self.fields = key, status, fields
        super().__init__(message(key, "en", **fields))


# key → (English, Chinese); {fields} are filled by `message`
MESSAGES: dict[str, tuple[str, str]] = {
    "body_too_large": ("the request body is larger than {limit} bytes", "请求体超过 {limit} 字节的上限"),
    "body_too_slow": ("the request body did not arrive within {seconds:g} s", "请求体未在 {seconds:g} 秒内传完"),
    "kb_name": ("invalid knowledge base name {name!r}: use at most {limit} letters, digits, '_', '-', '.'",
                "知识库名称 {name!r} 无效：最多 {limit} 个字母、数字或 '_'、'-'、'.'"),
    "kb_missing": ("knowledge base {name!r} has no index; build it with `rag index PATH --kb {name}`",
                   "知识库 {name!r} 没有索引；请先运行 `rag index PATH --kb {name}`"),
    "model_missing": ("the model {model!r} does not exist; GET /v1/models lists one model per knowledge base",
                      "模型 {model!r} 不存在；GET /v1/models 列出每个知识库对应的模型"),
    "deadline": ("the request took longer than its {seconds:g} s deadline and was stopped",
                 "请求超过 {seconds:g} 秒的时限，已停止"),
    "busy": ("the server is answering {limit} requests already; retry shortly",
             "服务器正在处理 {limit} 个请求，请稍后重试"),
    "unauthorized": ("missing or wrong API key: send 'Authorization: Bearer KEY'",
                     "缺少或错误的 API 密钥：请发送 'Authorization: Bearer KEY'"),
    "invalid": ("{detail}", "请求无效：{detail}"),
    "not_found": ("no such endpoint", "没有这个接口"),
    "internal": ("internal error ({kind})", "服务器内部错误（{kind}）"),
    "storage": ("the server could not read or write its data ({kind})", "服务器无法读写数据（{kind}）"),
    "model": ("{detail}", "模型不可用：{detail}"),
    "error": ("{detail}", "{detail}"),
}


def message(key: str, lang: str = "en", **fields: object) -> str:
    """The one-line message `key` in `lang` ("zh" or anything else → English)."""
    en, zh = MESSAGES[key]
    text = (zh if lang == "zh" else en).format(**fields)
    return " ".join(text.split())  # one line, whatever a field held


def client_language(accept_language: str | None) -> str:
    """"zh" when the client's preferred language (the first tag of Accept-Language) is Chinese."""
    first = (accept_language or "").split(",")[0].strip().lower()
    return "zh" if first.startswith("zh") else "en"


_PATH = re.compile(r"(?:[A-Za-z]:)?(?:[\\/][^\s\\/'\"`,;:()]+){2,}[\\/]?")


def scrub_paths(text: str) -> str:
    """`text` without file-system paths (a client must not learn the server's layout).

    >>> scrub_paths("no index at /root/.rag-zh/kb/x; run it")
    'no index at …; run it'
    """
    return _PATH.sub("…", text)


# a KB name becomes a folder name: a word character first, then word characters, '.', '-'
# (the one rule; rag.index.kb and the web chat import it)
KB_NAME = re.compile(r"^[\w][\w.\-]*$", re.UNICODE)


def valid_kb_name(name: object, limits: Limits = LIMITS) -> bool:
    """Is `name` (as given, not stripped) a KB name: the rule and the length bound?

    >>> valid_kb_name("seeds"), valid_kb_name("../etc"), valid_kb_name("甲" * 61), valid_kb_name(3)
    (True, False, False, False)
    """
    return isinstance(name, str) and bool(KB_NAME.match(name)) and len(name) <= limits.kb_name_chars


def check_kb_name(name: str, limits: Limits = LIMITS) -> str:
    """`name` stripped, or a LimitError (400) — before the name touches the file system.

    >>> check_kb_name(" seeds ")
    'seeds'
    """
    s = name.strip()
    if not valid_kb_name(s, limits):
        raise LimitError("kb_name", 400, name=s[:40] + ("…" if len(s) > 40 else ""), limit=limits.kb_name_chars)
    return s


def bounded_tail(text: str, limits: Limits = LIMITS) -> str:
    """The last `condense_chars` characters of `text` (what the condenser may read of a turn)."""
    return text[-limits.condense_chars:] if len(text) > limits.condense_chars else text
