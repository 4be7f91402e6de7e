"""Claim-level support checking: is what a statement *asserts* in the passage it cites?

Bigram overlap (the old check) passes a statement made of the passage's words that says
something the passage does not: a list of items that occur nowhere, a neighbouring year, a name
swapped for another. Here a statement is reduced to its answer-bearing items and each must be
found in the cited passage after script and width folding (rag.text.norm.normalize):

- strict items, all required: numbers with their unit and magnitude (`3000名`, `2010年`,
  `25%`, `三千名` = `3000名`), quoted terms (`『六学』`, `“三包”`, `《…》`), list items (a
  statement enumerating with 、/；), and names (jieba's proper-noun tags nr/ns/nt/nz);
- soft items: the content words the statement adds beyond the question; most must be found,
  so a paraphrase that swaps a verb (成立/组建) still passes while invented content does not;
- a statement that only repeats the question, is empty, or stops mid-clause ("…包括：",
  "… is.") is never supported (`reason` says which).

An English statement over a Chinese passage has no words in common with it: its numbers and
any Chinese it quotes are strict items, and the rest is judged by an optional `similarity`
callback (multilingual embeddings), because no lexical rule can.

Deliberate compromise: this is lexical and rule-based (fast, explainable, no second model on a
2-core CPU); it cannot verify a paraphrase whose every content word is a synonym, and such a
statement is shown as unverified rather than as checked — the safe side for a user who quotes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Sequence

from rag.text.sentences import sentence_spans
from rag.text.norm import normalize, strip_punct_space

# ---------------------------------------------------------------- numbers

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


def _unit_class(unit: str, value: float | None = None) -> str:
    """The unit's class; 年 after a number that is no calendar year is a duration ("三年")."""
    cls = _UNIT_CLASS.get(unit, unit)
    if cls == "year" and value is not None and not 1000 <= value <= 2200:
        return "years"
    return cls


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
        found.append((m.start(), Quantity(v, _unit_class(m.group(3) or "", v), m.group(0).strip())))
        taken.append(m.span())
    for m in _CHINESE.finditer(t):
        if any(a <= m.start() < b for a, b in taken):
            continue
        v = chinese_int(m.group(1))
        if v is None:
            continue
        found.append((m.start(), Quantity(float(v), _unit_class(m.group(2), v), m.group(0))))
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


# ---------------------------------------------------------------- other items

_QUOTED = re.compile(r"[『「“\"‘《〈]([^『』「」“”\"‘’《》〈〉]{1,40})[』」”\"’》〉]")
_LIST_SEP = re.compile(r"[、；;]")
_LEAD = re.compile(r"^.{0,40}?(?:包括了|包括|分别是|分别为|主要有|主要是|指的是|是指|就是|即|是|有|为)[:：]?|^.{0,40}?[:：]")
# words that say nothing checkable (connectives, copulas, generic verbs of answering)
_FUNCTION = frozenset(
    """
    的 了 是 在 有 和 与 及 或 也 都 就 还 又 并 而 等 等等 其中 以及 通过 进行 开展 实施 实行 主要 分别
    包括 包含 就是 即 为 成为 作为 共 共有 一共 总共 约 大约 现有 目前 现在 已经 已 于 对 把 被 从 向 由
    根据 资料 显示 表明 提到 指出 其 该 这 那 这些 那些 它 它们 他们 此 同时 此外 另外 并且 因此 所以 答案
    以 所 之 个 方面 工作 情况 问题 内容 具体 如下 以下 几 多少 哪些 什么 如何 怎样 为什么 因为 由于 为了 是因为
    """.split()
)
_DANGLING_ZH = ("是", "为", "包括", "包含", "有", "和", "及", "与", "即", "如下", "分别是", "主要有")
_DANGLING_EN = {"is", "are", "was", "were", "the", "a", "an", "of", "and", "or", "to", "include", "includes",
                "including", "by", "in", "on", "with", "as", "that", "which", "be"}


