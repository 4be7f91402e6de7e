"""Enumerations in running text: which sentences are the items of one list, and its head.

Chinese reports enumerate with markers at sentence starts — `一是…二是…`, `其一/其二`,
`第一，/第二，`, `（一）（二）`, `一、二、`, `(1)(2)`, `1.`/`1、`, `①②`, `首先/其次/最后` — often
after a sentence that announces them (ending in "：", or naming a count: "三个方面", "五带头").
The answer stage keeps such a run whole: the evidence the model reads (rag.answer.evidence), the
chunks merged across a boundary, and the extractive backend's quote (rag.answer.extractive).

Deliberate compromise: detection is by markers at sentence starts and by a head that names a
count; a list written with commas inside one sentence is one sentence and needs nothing special.
"""

from __future__ import annotations

import re
from typing import Sequence

_CN = "一二三四五六七八九十"
_CIRCLED = "①②③④⑤⑥⑦⑧⑨⑩"
_ORDINAL_WORDS = ("首先", "其次", "再次", "然后", "最后")
# Item markers at a sentence start. Not rag.chunk.sections's heading markers: those find section
# headings on their own line (一、 （一） 第N章), these find the items of an enumeration inside
# running text (一是 其二 第三， 首先), and the position (一 → 1) is what matters here.
_FAMILIES: list[tuple[str, re.Pattern[str]]] = [
    ("是", re.compile(r"^\s*([一二三四五六七八九十])是")),
    ("其", re.compile(r"^\s*其([一二三四五六七八九十])[,，、是：:]")),
    ("第", re.compile(r"^\s*第([一二三四五六七八九十])(?:[,，、：:]|是|步|条|條|项|項|个|個|点|點|阶段|階段|方面|组|組|类|類|批)")),
    ("(cn)", re.compile(r"^\s*[（(]([一二三四五六七八九十])[)）]")),
    ("cn、", re.compile(r"^\s*([一二三四五六七八九十])[、．.]")),
    ("(1)", re.compile(r"^\s*[（(](\d{1,2})[)）]")),
    ("1.", re.compile(r"^\s*(\d{1,2})[、．.](?!\d)")),
    ("①", re.compile(r"^\s*([" + _CIRCLED + r"])")),
]
# a sentence announcing items: ends with a colon, or names a count of things ("三个方面", "五带头")
# (either script: document text is matched as written)
HEAD = re.compile(r"[:：]\s*$|[一二三四五六七八九十两兩\d]+\s*(?:个|個|项|項|条|條|种|種|件|类|類|组|組|大|方面|点|點|带|帶|抓|学|學|包|定|争|爭|化|好|步)")


def enum_index(sentence: str) -> tuple[str, int] | None:
    """(family, position) of an enumeration item at the start of `sentence`, else None.

    >>> enum_index("二是巡回宣讲。"), enum_index("（三）阵地宣传"), enum_index("2、建立档案"), enum_index("最后，总结")
    (('是', 2), ('(cn)', 3), ('1.', 2), ('首先', 5))
    >>> enum_index("会议召开。") is None
    True
    """
    s = sentence.lstrip()
    for i, w in enumerate(_ORDINAL_WORDS):
        if s.startswith(w):
            return ("首先", i + 1)
    for fam, pat in _FAMILIES:
        m = pat.match(s)
        if m:
            g = m.group(1)
            if g in _CIRCLED:  # before isdigit(): "③".isdigit() is True
                return fam, _CIRCLED.index(g) + 1
            if g.isdigit():
                return fam, int(g)
            return fam, _CN.index(g) + 1
    return None


def _inline_first(sentence: str) -> tuple[str, int] | None:
    """An announcing sentence whose first item follows a colon ("…三项要求：一是加强学习。"),
    at any of its colons ("基本要求是：…，努力做到“五个好”：一是领导班子好。").

    >>> _inline_first("全局有三项要求：一是加强学习。"), _inline_first("要求是：成效明显，做到“五个好”：一是班子好。")
    (('是', 1), ('是', 1))
    """
    for m in re.finditer(r"[:：]\s*", sentence):
        e = enum_index(sentence[m.end() :]) if m.end() < len(sentence) else None
        if e is not None and e[1] == 1:
            return e
    return None


def _next_ok(fam: str, prev: int, cur: tuple[str, int] | None) -> bool:
    if cur is None or cur[0] != fam:
        return False
    if fam == "首先":  # 首先 → 其次/再次/然后 (any number of times) → 最后
        return cur[1] >= 2 and prev < 5
    return cur[1] == prev + 1


# Sentences an item may run to before the next item: reports explain an item for a paragraph
# ("一是…。" then five sentences of what was done); a bare "1." is also how figures and steps
# start, so that family must continue sooner.
MAX_GAP = 6
MAX_GAP_DIGITS = 3


