"""Embedding similarity for English questions over Chinese passages, where the two share no
words: the extractive backend ranks sentences by it (`sentence_similarity`) and the review judges
an English statement's support by it (`passage_similarity`). Used by rag.answer.assistant only when the
question is English.

Compromise: the [COS_FLOOR, COS_FULL] rescaling is a heuristic read off e5 cosines, not
calibrated on a cross-language set.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from rag.text.sentences import sentence_spans

# e5 cosines of unrelated text sit around 0.7-0.75 and of a statement and its source sentence
# above ~0.85; the support score maps [COS_FLOOR, COS_FULL] linearly onto [0, 1].
COS_FLOOR, COS_FULL = 0.75, 0.9


def sentence_similarity(enc: Any) -> Callable[[str, Sequence[str]], list[float]]:
    """question × sentences → their embedding cosines, by the encoder `enc`."""

    def sim(question: str, sentences: Sequence[str]) -> list[float]:
        q = enc.encode_queries([question])[0]
        return [float(v) for v in enc.encode_passages(list(sentences)) @ q]

    return sim


def passage_similarity(enc: Any, floor: float = COS_FLOOR, full: float = COS_FULL) -> Callable[[str, str], float]:
    """statement × passage → [0, 1]: the best sentence's embedding cosine, rescaled from
    [floor, full]; each passage's sentence vectors and each statement's vector are computed once
    per returned function (one answer)."""
    passages: dict[str, Any] = {}
    statements: dict[str, Any] = {}  # a statement is checked against several passages

    def sim(statement: str, passage_text: str) -> float:
        if passage_text not in passages:
            sents = [passage_text[a:b] for a, b in sentence_spans(passage_text)] or [passage_text]
            passages[passage_text] = enc.encode_passages(sents)
        if statement not in statements:
            statements[statement] = enc.encode_queries([statement])[0]
        cos = float((passages[passage_text] @ statements[statement]).max())
        return max(0.0, min(1.0, (cos - floor) / (full - floor)))

    return sim