@lru_cache(maxsize=4096)
def _key(text: str) -> str:
    return strip_punct_space(normalize(text))


def _in(item: str, passage_key: str) -> bool:
    k = _key(item)
    return bool(k) and k in passage_key


def _bigram_recall(item: str, passage_key: str) -> float:
    k = _key(item)
    if len(k) < 2:
        return 1.0 if k and k in passage_key else 0.0
    grams = {k[i : i + 2] for i in range(len(k) - 1)}
    return sum(g in passage_key for g in grams) / len(grams)


def is_truncated(statement: str, verbatim: bool = False) -> bool:
    """A statement that stops mid-clause, or has no content, is not an answer.

    >>> [is_truncated(s) for s in ("主要内容包括：", "The secretary is.", "会议于6月25日召开。", "『六学", "。")]
    [True, True, False, True, True]
    """
    s = statement.strip()
    body = s.rstrip("。.!！?？ \t")
    if len(_key(body)) < 2:
        return True
    if body.endswith((":", "：", ",", "，", "、", "；", ";", "(", "（", "“", "『", "「", "《")):
        return True
    for o, c in ("『』", "「」", "《》", "（）", "()", "“”"):
        # an open bracket is a cut-off quote, unless the statement is the document's own words
        if body.count(o) > body.count(c) and not verbatim:
            return True
    words = re.findall(r"[A-Za-z]+", body)
    if words and len(words) >= len(body) / 8 and words[-1].lower() in _DANGLING_EN and body.endswith(words[-1]):
        return True
    return normalize(body).endswith(_DANGLING_ZH) and len(_key(body)) < 40 and not _QUOTED.search(body[-6:])


def quoted_terms(text: str) -> list[str]:
    """Terms in quotation marks or book-title marks.

    >>> quoted_terms("实施『六学』措施和“三包”制度，见《通知》")
    ['六学', '三包', '通知']
    """
    return [m.group(1).strip() for m in _QUOTED.finditer(text) if m.group(1).strip()]


def list_items(statement: str) -> list[str]:
    """Items of an enumerating statement (three or more parts separated by 、 or ；), the lead-in
    ("…包括：", "…是") cut from the first.

    >>> list_items("三带是指带头致富、带领致富、带动致富")
    ['带头致富', '带领致富', '带动致富']
    >>> list_items("会议在6月25日召开")
    []
    """
    s = re.sub(r"[。.!！]+$", "", statement.strip())
    parts = [p.strip(" ，,") for p in _LIST_SEP.split(s)]
    if len(parts) < 3:
        return []
    first = _LEAD.sub("", parts[0], count=1).strip(" ，,")
    parts[0] = first or parts[0]
    # the last item may carry a tail ("…和强化约束激励学等六项措施"): keep what precedes 等
    parts[-1] = re.split(r"等|和其他", parts[-1])[0].strip() or parts[-1]
    # a first item far longer than the others still holds a lead-in without a colon
    # ("结合…活动，某局提出要打造一流队伍"): keep its tail, as long as the longest other item
    # (items of one list are of a length; a longer tail takes in the model's own lead-in words)
    longest = max(len(p) for p in parts[1:])
    if len(parts[0]) > longest + 3:
        parts[0] = re.split(r"[，,：:]", parts[0])[-1].strip()
        if len(parts[0]) > longest + 3:
            parts[0] = parts[0][-longest:]
    return [p for p in parts if len(_key(p)) >= 2]


@lru_cache(maxsize=1024)
def _names(text: str) -> tuple[str, ...]:
    import jieba.posseg as pseg

    out: list[str] = []
    # HMM on: names are exactly the words jieba's dictionary lacks (statements are short, so
    # the HMM's cost on long inputs does not arise)
    for w in pseg.lcut(normalize(text)[:400]):
        if w.flag in ("nr", "ns", "nt", "nz") and len(w.word) >= 2 and w.word not in out:
            out.append(w.word)
    return tuple(out)


