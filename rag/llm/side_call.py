"""One short side call to a chat model: greedy, at most `MAX_TOKENS` tokens, the first line of
the reply with a leading label ("改写：", "翻译："…) and quotes stripped. Shared by follow-up
condensing (rag.answer.condense) and query translation (rag.answer.translate), which check what it returns.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

MAX_TOKENS = 64


def side_reply(chat_model: Any, messages: Sequence[tuple[str, str]]) -> str:
    from rag.answer.prompts import to_langchain

    out = chat_model.invoke(to_langchain(messages), max_tokens=MAX_TOKENS, temperature=0.0, stop=["\n"])
    text = out.content if isinstance(out.content, str) else str(out.content)
    text = text.strip().splitlines()[0] if text.strip() else ""
    text = re.sub(r"^(?:改写后的问题|改写|问题|中文|翻译|standalone question)\s*[:：]\s*", "", text, flags=re.I)
    return text.strip().strip("“”\"'「」 ")