def _marks(sentences: Sequence[str]) -> tuple[list[tuple[str, int] | None], list[bool]]:
    """Each sentence's item marker (an announcing sentence's inline first item included), and
    which of them are inline."""
    idx = [enum_index(s) for s in sentences]
    inline = [idx[i] is None and _inline_first(s) is not None for i, s in enumerate(sentences)]
    for i, s in enumerate(sentences):
        if inline[i]:
            idx[i] = _inline_first(s)
    return idx, inline


def enumeration_runs(sentences: Sequence[str]) -> list[tuple[int, int]]:
    """[first, last] sentence indices (inclusive) of each enumeration, its head included.
    Sentences without a marker between two items belong to the earlier item, up to `MAX_GAP`.

    >>> s = ["要求如下：", "一是加强学习。", "要经常学。", "二是改进作风。", "三是严格纪律。", "会议结束。"]
    >>> enumeration_runs(s)
    [(0, 4)]
    >>> enumeration_runs(["第一，开会。", "天气好。"])
    []
    """
    idx, inline = _marks(sentences)
    runs: list[tuple[int, int]] = []
    i = 0
    while i < len(sentences):
        cur = idx[i]
        if cur is None or cur[1] != 1:
            i += 1
            continue
        fam, k, last, j = cur[0], 1, i, i + 1
        gap = MAX_GAP_DIGITS if fam == "1." else MAX_GAP
        while j < len(sentences):
            if _next_ok(fam, k, idx[j]):
                k, last = idx[j][1], j
            elif idx[j] is not None and idx[j][0] == fam:
                break  # a new enumeration of the same family starts
            elif j - last > gap:
                break  # too far from the last item: the enumeration ended
            j += 1
        if k >= 2:
            start = i - 1 if i > 0 and not inline[i] and HEAD.search(sentences[i - 1]) else i
            runs.append((start, last))
            i = last + 1
        else:
            i += 1
    return runs


def outline(sentences: Sequence[str], lo: int, hi: int) -> list[int]:
    """The sentences of run [lo, hi] that name it: its head and each item's marker sentence
    (what a list answer needs when the whole run is too long to show).

    >>> s = ["全县抓了三件事。", "一是修路。", "修了十公里。", "二是建校。", "三是引水。"]
    >>> outline(s, 0, 4)
    [0, 1, 3, 4]
    """
    idx, _ = _marks(sentences)
    return [k for k in range(lo, hi + 1) if k == lo or idx[k] is not None]


def item_count(sentences: Sequence[str]) -> int:
    """Items of the longest enumeration in `sentences` (its marked sentences), else of the
    longest 、-list in one clause ("三陽、四海方舟、七星陣"), else 0.

    >>> item_count(["要求如下：", "一是加强学习。", "要经常学。", "二是改进作风。", "三是严格纪律。"])
    3
    >>> item_count(["成立了三陽、四海方舟、七星陣等社团。"]), item_count(["会议结束。"])
    (3, 0)
    """
    idx, _ = _marks(sentences)
    marked = [sum(1 for k in range(lo, hi + 1) if idx[k] is not None) for lo, hi in enumeration_runs(sentences)]
    if marked:
        return max(marked)
    clauses = (c for s in sentences for c in re.split(r"[，,；;：:。！？!?]", s))
    return max((c.count("、") + 1 for c in clauses if "、" in c), default=0)


def continues(sentences: Sequence[str], following: Sequence[str]) -> bool:
    """Does an enumeration of `sentences` go on in `following` (the next chunk's first
    sentences): its last item's successor is there, or — after a sentence announcing items
    ("…三步棋。", "…如下：") with none yet — a first item is?

    >>> continues(["会议提出三项措施：一是建立台账。", "做法很多。", "二是定期回访。"], ["三是考核问效。"])
    True
    >>> continues(["走活了三步棋。"], ["一是休渔转产。"]), continues(["走活了三步棋。"], ["天气晴。"])
    (True, False)
    >>> continues(["一是修路。", "二是建校。"], ["一是引水。"])
    False
    """
    idx, _ = _marks(sentences)
    nxt = [e for e in (enum_index(s) for s in following) if e is not None]
    last = max((k for k, e in enumerate(idx) if e is not None), default=None)
    if sentences and HEAD.search(sentences[-1]) and (last is None or last < len(sentences) - 1 and idx[-1] is None):
        if any(e[1] == 1 for e in nxt):
            return True
    if last is None or len(sentences) - 1 - last > (MAX_GAP_DIGITS if idx[last][0] == "1." else MAX_GAP):
        return False
    fam, k = idx[last]
    return any(_next_ok(fam, k, e) for e in nxt)