@lru_cache(maxsize=1024)
def _content_words(text: str, question: str) -> tuple[str, ...]:
    import jieba

    qk = _key(question)
    out: list[str] = []
    # numbers with their units are strict items: cut them out first, so jieba cannot glue a
    # unit to the next word ("26日到") and make a soft word no passage has
    body = _ARABIC.sub(" ", _CHINESE.sub(" ", normalize(text)[:400]))
    for w in jieba.lcut(body):
        k = _key(w)
        if len(k) < 2 or k in _FUNCTION or k.isdigit() or (qk and k in qk) or quantities(k):
            continue  # numbers are strict items, checked with their units
        if re.fullmatch(r"[a-z]+", k) and len(k) < 3:
            continue
        if k not in out:
            out.append(k)
    return tuple(out)


# ---------------------------------------------------------------- the check


@dataclass(frozen=True)
class ClaimCheck:
    """Result of `check_claim`. `score` is the share of items found (for display and ranking);
    `supported` is the decision; `missing` lists the items not found; `reason` is "" when
    supported, else "truncated" | "restates the question" | "missing content" | "dissimilar"."""

    supported: bool
    score: float
    missing: tuple[str, ...] = ()
    reason: str = ""


def _latin_share(text: str) -> float:
    k = _key(text)
    return sum(c.isascii() for c in k) / len(k) if k else 0.0


