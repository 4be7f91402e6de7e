"""Numbers as a statement asserts them: value, magnitude and unit class, in Arabic digits,
Chinese numerals or English words — and the numbers a question pins down.

The claim check (rag.cite.claims) requires each number of a statement, with its unit, in the
passage it cites (`三千名` = `3000名`, `68名` = `68人`, `2009年` ≠ `2010年`); the refusal rule
(rag.answer.refusal) refuses a question whose year or figure no retrieved passage has
(`missing_constraints`). Both read numbers here, so they agree on what a number is.

Deliberate compromise: units are a fixed list of the counters and measures the seed documents
use; a number followed by another word is a bare number, which matches any unit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from rag.text.norm import normalize, normalize_answer

_CN_DIGIT = "零〇一二三四五六七八九十百千万亿两"
# units that belong to the number: a statement's unit must match the passage's (classes below)
_UNIT = (
    r"(?:%|‰|周年|年度|年|个月|月|日|号|时|点|分钟|岁|届|期|批|次|人次|人|名|位|个|项|家|所|条|件|户|村|座|"
    r"支|篇|场|本|套|台|辆|吨|公斤|千克|斤|米|公里|千米|亩|公顷|平方米|平方公里|元|美元|块|倍|天|周|小时|种|类|股|室|处|间|层)"
)
_MAG = r"(?:万|亿|千|百)"
_APPROX = r"(?:多|余|来|近|约|逾|超过)?"
_ARABIC = re.compile(r"(\d+(?:[.,]\d+)*)\s*" + _APPROX + r"\s*(" + _MAG + r"*)\s*" + _APPROX + r"\s*(" + _UNIT + r")?")
# 哪一年 / 每一年 / 第一次 name no number
_CHINESE = re.compile(r"(?<![哪每几第])([" + _CN_DIGIT + r"]+)" + _APPROX + r"(" + _UNIT + r")")
_PERCENT_CN = re.compile(r"百分之([" + _CN_DIGIT + r"\d.]+)")

_UNIT_CLASS = {"人": "person", "名": "person", "位": "person", "人次": "person", "日": "day", "号": "day",
               "周年": "anniversary", "年": "year", "年度": "year", "公斤": "kg", "千克": "kg", "千米": "km", "公里": "km"}
_MAG_VALUE = {"百": 100, "千": 1000, "万": 10_000, "亿": 100_000_000}
_CN_VALUE = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_CN_UNIT = {"十": 10, "百": 100, "千": 1000}
_EN_MAG = {"hundred": 100, "thousand": 1000, "million": 1_000_000, "billion": 1_000_000_000}
_EN_NUM = {w: i for i, w in enumerate("zero one two three four five six seven eight nine ten eleven twelve".split())}


def chinese_int(text: str) -> int | None:
    """Value of a Chinese numeral; digit strings like 二〇一〇 read digit by digit.

    >>> chinese_int("三千"), chinese_int("二〇一〇"), chinese_int("十五"), chinese_int("一万二千"), chinese_int("两")
    (3000, 2010, 15, 12000, 2)
    >>> chinese_int("千") is None
    True
    """
    if text and all(c in _CN_VALUE for c in text) and len(text) > 1:
        return int("".join(str(_CN_VALUE[c]) for c in text))
    total, section, digit, seen = 0, 0, None, False
    for c in text:
        if c in _CN_VALUE:
            digit, seen = _CN_VALUE[c], True
        elif c in _CN_UNIT:
            if digit is None and c != "十":
                return None
            section += (1 if digit is None else digit) * _CN_UNIT[c]
            digit, seen = None, True
        elif c in ("万", "亿"):
            section += digit or 0
            total = (total + section) * _MAG_VALUE[c]
            section, digit = 0, None
        else:
            return None
    if not seen:
        return None
    return total + section + (digit or 0)


@dataclass(frozen=True)
class Quantity:
    """A number as asserted: value (magnitude applied), unit class, and the text it came from."""

    value: float
    unit: str  # a unit class ("person", "year", "元", …) or "" when the number stands alone
    text: str


def unit_class(unit: str, value: float | None = None) -> str:
    """The unit's class; 年 after a number that is no calendar year is a duration ("三年")."""
    cls = _UNIT_CLASS.get(unit, unit)
    if cls == "year" and value is not None and not 1000 <= value <= 2200:
        return "years"
    return cls


def _is_item_marker(t: str, a: int, b: int) -> bool:
    """Is the bare number t[a:b] an enumeration marker: at a line or sentence start and followed
    by 、 / ． / "." (not a decimal), or in brackets ("（2）")?

    >>> _is_item_marker("1、到建党90周年时", 0, 1), _is_item_marker("共1、2两项", 1, 2), _is_item_marker("(2)加强", 1, 2)
    (True, False, True)
    """
    before = t[:a].rstrip(" \t")
    if before.endswith(("(", "（")) and t[b : b + 1] in (")", "）"):
        return True
    at_start = not before or before[-1] in "\n。；;！？!?:："
    return at_start and (t[b : b + 1] in ("、", "．") or (t[b : b + 1] == "." and not t[b + 1 : b + 2].isdigit()))


