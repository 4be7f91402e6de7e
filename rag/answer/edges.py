"""The edges of the answer stage, as pure functions: what a caller passes in (the question, the
conversation, a backend spec) is checked and normalised here, and what goes out (the answer in
the question's script, the JSON shape of `rag ask --json` and `POST /ask`) is shaped here.
rag.answer.assistant re-exports every name, so callers keep importing them from there.

Compromise: `answer_language`'s "English with a few Chinese names" rule is repeated in
rag.answer.entities.is_english_question (the condenser must not import the answer stage).
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from rag.config import LLM_BACKENDS as BACKENDS  # one home: rag.config
from rag.errors import ConfigError, RagError
from rag.limits import LIMITS  # one home for input limits
from rag.answer.prompts import PROMPT_VERSION
from rag.text.norm import cjk_count, question_language, s2t, t2s
from rag.types import Answer

MAX_QUESTION_CHARS = LIMITS.question_chars


class QuestionError(RagError):
    """The question is empty, too long or not text."""


def validate_question(question: Any) -> str:
    """The question, stripped; a clear QuestionError for empty, whitespace-only or overlong input.

    >>> validate_question("  问题？ ")
    '问题？'
    """
    if not isinstance(question, str):
        raise QuestionError("the question must be text")
    q = question.strip()
    if not q:
        raise QuestionError("the question is empty: type a question, e.g. rag ask \"安达市委实施了哪些措施？\"")
    if len(q) > MAX_QUESTION_CHARS:
        raise QuestionError(
            f"the question is {len(q)} characters long; the limit is {MAX_QUESTION_CHARS}. "
            "Ask a shorter question (put long material into the knowledge base instead)."
        )
    return q


def normalize_history(history: Any) -> list[tuple[str, str]]:
    """Accept [(question, answer), …] pairs or chat messages [{"role", "content"}, …] (Gradio's
    format) and return pairs.

    >>> normalize_history([{"role": "user", "content": "问"}, {"role": "assistant", "content": "答"}])
    [('问', '答')]
    >>> normalize_history([("问", None)])
    [('问', '')]
    """
    if not history:
        return []
    pairs: list[tuple[str, str]] = []
    pending: str | None = None
    for item in history:
        if isinstance(item, Mapping):
            role, content = item.get("role"), item.get("content")
            content = content if isinstance(content, str) else ""
            if role == "user":
                if pending is not None:
                    pairs.append((pending, ""))
                pending = content
            elif role == "assistant" and pending is not None:
                pairs.append((pending, content))
                pending = None
        elif isinstance(item, (list, tuple)) and len(item) >= 1:
            q = item[0] if isinstance(item[0], str) else ""
            a = item[1] if len(item) > 1 and isinstance(item[1], str) else ""
            pairs.append((q, a))
        else:
            raise QuestionError("history must be a list of [question, answer] pairs")
    if pending is not None:
        pairs.append((pending, ""))
    return [(q, a) for q, a in pairs if q.strip()]


def answer_language(question: str) -> str:
    """The language/script to answer in: rag.text.norm.question_language, except that an
    English sentence quoting a few Chinese names is still English.

    >>> answer_language("In which year was the 安达 committee founded?"), answer_language("安達在哪裡？")
    ('en', 'zh-Hant')
    """
    lang = question_language(question)
    if lang != "en":
        latin = len(re.findall(r"[A-Za-z]+", question))
        if latin >= 3 and latin > cjk_count(question) / 2:
            return "en"
    return lang


def _simplified_only(ch: str) -> bool:
    return t2s(ch) == ch and s2t(ch) != ch


def to_answer_script(text: str, lang: str) -> str:
    """Put the answer into the question's script without damaging text that already is in it.

    Simplified target: OpenCC t2s on everything (safe). Traditional target: s2t only on the
    clauses that contain a simplified-only character — running s2t over text that is already
    traditional "corrects" legitimate variants (89周年 → 89週年), and answers often quote
    traditional sources verbatim. English: the Chinese a model copied into its English put into
    English (rag.text.english).

    >>> to_answer_script("座談會在6月25日召開，纪念89周年【1】。", "zh-Hant")
    '座談會在6月25日召開，紀念89週年【1】。'
    >>> to_answer_script("紀念89周年【1】。", "zh-Hant")
    '紀念89周年【1】。'
    >>> to_answer_script("紀念89周年【1】。", "zh-Hans"), to_answer_script("It was 1949.", "en")
    ('纪念89周年【1】。', 'It was 1949.')
    >>> to_answer_script("The income in 2009 was 9450元", "en")
    'The income in 2009 was 9450 yuan'
    """
    if lang == "zh-Hans":
        return t2s(text)
    if lang == "en":
        from rag.text.english import englishify

        return englishify(text)
    if lang != "zh-Hant":
        return text
    pieces = re.split(r"(?<=[。！？!?；;，,：:\n])", text)
    return "".join(s2t(p) if any(_simplified_only(c) for c in p) else p for p in pieces)

def parse_backend(spec: str) -> tuple[str, str]:
    """`BACKEND[:MODEL]` → (backend, model or ""); ConfigError for an unknown backend.

    >>> parse_backend(" Local:qwen2.5-0.5b ")
    ('local', 'qwen2.5-0.5b')
    >>> parse_backend("extractive")
    ('extractive', '')
    """
    kind, _, model = spec.strip().partition(":")
    kind = kind.lower()
    if kind not in BACKENDS:
        raise ConfigError(f"unknown LLM backend {kind!r}; choose one of: {', '.join(BACKENDS)} (optionally BACKEND:MODEL)")
    if model and kind == "extractive":
        raise ConfigError("the extractive backend takes no model")
    return kind, model


def backend_kind(backend: str) -> str:
    """`local:qwen2.5-0.5b` → `local`."""
    return backend.partition(":")[0]

def answer_to_json(answer: Answer) -> dict[str, Any]:
    """The JSON shape of `rag ask --json` and `POST /ask`: only supported citations under
    `citations` (the ones shown); rejected ones (with their support score) under
    `rejected_citations`."""

    def cite(c: Any) -> dict[str, Any]:
        return {
            "n": c.n,
            "chunk_id": c.chunk_id,
            "doc_id": c.doc_id,
            "title": c.title,
            "section": list(c.section),
            "source": c.source,
            "date": str(c.metadata.get("date") or ""),
            "start": c.start,
            "end": c.end,
            "quote": c.quote,
            "quote_start": c.quote_start,
            "quote_end": c.quote_end,
            "support": c.support,
            "statement": c.statement,
            "auto": bool(c.metadata.get("auto", False)),
            # a scanned document (rag.ingest.ocr): the quote's page and the boxes of its lines
            "page": c.page,
            **({"boxes": [list(b) for b in c.metadata["boxes"]]} if c.metadata.get("boxes") else {}),
        }

    return {
        "question": answer.question,
        "standalone_question": answer.standalone_question or answer.question,
        "answer": answer.text,
        "refused": answer.refused,
        "grounded": answer.grounded,
        "citations": [cite(c) for c in answer.citations if c.supported],
        "rejected_citations": [cite(c) for c in answer.citations if not c.supported],
        "claims": [c.to_dict() for c in answer.claims],
        "refusal_reason": answer.refusal_reason,
        "hits": [h.to_dict() for h in answer.hits],
        "timings": dict(answer.timings),
        "model": answer.model,
        "prompt_version": PROMPT_VERSION,
    }
