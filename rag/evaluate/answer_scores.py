"""Answer-text scores, correct for Chinese: the CMRC 2018 scorer (EM, F1) with script folding,
and whether the answer holds the reference (`contains_reference`, `contains_parts`,
`list_coverage`, `answer_correct`). Pure functions: text in, numbers out; re-exported by
rag.evaluate.metrics (see its docstring for the normalisation).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Sequence

from rag.text.norm import normalize, normalize_answer

_CJK_RANGES = (
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xF900, 0xFAFF),
    (0x20000, 0x2FFFF),
    (0x3040, 0x30FF),  # kana: one token per character like CJK
)


def _is_cjk(ch: str) -> bool:
    o = ord(ch)
    return any(a <= o <= b for a, b in _CJK_RANGES)


def answer_tokens(text: str) -> list[str]:
    """CMRC-style mixed segmentation of the normalised text: each Chinese character is a token,
    each run of other letters/digits is one token, punctuation/whitespace separate and vanish.
    `"".join(answer_tokens(t)) == normalize_answer(t)`.

    >>> answer_tokens("東北網 AI-2024年")
    ['东', '北', '网', 'ai', '2024', '年']
    """
    out: list[str] = []
    buf: list[str] = []
    for ch in normalize(text):
        cat = unicodedata.category(ch)[0]
        if cat in "LNM" and not _is_cjk(ch):
            buf.append(ch)
            continue
        if buf:
            out.append("".join(buf))
            buf = []
        if cat in "LNM":  # a CJK character
            out.append(ch)
    if buf:
        out.append("".join(buf))
    return out


def _refs(references: str | Sequence[str]) -> list[str]:
    refs = [references] if isinstance(references, str) else list(references)
    return [r for r in refs if r and normalize_answer(r)]


def exact_match(prediction: str, references: str | Sequence[str]) -> float:
    """1.0 when the normalised prediction equals a normalised reference.

    >>> exact_match("「五個好」", ["五个好"])   # script, width and punctuation folded
    1.0
    """
    p = normalize_answer(prediction)
    return float(any(p == normalize_answer(r) for r in _refs(references)))


def _lcs_len(a: Sequence[str], b: Sequence[str]) -> int:
    """Longest common *contiguous* run of tokens (the CMRC scorer's find_lcs), O(len a · len b).
    Written by hand: it is the scorer's definition and no maintained library exposes it for
    token lists (difflib's heuristics skip "junk" and are not exact)."""
    if not a or not b:
        return 0
    best = 0
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0] * (len(b) + 1)
        for j, y in enumerate(b, 1):
            if x == y:
                cur[j] = prev[j - 1] + 1
                if cur[j] > best:
                    best = cur[j]
        prev = cur
    return best


def char_f1(prediction: str, references: str | Sequence[str]) -> float:
    """CMRC 2018 F1, max over references.

    >>> round(char_f1("会议于2019年5月在北京召开", ["2019年5月"]), 4)
    0.5
    >>> # pred tokens: 会 议 于 2019 年 5 月 在 北 京 召 开 (12); ref: 2019 年 5 月 (4); lcs 4
    >>> # P = 4/12, R = 4/4, F1 = 2·(1/3)·1/(1/3+1) = 0.5
    """
    pt = answer_tokens(prediction)
    best = 0.0
    for r in _refs(references):
        rt = answer_tokens(r)
        lcs = _lcs_len(pt, rt)
        if lcs == 0:
            continue
        p, rc = lcs / len(pt), lcs / len(rt)
        best = max(best, 2 * p * rc / (p + rc))
    return best


def contains_reference(prediction: str, references: str | Sequence[str]) -> float:
    """1.0 when some normalised reference occurs inside the normalised prediction.

    >>> contains_reference("答案是：東北網。", ["东北网"])
    1.0
    """
    p = normalize_answer(prediction)
    return float(any(normalize_answer(r) in p for r in _refs(references)))


def list_coverage(prediction: str, items: Sequence[str | Sequence[str]]) -> float | None:
    """Share of reference list items present in the normalised answer. An item may be a list of
    alternative spellings (any one counts). None when there are no items.

    >>> list_coverage("要做到政治素質好、業務能力好", ["政治素质好", "业务能力好", "工作作风好", "廉洁自律好"])
    0.5
    """
    items = [i for i in items if i]
    if not items:
        return None
    p = normalize_answer(prediction)
    hit = 0
    for it in items:
        alts = [it] if isinstance(it, str) else list(it)
        if any(normalize_answer(a) and normalize_answer(a) in p for a in alts):
            hit += 1
    return hit / len(items)


# punctuation that separates the parts of a reference ("46个,共有党员849人"); conjunctions
# (和/及/与) are left alone: they also occur inside words (和谐), and a split there would loosen
# the reference rather than divide it
_PART_SEP = re.compile(r"[、，,；;：:／/]+")


def contains_parts(prediction: str, references: str | Sequence[str]) -> float:
    """1.0 when every part of some reference occurs in the answer, in any order and with any
    connective between them: a reference of several parts ("152户,430口人") is answered by
    "现有152户村民、430口人", which `contains_reference` scores 0. Parts are split at
    enumeration and clause punctuation and must be at least two characters after normalising;
    a reference of one part is scored as `contains_reference`.

    >>> contains_parts("八岔村现有152户村民、430口人。", ["152户,430口人"])   # 152户 ✓, 430口人 ✓
    1.0
    >>> contains_parts("包的是专题辅导、工作指导、解决难题", ["包专题辅导、包工作指导、包解决难题"])  # 包专题辅导 ✗
    0.0
    """
    p = normalize_answer(prediction)
    for r in _refs(references):
        parts = [normalize_answer(x) for x in _PART_SEP.split(r)]
        parts = [x for x in parts if len(x) >= 2]
        if len(parts) >= 2 and all(x in p for x in parts):
            return 1.0
    return contains_reference(prediction, references)


def answer_correct(prediction: str, references: str | Sequence[str], items: Sequence[str | Sequence[str]] = ()) -> float:
    """The answer holds the reference: every list item for a list question (list coverage 1.0,
    whatever text surrounds the items), else every part of a reference (`contains_parts`).

    >>> answer_correct("一是党性教育【1】。二是岗位奉献。", ["党性教育、岗位奉献"], ["党性教育", "岗位奉献"])
    1.0
    >>> answer_correct("党性教育、组织创新", ["党性教育、岗位奉献"], ["党性教育", "岗位奉献"])   # 1 of 2 items
    0.0
    """
    cover = list_coverage(prediction, items) if items else None
    if cover is not None:
        return float(cover == 1.0)
    return contains_parts(prediction, references)