def quantities(text: str) -> list[Quantity]:
    """The numbers in `text` (normalised first), Chinese numerals with a unit included.

    >>> [(q.value, q.unit) for q in quantities("員工3000余名，成立於二〇〇三年，占25%")]
    [(3000.0, 'person'), (2003.0, 'year'), (25.0, '%')]
    >>> [(q.value, q.unit) for q in quantities("投资1.2亿元，三千名党员")]
    [(120000000.0, '元'), (3000.0, 'person')]
    """
    t = normalize(text)
    t = _PERCENT_CN.sub(lambda m: f"{chinese_int(m.group(1)) if not m.group(1)[0].isdigit() else m.group(1)}%", t)
    found: list[tuple[int, Quantity]] = []
    taken: list[tuple[int, int]] = []
    for m in _ARABIC.finditer(t):
        raw = m.group(1).replace(",", "")
        try:
            v = float(raw)
        except ValueError:
            continue
        for c in m.group(2) or "":
            v *= _MAG_VALUE[c]
        if not m.group(2) and not m.group(3) and _is_item_marker(t, m.start(), m.end()):
            continue  # "1、到建党90周年时" / "（2）": a list position, not a quantity
        found.append((m.start(), Quantity(v, unit_class(m.group(3) or "", v), m.group(0).strip())))
        taken.append(m.span())
    for m in _CHINESE.finditer(t):
        if any(a <= m.start() < b for a, b in taken):
            continue
        v = chinese_int(m.group(1))
        if v is None:
            continue
        found.append((m.start(), Quantity(float(v), unit_class(m.group(2), v), m.group(0))))
    if not found:  # English number words ("three members")
        for m in re.finditer(r"\b(" + "|".join(_EN_NUM) + r")\b", t):
            found.append((m.start(), Quantity(float(_EN_NUM[m.group(1)]), "", m.group(0))))
    # English magnitudes: "2.2 billion" is 22亿, "22 billion" is not
    out = []
    for pos, q in found:
        m = re.match(r"\s*(hundred|thousand|million|billion)\b", t[pos + len(q.text) :]) if q.text[-1:].isdigit() else None
        if m:
            q = Quantity(q.value * _EN_MAG[m.group(1)], q.unit, q.text + " " + m.group(1))
        out.append((pos, q))
    found = out
    return [q for _, q in sorted(found, key=lambda x: x[0])]


def quantity_found(q: Quantity, passage_quantities: Sequence[Quantity]) -> bool:
    """Same value, and the same unit class when both have one (a bare number in the statement
    matches any unit; "68名" matches "68人"; "2009年" never matches "2010年"; "68个" not "68人").

    >>> p = quantities("现有干部职工68人，其中党员32人，2010年成立")
    >>> [quantity_found(q, p) for q in quantities("68名干部职工、68个、2009年、2010年、32")]
    [True, False, False, True, True]
    """
    for p in passage_quantities:
        if abs(p.value - q.value) > 1e-9 * max(1.0, abs(q.value)):  # 2.2 × 10⁹ in floats
            continue
        if not q.unit or not p.unit or q.unit == p.unit:
            return True
    return False


def blank_numbers(text: str) -> str:
    """`text` with every number and its unit (Arabic digits, or a Chinese numeral before a unit)
    replaced by a space: the claim check's soft words must not glue a unit to the next word.

    >>> blank_numbers("6月26日到达，三千名党员")
    '  到达， 党员'
    """
    return _ARABIC.sub(" ", _CHINESE.sub(" ", text))


def question_constraints(question: str) -> list[str]:
    """What a question pins down that its answer's evidence must mention: numbers with units
    (years above all). A passage set lacking one of them answers a neighbouring question
    (another year, another figure), not this one.

    >>> question_constraints("2010年八岔村有多少名党员？")
    ['2010年']
    >>> question_constraints("『五个好』农村党组织有几个？")
    []
    """
    out = [q.text for q in quantities(question) if q.unit in ("year", "%", "元") or q.value >= 10 or q.unit == ""]
    # quoted terms are not constraints: users paraphrase the name of a campaign or a rule, and
    # on the seed dev split every quoted term missing from the passages was an answerable question
    return [o for i, o in enumerate(out) if o and o not in out[:i]]


def missing_constraints(question: str, passages_text: Sequence[str]) -> list[str]:
    """The question's constraints found in none of the passages (see `question_constraints`).

    >>> missing_constraints("2010年有多少名党员？", ["2009年有党员32人。"])
    ['2010年']
    >>> missing_constraints("2009年有多少名党员？", ["2009年有党员32人。"])
    []
    """
    keys = [normalize_answer(t) for t in passages_text]
    qs = [quantities(t) for t in passages_text]
    out: list[str] = []
    for c in question_constraints(question):
        cq = quantities(c)
        if cq and any(quantity_found(cq[0], pq) for pq in qs):
            continue
        if not cq and any(normalize_answer(c) in k for k in keys):
            continue
        out.append(c)
    return out
