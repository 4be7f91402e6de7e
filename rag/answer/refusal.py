"""Answerability: when the assistant must say the documents do not answer, and what it says.

Three signals, combined by `decide` (the threshold is calibrated on the seed set's dev split by
benchmarks/calibrate_refusal.py, the held-out split reported beside "never refuse"):

1. Retrieval evidence (before generation): the best passage's IDF-weighted coverage of the
   question's terms (rag.answer.scoring.evidence_features) below `answer.refuse_threshold`.
2. Question constraints (before generation): what the question pins down — a year, a number
   with its unit, a quoted term — appears in none of the retrieved passages
   (rag.cite.quantities.missing_constraints). The passages then answer a neighbouring question (the
   figure for another year, the list of another unit), which a small model happily answers
   with a citation. The refusal names what is missing and what the documents do have.
3. The model itself (after generation): it declines, or none of its statements survives the
   claim check (rag.cite.claims) — an answer that cannot be verified is not shown as one.

Deliberate compromise: a constraint is matched lexically (after script, width and numeral
folding); a question that writes the year differently from every document ("去年") is not
caught by rule 2 and is left to rules 1 and 3.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Sequence

from rag.cite.quantities import missing_constraints, quantities, quantity_found, unit_class
from rag.answer.prompts import REFUSAL
from rag.text.norm import cjk_count, normalize, normalize_answer, s2t
from rag.text.markers import strip_markers
from rag.text.sentences import sentence_spans

# What a model says when it declines (matched on the normalised form, any script).
_REFUSAL_RE = re.compile(
    r"无法回答|不能回答|无法确定|无法得知|没有(提到|提及|相关|关于|涉及|给出|说明)|未(提到|提及|涉及|说明|给出)"
    r"|资料中(没有|并未|未)|不包含|do not contain|does not contain|cannot answer|can not answer|no information|not mention"
)


def is_refusal(text: str) -> bool:
    """Does the model's answer decline? (checked together with the citations by the caller)

    >>> is_refusal("根據現有資料無法回答該問題。"), is_refusal("成立于2010年【1】。")
    (True, False)
    """

    t = normalize_answer(strip_markers(text))
    if not t:
        return True
    return bool(_REFUSAL_RE.search(t)) or bool(_REFUSAL_RE.search(text.lower()))


def _same_kind(constraint: str, passages_text: Sequence[str], limit: int = 3) -> list[str]:
    """What the passages have in place of a missing constraint: quantities of the same unit
    (the years they do mention for a missing year)."""
    cq = quantities(constraint)
    if not cq or not cq[0].unit:
        return []
    out: list[str] = []
    for t in passages_text:
        for q in quantities(t):
            if q.unit == cq[0].unit and not quantity_found(q, cq) and q.text not in out:
                out.append(q.text)
    return out[:limit]


def describe_missing(missing: Sequence[str], passages_text: Sequence[str], lang: str) -> str:
    """One sentence naming what the documents lack (and, for a number, what they have).

    >>> describe_missing(["2010年"], ["2009年有党员32人。"], "zh-Hans")
    '资料中没有提到“2010年”，只提到2009年。'
    >>> describe_missing(["五个好"], ["无关"], "en")
    'The documents do not mention “五个好”.'
    """
    if not missing:
        return ""
    m = missing[0]
    alt = _same_kind(m, passages_text)
    if lang == "en":
        s = f"The documents do not mention “{m}”"
        return s + (f" (only {', '.join(alt)})." if alt else ".")
    s = f"资料中没有提到“{m}”"
    s += f"，只提到{'、'.join(alt)}。" if alt else "。"
    if lang == "zh-Hant":

        s = s2t(s)
    return s


_ASKED_COUNT = re.compile(r"(?:多少|几)(个?[^\s，,。？?！!、的]{1,3})")


def asked_unit(question: str) -> str | None:
    """The unit class of the count a Chinese question asks for ("多少名职工" → person), or None.

    >>> asked_unit("苏里格项目部有多少名职工？"), asked_unit("龙泉山环山公路全长多少公里？")
    ('person', 'km')
    >>> asked_unit("宝泰隆公司是哪一年组建的？") is None, asked_unit("召开了几个层面的座谈会？") is None
    (True, True)
    >>> asked_unit("用了几个月？")
    '个月'
    """
    m = _ASKED_COUNT.search(normalize(question))  # script-folded: 幾戶 reads as 几户
    if not m:
        return None
    qs = quantities("1" + m.group(1))
    unit = unit_class(qs[0].unit, None) if qs and qs[0].unit else None
    # 个 is the generic classifier: "几个层面", "多少个村" are answered by "5个", "12家", "12个村"
    return None if unit == "个" else unit


def unit_mismatch(question: str, statements: Sequence[str]) -> tuple[str, str] | None:
    """(asked unit class, what the answer counts instead) when the question asks for a count in
    one unit and the verified statements give counts only in others — the neighbouring fact of
    a near miss ("多少名职工" answered with "19支作业队"); None otherwise.

    >>> unit_mismatch("苏里格项目部有多少名职工？", ["苏里格项目部有19支作业队"])
    ('person', '19支')
    >>> unit_mismatch("该局有多少名党员？", ["该局现有党员32人"]) is None  # 名 and 人 both count people
    True
    >>> unit_mismatch("该村有多少名党员？", ["该村党员很多"]) is None  # no count given: not this rule
    True
    """
    want = asked_unit(question)
    if want is None:
        return None
    found = [q for s in statements for q in quantities(s)]
    counts = [q for q in found if q.unit and unit_class(q.unit, q.value) not in ("year", "years", "月", "day", "%")]
    if not counts or any(unit_class(q.unit, q.value) == want for q in found):
        return None
    return want, counts[0].text


def describe_unit_mismatch(instead: str, lang: str) -> str:
    """Why an answer with the neighbouring count is refused, in the answer's language.

    >>> describe_unit_mismatch("19支", "zh-Hans")
    '资料中没有提到问题所问单位的数字，只提到“19支”。'
    """
    if lang == "en":
        return f"The documents give no figure in the unit the question asks for; they only mention “{instead}”."
    text = f"资料中没有提到问题所问单位的数字，只提到“{instead}”。"
    return s2t(text) if lang == "zh-Hant" else text


def refusal_text(lang: str, reason: str = "") -> str:
    """The refusal sentence in the question's language, with the reason when one is known."""
    base = REFUSAL.get(lang, REFUSAL["zh-Hans"])
    return f"{base}{' ' if lang == 'en' else ''}{reason}" if reason else base


