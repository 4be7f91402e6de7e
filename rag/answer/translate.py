"""English questions turned into simplified-Chinese retrieval queries (the documents are Chinese:
BM25 cannot match English words and e5-small aligns languages weakly).

`to_chinese_query(question, chat_model, cache=None) -> str`: the model's translation, checked
(`check_translation`: Chinese, every number kept, bounded), cached per model and normalised
question (`QueryCache`: in-memory LRU, optionally a JSON file written atomically); "" = fall back
to the question.

Compromises: names in translations are not verified (the 1.5B model transliterates Nanmalu as
南明); only numbers are. The logger keeps the name "rag.answer.condense", where this code lived, so log
filters set up for it still apply.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from rag.answer.entities import is_english_question
from rag.llm.side_call import side_reply
from rag.text.norm import cjk_count, fold_width, normalize, t2s

log = logging.getLogger("rag.answer.condense")


# ------------------------------------------------------------------------------ cross-lingual

TRANSLATE_SYSTEM = "把英文问题翻译成简体中文问题。保留人名、地名、机构名和所有数字。只输出中文问题。"
TRANSLATE_SHOTS = (
    ("How many party members does Hongxing village have?", "红星村有多少名党员？"),
    ("What did the Qingshan county committee decide in March 2011?", "2011年3月青山县委决定了什么？"),
)


class QueryCache:
    """Thread-safe LRU of translated queries; with `path`, also a JSON file (loaded at start,
    rewritten atomically — temp file + os.replace — after each new entry)."""

    def __init__(self, path: str | Path | None = None, size: int = 512):
        self.path, self.size, self.lock = (Path(path) if path else None), size, threading.Lock()
        self.data: OrderedDict[str, str] = OrderedDict()
        if self.path and self.path.is_file():
            try:
                self.data.update(json.loads(self.path.read_text(encoding="utf-8")))
            except (OSError, ValueError) as e:
                log.warning("ignoring unreadable query cache %s: %s", self.path, e)

    def get(self, key: str) -> str | None:
        with self.lock:
            if key in self.data:
                self.data.move_to_end(key)
                return self.data[key]
        return None

    def put(self, key: str, value: str) -> None:
        with self.lock:
            self.data[key] = value
            while len(self.data) > self.size:
                self.data.popitem(last=False)
            if not self.path:
                return
            try:  # an unwritable cache file must not fail the question: memory only then
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".cache-", suffix=".json")
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    json.dump(self.data, f, ensure_ascii=False)
                os.replace(tmp, self.path)
            except OSError as e:
                log.warning("query cache %s not written: %s", self.path, e)


_CACHES: dict[str, QueryCache] = {}


def _cache(cache: QueryCache | str | Path | None) -> QueryCache:
    if isinstance(cache, QueryCache):
        return cache
    key = str(cache or "")
    if key not in _CACHES:
        _CACHES[key] = QueryCache(cache or None)
    return _CACHES[key]


def check_translation(question: str, query: str) -> str:
    """Why a translated query is unusable ("" if fine): no Chinese, a number lost, too long.

    >>> check_translation("What was the income in 2009?", "2009年的收入是多少？"), check_translation("In 2009?", "200年收入")
    ('', 'lost number: 2009')
    """
    if cjk_count(query) < 2:
        return "no Chinese"
    for n in re.findall(r"\d+(?:\.\d+)?", fold_width(question)):
        if not re.search(rf"(?<![\d.]){re.escape(n)}(?![\d.])", fold_width(query)):
            return f"lost number: {n}"
    if len(query) > max(40, len(question)) or "\n" in query:
        return "too long"
    return ""


def to_chinese_query(question: str, chat_model: Any, cache: QueryCache | str | Path | None = None) -> str:
    """A simplified-Chinese query for an English `question` ("" when the question is not
    English, the model fails, or its output fails `check_translation`: fall back to the
    question). `cache`: a QueryCache, a JSON file path, or None (a process-wide LRU)."""
    if chat_model is None or not is_english_question(question):
        return ""
    c = _cache(cache)
    key = f"{getattr(chat_model, 'model_name', type(chat_model).__name__)}\x1f{' '.join(normalize(question).split())}"
    hit = c.get(key)
    if hit is not None:
        return hit
    msgs = [("system", TRANSLATE_SYSTEM)]
    for en, zh in TRANSLATE_SHOTS:
        msgs += [("user", en), ("assistant", zh)]
    try:
        out = t2s(side_reply(chat_model, msgs + [("user", question.strip())]))
    except Exception as e:
        log.warning("to_chinese_query: the model failed (%s)", e)
        return ""
    why = check_translation(question, out)
    if why:
        log.info("to_chinese_query: %r rejected (%s)", out, why)
    c.put(key, "" if why else out)
    return "" if why else out