def check_claim(
    statement: str,
    passage: str,
    question: str = "",
    *,
    similarity: Callable[[str, str], float] | None = None,
    min_similarity: float = 0.5,
    query: str = "",
) -> ClaimCheck:
    """Is `statement` backed by `passage`? (markers must already be stripped)

    `query`, for an English statement over a Chinese passage: the Chinese form of the question
    (rag.answer.condense.to_chinese_query). Cross-lingual cosine is weak on e5-small, so once every
    number and romanised name of the statement is found, the passage sentences holding them
    may agree with `query` (Chinese to Chinese) instead of with the English statement.

    >>> p = "寶泰隆公司組建於2003年，現有員工3000名。"
    >>> check_claim("宝泰隆公司于2003年组建", p, "宝泰隆公司是哪一年组建的？").supported
    True
    >>> c = check_claim("宝泰隆公司于2004年组建", p, "宝泰隆公司是哪一年组建的？"); (c.supported, c.missing)
    (False, ('2004年',))
    >>> check_claim("宝泰隆公司是哪一年组建的", p, "宝泰隆公司是哪一年组建的？").reason
    'restates the question'
    """
    pk = _key(passage)
    sk = _key(statement)
    if is_truncated(statement, verbatim=len(sk) >= 6 and sk in pk):
        return ClaimCheck(False, 0.0, (), "truncated")
    pq = quantities(passage)
    strict_missing: list[str] = []
    n_strict = 0
    qk = _key(question)
    for q in quantities(statement):
        if not q.text[:1].isdigit() and qk and _key(q.text) in qk:
            continue  # a Chinese numeral the question has too is part of a name (七台河, 三河市)
        n_strict += 1
        # the literal text counts too: a numeral inside a name in the passage is no quantity claim
        if not (quantity_found(q, pq) or _in(q.text, pk)):
            strict_missing.append(q.text)
    for t in quoted_terms(statement):
        if qk and _key(t) and _key(t) in qk:
            continue  # the question's own term (its topic), as with names: not what the answer adds
        n_strict += 1
        if not _in(t, pk):
            strict_missing.append(t)
    for item in list_items(statement):
        n_strict += 1
        if not (_in(item, pk) or _bigram_recall(item, pk) >= 0.75):
            strict_missing.append(item)
    english = _latin_share(statement) > 0.5 and _latin_share(passage) < 0.3
    if english:
        # Chinese runs quoted inside an English statement (names, terms) must be in the passage
        for run in re.findall(r"[\u3400-\u9fff]{2,}", statement):
            if _key(run) in _FUNCTION or _key(run) in ("现有资料", "资料中"):
                continue  # a model's stray Chinese filler ("According to the existing资料") claims nothing
            n_strict += 1
            if not _in(run, pk):
                strict_missing.append(run)
        anchors = _english_anchors(statement, passage, question, strict_missing)
        n_strict += len(anchors["names"])
        sim = float(similarity(statement, passage)) if similarity is not None else None
        if sim is not None and query and n_strict and not strict_missing:
            # Chinese to Chinese is judged at the full bar, not the lowered cross-lingual one
            held = [passage[a:b] for a, b in sentence_spans(passage) if any(a <= x < b for x in anchors["at"])]
            if float(similarity(query, "".join(held) or passage)) >= min_similarity:
                sim = max(sim, min_similarity)
        found = n_strict - len(strict_missing)
        score = (found / n_strict) if n_strict else (sim if sim is not None else 0.0)
        if strict_missing:
            return ClaimCheck(False, round(score, 4), tuple(strict_missing), "missing content")
        if sim is None:
            ok = n_strict > 0
            return ClaimCheck(ok, round(score, 4), (), "" if ok else "dissimilar")
        # numbers and quoted Chinese all found: the embedding only has to agree loosely (an
        # English sentence and its Chinese source sit low on e5-small's cosine scale)
        need = min_similarity / 2 if n_strict else min_similarity
        if sim < need:
            return ClaimCheck(False, round(min(score, sim), 4), (), "dissimilar")
        return ClaimCheck(True, round(max(score, sim) if n_strict else sim, 4))
    for name in _names(statement):
        if any(name in m for m in strict_missing) or _in(name, _key(question)):
            continue
        n_strict += 1
        if not _in(name, pk):
            strict_missing.append(name)
    soft = [w for w in _content_words(statement, question) if not any(w in _key(m) for m in strict_missing)]
    soft_found = [w for w in soft if w in pk]
    n_items = n_strict + len(soft)
    found = n_strict - len(strict_missing) + len(soft_found)
    score = found / n_items if n_items else 0.0
    if strict_missing:
        return ClaimCheck(False, round(score, 4), tuple(strict_missing), "missing content")
    if n_items == 0:
        return ClaimCheck(False, 0.0, (), "restates the question")
    # soft words: most must be found; with strict items found, half is enough (a paraphrased
    # verb beside a correct number); a single soft word alone must be found
    need = 0.5 if n_strict else (1.0 if len(soft) == 1 else 0.6)
    if soft and len(soft_found) / len(soft) < need:
        missing = tuple(w for w in soft if w not in soft_found)
        return ClaimCheck(False, round(score, 4), missing, "missing content")
    return ClaimCheck(True, round(score, 4))


def _english_anchors(statement: str, passage: str, question: str, strict_missing: list[str]) -> dict:
    """Romanised names of an English statement (each must be in the passage: appended to
    `strict_missing` when not) and the passage positions of its names and literal numbers."""
    from rag.text.pinyin import find_name, romanized_names

    at: list[int] = []
    names = romanized_names(statement, question)
    for name in names:
        span = find_name(name, passage)
        if span is None:
            strict_missing.append(name)
        else:
            at.append(span[0])
    for num in re.findall(r"\d+(?:\.\d+)?", statement):
        i = passage.find(num)
        if i >= 0:
            at.append(i)
    return {"names": names, "at": at}


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
    keys = [_key(t) for t in passages_text]
    qs = [quantities(t) for t in passages_text]
    out: list[str] = []
    for c in question_constraints(question):
        cq = quantities(c)
        if cq and any(quantity_found(cq[0], pq) for pq in qs):
            continue
        if not cq and any(_key(c) in k for k in keys):
            continue
        out.append(c)
    return out
