"""LLM-as-judge (`rag eval --judge`): ask a chat model whether an answer agrees with a reference.

Deliberate compromise: a small local model is a noisy judge, so its verdict is labelled as such
in reports and never part of a baseline; a reply that is neither yes nor no counts as unparsed.
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

from rag.evaluate import metrics as M

log = logging.getLogger(__name__)


JUDGE_PROMPT = (
    "问题：{question}\n参考答案：{reference}\n待评答案：{answer}\n\n"
    "待评答案是否给出了与参考答案一致的信息（意思相同即可，可以更详细，语言或繁简不同不要紧）？只回答“是”或“否”。"
)


def judge_answer(model: Any, question: str, references: Sequence[str], answer: str) -> int | None:
    """LLM-as-judge: 1 when the chat model says the answer agrees with a reference, 0 when it
    says not, None when its reply is neither. Labelled as such in reports and never part of a
    baseline: a small local model is a noisy judge.

    >>> from rag.llm.backends import FakeChatModel
    >>> judge_answer(FakeChatModel(responses=["是。"]), "哪年？", ["1985年"], "1985年创办")
    1
    """
    from langchain_core.messages import HumanMessage, SystemMessage

    msgs = [SystemMessage(content="你是严格、公正的阅卷人。"),
            HumanMessage(content=JUDGE_PROMPT.format(question=question, reference=" / ".join(references), answer=M.strip_markers(answer)))]
    try:
        out = model.invoke(msgs)
    except Exception as e:  # a judge failure must not fail the evaluation
        log.warning("judge failed: %s", e)
        return None
    text = (out.content if isinstance(out.content, str) else str(out.content)).strip().lower()
    head = text[:8]
    if head.startswith(("是", "yes", "一致")) or ("是" in head and "否" not in head and "不" not in head):
        return 1
    if head.startswith(("否", "no", "不")) or "否" in head:
        return 0
    return None
