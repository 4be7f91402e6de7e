"""Romanised Chinese names (Hanyu Pinyin) in English text, found in Chinese text.

An English answer over Chinese documents writes names as pinyin ("Liu Enfu" for 刘恩福, "Fujin"
for 富锦); the claim check must find them in the passage, or a fabricated name passes and a
correct one cannot be verified. pypinyin gives every reading of a character (a polyphonic
surname such as 曾 is zeng or ceng), and a name matches a run of consecutive characters whose
readings spell it, tones and spaces ignored.

Deliberate compromise: a capitalised word counts as a romanised name only if it spells as
pinyin syllables and is not sentence-initial; English words that happen to spell as pinyin
("China") are listed in `_NOT_NAMES`. Wade–Giles and Cantonese spellings are not matched.
"""

from __future__ import annotations

import re
from functools import lru_cache

_NOT_NAMES = frozenset({"china", "chinese", "hong", "kong", "a", "an", "he", "she", "me", "men", "long"})


@lru_cache(maxsize=1)
def syllables() -> frozenset[str]:
    """Every toneless pinyin syllable pypinyin knows (≈420), from the CJK block.

    >>> {"liu", "en", "fu", "zhuang"} <= syllables()
    True
    """
    from pypinyin import Style, pinyin

    chars = "".join(chr(c) for c in range(0x4E00, 0x9FA6))
    out = {r for rs in pinyin(chars, style=Style.NORMAL, heteronym=True, errors="ignore") for r in rs}
    return frozenset(r for r in out if r.isalpha() and r.isascii())


def is_pinyin(word: str) -> bool:
    """Does `word` spell as a sequence of pinyin syllables?

    >>> is_pinyin("Enfu"), is_pinyin("Baotailong"), is_pinyin("Bureau")
    (True, True, False)
    """
    w = re.sub(r"[-']", "", word.lower())
    syl = syllables()
    ok = [True] + [False] * len(w)
    for i in range(len(w)):
        if ok[i]:
            for j in range(i + 1, min(len(w), i + 6) + 1):
                if w[i:j] in syl:
                    ok[j] = True
    return bool(w) and ok[len(w)]


def romanized_names(statement: str, question: str = "") -> list[str]:
    """Runs of capitalised pinyin words in `statement` that the question does not contain.

    >>> romanized_names("The general manager of the company in Jixi is Liu Enfu.", "Who leads the company in Jixi?")
    ['Liu Enfu']
    >>> romanized_names("The Party committee of China sent 29 cadres.")
    []
    """
    asked = {w.lower() for w in re.findall(r"[A-Za-z]+", question)}
    names: list[str] = []
    run: list[str] = []
    tokens = re.finditer(r"[A-Za-z][A-Za-z'-]*|[^\sA-Za-z]", statement)
    prev_end_of_sentence = True
    for t in tokens:
        w = t.group()
        is_name = (w[:1].isupper() and not prev_end_of_sentence and w.lower() not in _NOT_NAMES
                   and w.lower() not in asked and len(w) >= 2 and is_pinyin(w))
        if is_name:
            run.append(w)
        else:
            if run:
                names.append(" ".join(run))
            run = []
        prev_end_of_sentence = w in ".!?:;"
    if run:
        names.append(" ".join(run))
    return names


@lru_cache(maxsize=8192)
def _readings(ch: str) -> tuple[str, ...]:
    from pypinyin import Style, pinyin

    return tuple(pinyin(ch, style=Style.NORMAL, heteronym=True, errors="ignore")[0]) if "\u3400" <= ch <= "\u9fff" else ()


def find_name(name: str, text: str) -> tuple[int, int] | None:
    """The span of `text` whose characters' readings spell `name`, or None.

    >>> t = "黄一鹤说。公司总经理刘恩福说。"
    >>> a, b = find_name("Liu Enfu", t); t[a:b]
    '刘恩福'
    >>> find_name("Bao Sheng", t) is None
    True
    """
    target = re.sub(r"[^a-z]", "", name.lower())
    if not target:
        return None
    for start, ch in enumerate(text):
        if not _readings(ch):
            continue
        # depth-first over the readings of consecutive characters (a name is 2–4 characters)
        stack = [(start, 0)]
        while stack:
            i, j = stack.pop()
            if j == len(target):
                return start, i
            if i >= len(text) or i - start >= 6:
                continue
            for r in _readings(text[i]):
                if target.startswith(r, j):
                    stack.append((i + 1, j + len(r)))
    return None