@dataclass(frozen=True)
class PreCheck:
    """The decision before generation: `refuse`, its `reason` (shown to the user, may be ""),
    and the features it was made from (recorded by the eval harness for calibration)."""

    refuse: bool
    reason: str = ""
    features: dict = field(default_factory=dict)


def asked_value_found(question: str, passages: Sequence) -> bool | None:
    """Does any sentence of the passages hold the value the question asks for next to the
    asked noun (rag.answer.attributes)? None when the question asks for no recognisable attribute."""
    from rag.answer.attributes import asked_attribute, match_level

    attr = asked_attribute(question)
    if attr is None:
        return None
    return any(match_level(attr, p.text[a:b]) == 2 for p in passages for a, b in sentence_spans(p.text))


def _asked_reason(question: str, lang: str) -> str:
    from rag.answer.attributes import asked_attribute

    attr = asked_attribute(question)
    noun = attr.nouns[0] if attr and attr.nouns else ""
    if not noun:
        return ""
    if lang == "en":
        return f"The documents do not give the {attr.kind} asked for ({noun})."
    s = f"资料中没有找到“{noun}”的相关数值或名称。"
    if lang == "zh-Hant":

        s = s2t(s)
    return s


def pre_check(
    question: str, passages: Sequence, *, threshold: float, feature: str, lang: str, use_asked_value: bool = False
) -> PreCheck:
    """Refuse before generation? (signals 1 and 2 of the module docstring; with
    `use_asked_value`, also when the question asks for an attribute — a count, a year, a name
    beside a title — and no sentence holds one next to the asked noun)."""
    from rag.answer.scoring import evidence_features

    if not passages:
        return PreCheck(True, "", {"evidence": 0.0, "missing": [], "asked_value": None})
    feats = evidence_features(question, passages)
    asked = asked_value_found(question, passages)
    ev = feats[feature]
    texts = [p.chunk.heading + "\n" + p.text for p in passages]
    missing = missing_constraints(question, texts)
    if lang == "en":  # an English quoted term cannot be matched in Chinese text; numbers and Chinese can
        missing = [m for m in missing if cjk_count(m) or any(c.isdigit() for c in m)]
    info = {"evidence": round(ev, 4), "missing": missing, "asked_value": asked, **{f"f_{k}": round(v, 4) for k, v in feats.items()}}
    if missing:
        return PreCheck(True, describe_missing(missing, texts, lang), info)
    if use_asked_value and asked is False:
        return PreCheck(True, _asked_reason(question, lang), info)
    if ev < threshold:
        return PreCheck(True, "", info)
    return PreCheck(False, "", info)
