"""Bigram overlap, in one place: how much of a statement's wording a passage contains.

Chinese has no spaces, and bigrams of the metric form (simplified, half-width, lower case,
punctuation and whitespace removed: `rag.text.norm.normalize_answer`) are the standard
script-robust lexical unit (as in CMRC-style character metrics). The score is *recall* of the
statement's bigrams, not F1, because a short statement legitimately cites a long passage.

The unit is a parameter: characters by default (citation support), CMRC tokens (a run of
Latin letters/digits is one token) for the evaluation's independent recheck.
"""

from __future__ import annotations

from typing import Callable, Sequence

import re

from rag.text.norm import normalize, normalize_answer

_SEP = re.compile(r"[\s\W_]+", re.UNICODE)


def chars(text: str) -> list[str]:
    """The characters of the metric form of `text`.

    >>> chars("東北網，AI")
    ['东', '北', '网', 'a', 'i']
    """
    return list(normalize_answer(text))


def grams(units: Sequence[str]) -> set[tuple[str, ...]]:
    """Adjacent pairs of `units`; a single unit is its own gram, no units give none.

    >>> sorted(grams(["68", "人", "以上"])), grams(["好"]), grams([])
    ([('68', '人'), ('人', '以上')], {('好',)}, set())
    """
    if len(units) < 2:
        return {tuple(units)} if units else set()
    return {(units[i], units[i + 1]) for i in range(len(units) - 1)}


def bigrams(text: str) -> set[str]:
    """Character bigrams of the metric form; a single character counts as its own gram.

    >>> sorted(bigrams("東北網，AI"))
    ['ai', '东北', '北网', '网a']
    >>> sorted(bigrams("好"))
    ['好']
    """
    return {"".join(g) for g in grams(chars(text))}


def overlap(statement: str, passage: str, units: Callable[[str], Sequence[str]] = chars) -> float:
    """Share of the statement's bigrams (of `units`, characters by default) found in the
    passage, in [0, 1]; 0.0 for a statement without units.

    >>> overlap("安达市有六学措施", "我們實施了『六學』措施，確保安達市……")  # 安达 达市 六学 学措 措施 of 7
    0.7142857142857143
    >>> overlap("", "任何"), overlap("完全无关", "东北网")
    (0.0, 0.0)
    """
    s = grams(units(statement))
    if not s:
        return 0.0
    return len(s & grams(units(passage))) / len(s)


def term_grams(text: str) -> set[str]:
    """The terms a question's words can match in a passage: per run of word characters (after
    `normalize`: simplified, half-width), its characters and character bigrams, and a Latin or
    digit run whole. A set, for coverage scores (rag.answer.extractive), not a recall.

    >>> sorted(term_grams("員工3000名，AI"))
    ['0', '00', '0名', '3', '30', 'a', 'ai', 'i', '名', '员', '员工', '工', '工3']
    """
    out: set[str] = set()
    for seg in _SEP.split(normalize(text)):
        if not seg:
            continue
        if seg.isascii():
            out.add(seg)
        out.update(seg)  # unigrams, for one-character terms
        out.update(seg[i : i + 2] for i in range(len(seg) - 1))
    return out
