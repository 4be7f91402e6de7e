"""List questions that name their count ("『六学』是哪六学?", "哪三个方面宣传?") answered by quoting
the enumeration itself, when the retrieved text holds one with exactly that many items.

Why: the small local models rewrite lists. On the seed set's dev split the 1.5B model got 7 of
15 list questions wrong — an item replaced by a neighbouring sentence ("是休渔垦荒搞转产、建绿
色大豆生产基地…"), a list shortened to its head ("成立了九个教师社团。"), a word miscopied
(党徽 → 党微) — while the passage held the list verbatim. A user quoting a list into a report
needs its items exactly, so when the extractive quote (rag.answer.extractive, which keeps an
enumeration whole) has as many items as the question asks for, that quote is the answer and the
model is not asked. The count is the check: a quote with another number of items, or a question
that names no count ("哪些形式"), goes to the model as before. Items are counted by the
enumeration's markers, a 、-list, or the distinct quoted terms (items are often quoted).

Compromise: the answer is the document's wording (its head and items, past a length budget its
outline), not a fluent sentence; English questions always go to the model (the answer must be
English).
"""

from __future__ import annotations

import re
from typing import Sequence

from rag.answer.attributes import asks_items
from rag.answer.extractive import extract
from rag.cite.claims import quoted_terms
from rag.cite.quantities import chinese_int
from rag.text.enumerations import item_count
from rag.text.norm import normalize
from rag.types import Passage

_NUM = r"[一二三四五六七八九十两\d]{1,3}"
# "哪六学", "哪“三步棋”": the number right after 哪 (quotes between allowed)
_AFTER_WHICH = re.compile(r"哪\W{0,2}(" + _NUM + r")")
# else a count naming the things asked for ("哪些…三个方面"); the question is simplified, so
# the counters are simplified too (rag.text.enumerations.HEAD matches document text as written)
_COUNT_HEAD = re.compile(r"(" + _NUM + r")\s*(?:个|项|条|种|件|类|组|大|方面|点|步)")


def asked_count(question: str) -> int | None:
    """How many items a list question asks for, when it says (≥ 2), else None.

    >>> asked_count("安达市委实施的“六学”措施具体是哪六学?"), asked_count("重点抓了哪“三个方面宣传”?")
    (6, 3)
    >>> asked_count("南馬路小學設立的三組六項獎分別是哪六個獎?"), asked_count("通过哪些形式亮出身份?")
    (6, None)
    """
    q = normalize(question)
    if not asks_items(q):
        return None
    m = _AFTER_WHICH.search(q)
    if m is None:
        # no number after 哪: a count head elsewhere in the question ("哪些…三个方面")
        m = _COUNT_HEAD.search(q)
    if m is None:
        return None
    n = chinese_int(m.group(1))
    return n if n is not None and n >= 2 else None


def quoted_list(question: str, passages: Sequence[Passage]) -> str | None:
    """The extractive quote (with its 【n】) answering a list question when it holds exactly the
    asked number of items, else None (the model answers).

    >>> from rag.types import Chunk, Hit
    >>> t = "全局开展“三查”活动：一是查思想。二是查作风。三是查纪律。会议结束。"
    >>> ps = [Passage.from_hit(1, Hit(Chunk("d#0", "d", 0, "某局", (), t, 0, len(t)), 1.0, 1))]
    >>> quoted_list("“三查”是哪三查？", ps)
    '全局开展“三查”活动：一是查思想。二是查作风。三是查纪律。【1】'
    >>> quoted_list("“三查”是哪四查？", ps) is None
    True
    """
    n = asked_count(question)
    if n is None or not passages:
        return None
    text, chosen = extract(question, passages)
    if not text or n not in item_counts([c.text for c in chosen], question):
        return None
    return text


def item_counts(sentences: Sequence[str], question: str) -> set[int]:
    """The ways `sentences` can be read as a list: the items of its enumeration or 、-list
    (rag.text.enumerations.item_count), and its distinct quoted terms other than the question's
    own — reports quote each item of a named list ("『原創獎』和『最佳原創獎』…", “比素质,看作风…”).

    >>> sorted(item_counts(["开展“四比”活动，即“比素质”、“比能力”，“比业绩”和“比奉献”。"], "“四比”是哪四比？"))
    [2, 4]
    """
    asked = normalize(question)
    quoted = {normalize(t) for s in sentences for t in quoted_terms(s)}
    quoted = {t for t in quoted if t and t not in asked}
    return {item_count(list(sentences)), len(quoted)} - {0}
