"""The entity a follow-up refers to, and the script/token helpers that condensing
(rag.answer.condense, rag.answer.followup) and query translation (rag.answer.translate) share.

The entity of a question is its longest named unit: a run of jieba noun/name tokens (posseg
nt/ns/nr/nz/j…, and single characters such as 南 in 南/马路/小学) ending in a name tag or a known
suffix (公司, 小学, 村, 市委, 党支部…); 他/她 prefer a unit ending in a person name, 它 one that does
not, 它们 two units joined by 和/与. English: capitalised words plus a suffix word ("Bacha village").

Compromises: the lexicon (suffixes, question words, pronoun patterns) is hand-written and
lexical — no synonyms. The underscore helpers (`simplified`, `word_tokens`, `QW`…) are shared by the
condensing modules only; they were split out of one module (rag.answer.condense, which re-exports what
other code imports) and keep their private names so that split changed no behaviour.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Sequence

from rag.text.norm import cjk_count, detect_script, fold_width, s2t, t2s

SUFFIXES = tuple(sorted(
    "公司 集团 学校 小学 中学 大学 学院 医院 银行 协会 村 社区 街道 镇 乡 县 区 市 省 市委 县委 区委 党委 "
    "党支部 支部 党总支 委员会 政府 局 厅 部 所 站 队 大队 车间 厂 矿 社 中心 网 日报 电视台 报社".split(), key=len, reverse=True))
_NAMED = {"nt", "ns", "nr", "nz", "nrt", "nrfg", "j"}
_NOUNISH = _NAMED | {"n", "ng", "s", "f", "b", "l", "x", "vn", "eng"}
QW = re.compile(r"什么|哪|多少|几|谁|吗|如何|怎|是否|为何|何")
PRON = re.compile(r"(?<!其)(?:它们|他们|她们|它|他|她)|(?<![尤极与])其(?![他它中实余次间])|这里|那里|这儿|那儿")
DEM = re.compile(r"(?<![应因如彼])(?:这个|那个|这些|那些|(?:该|此|这|那)(?![么样时里儿些外后])[个位项次家所座条种批]?)")
LEAD = re.compile(r"^\s*(?:那么|那|还有|另外)(?![个些里儿样时])[，,\s]*")
PARTICLE = {"的", "了", "呢", "吧", "啊", "呀"}
OPTIONAL = set("是 有 在 和 与 及 于 把 被 对 都 也 就 还 又".split())  # a rewrite may drop these
YEAR = re.compile(r"(?<!\d)(1[89]\d\d|20\d\d)(?!\d)")
EN_PRON = re.compile(r"\b(it|they|them|he|she|him|its|their|his|her)\b", re.I)
EN_DROP = set("it its they them their he she him his her there this that these those and so then also about the a an".split())
_EN_SUFFIX = set("village county city town district province committee company school university college "
                 "bureau branch party group team factory hospital".split())
EN_QW = set("what which who whom whose when where why how is are was were do does did and the in of".split())

# ------------------------------------------------------------------------------ text helpers


def simplified(text: str) -> str:
    return t2s(fold_width(text))


def script_pair(text: str) -> tuple[str, str]:
    """(working text, simplified form of equal length): spans found in the second slice the first.
    When folding changes the length the simplified form is used for both."""
    s = simplified(text)
    return (text, s) if len(s) == len(text) else (s, s)


def is_english(text: str) -> bool:
    return cjk_count(text) == 0


def is_english_question(text: str) -> bool:
    """English, possibly quoting a few Chinese names (rag.answer.assistant.answer_language's rule)."""
    latin = len(re.findall(r"[A-Za-z]+", text))
    return is_english(text) or (latin >= 3 and latin > cjk_count(text) / 2)


def in_script(text: str, question: str) -> str:
    """`text` in the script of `question`, converting only clauses that need it (s2t over text that
    already is traditional "corrects" variants such as 周年 → 週年); English questions: unchanged.

    >>> in_script("宝泰隆公司是哪一年組建的？", "它是哪一年組建的？")
    '寶泰隆公司是哪一年組建的？'
    """
    script = "other" if is_english(question) else detect_script(question)
    if script == "simplified":
        return t2s(text)
    if script != "traditional":
        return text
    parts = re.split(r"(?<=[，,、；;：:？?。])", text)
    return "".join(s2t(p) if any(t2s(c) == c != s2t(c) for c in p) else p for p in parts)


@lru_cache(maxsize=1024)
def word_tokens(simp: str) -> tuple[tuple[str, str, int], ...]:
    """jieba posseg tokens (word, flag, start) of a simplified text."""
    import jieba.posseg as pseg

    out, i = [], 0
    for p in pseg.lcut(simp):
        out.append((p.word, p.flag, i))
        i += len(p.word)
    return tuple(out)


# ------------------------------------------------------------------------------ entities


def eligible_word(word: str, flag: str) -> bool:
    if PRON.search(word) or QW.search(word) or word in PARTICLE or word in ("现在", "目前", "现有"):
        return False
    if word.endswith(SUFFIXES) and (len(word) > 1 or flag[:1] not in "uqmrpcdv"):  # 哪所(u)大学: no
        return True
    return flag in _NOUNISH and bool(re.fullmatch(r"[\u4e00-\u9fffA-Za-z0-9]+", word))


def units(simp: str) -> list[tuple[int, int]]:
    """Spans of the named units of a simplified Chinese text (see module doc): runs of eligible
    tokens cut after their last name tag or suffix; a suffix that opens the next token counts
    (青山/县委书记 → 青山县委), a one-character suffix takes the word before it (联合/村), and
    a bare suffix word (党支部, 公司) is no name.

    >>> s = "青山县委书记和联合村是谁？"; [s[a:b] for a, b in units(s)]
    ['青山县委', '联合村']
    """
    toks = word_tokens(simp) + (("。", "x", len(simp)),)
    ok = [eligible_word(w, f) for w, f, _ in toks]
    for i in range(1, len(toks)):  # 联合(v)/村: a one-character suffix needs its word
        w, f = toks[i - 1][:2]
        if toks[i][0] in SUFFIXES and len(toks[i][0]) == 1 and not ok[i - 1] and len(w) >= 2 and f[:1] not in "pcurdmqyx":
            ok[i - 1] = not QW.search(w)
    out, run = [], []
    for tok, good in zip(toks, ok):
        if good:
            run.append(tok)
            continue
        ends = [k for k, (w, f, _) in enumerate(run) if f in _NAMED or w.endswith(SUFFIXES)]
        if ends:
            a, b = run[0][2], run[ends[-1]][2] + len(run[ends[-1]][0])
            nxt = run[ends[-1] + 1][0] if ends[-1] + 1 < len(run) else ""
            b += next((len(x) for x in SUFFIXES if nxt.startswith(x) and len(x) >= 2), 0)
            if b - a >= 2 and simp[a:b] not in SUFFIXES:
                out.append((a, b))
            org = [k for k in ends if run[k][0].endswith(SUFFIXES)]
            if org and org[-1] < ends[-1]:  # 金山煤矿/矿长/李为民: the organisation alone too
                out.append((a, run[org[-1]][2] + len(run[org[-1]][0])))
        run = []
    return out


def entity_span(simp: str) -> tuple[int, int] | None:
    """Span of the longest named unit (the first of equal length), or None.

    >>> s = "南马路小学始建于哪一年？"; a, b = entity_span(s); s[a:b]
    '南马路小学'
    >>> entity_span("有多少名党员？"), entity_span("它下设多少个党支部？")
    (None, None)
    """
    return max(units(simp), key=lambda u: u[1] - u[0], default=None)


def entity_en(text: str) -> str:
    """English named unit: capitalised words (not a sentence-initial question word) and a
    following suffix word.

    >>> entity_en("What was the income in Bacha village in 1998?"), entity_en("And in 2009?")
    ('Bacha village', '')
    """
    words = re.findall(r"[A-Za-z][\w'-]*", text)
    best, run = "", []
    for i, w in enumerate(words + [""]):
        if (w[:1].isupper() and not (i == 0 and w.lower() in EN_QW)) or (run and w.lower() in _EN_SUFFIX):
            run.append(w)
            continue
        best, run = max(best, " ".join(run), key=len), []
    return best


def entity_of(text: str) -> str:
    """The entity of one question, in its own script ("" if none)."""
    if is_english(text):
        return entity_en(text)
    orig, simp = script_pair(text)
    sp = entity_span(simp)
    return orig[sp[0] : sp[1]] if sp else ""


def conversation_entity(earlier: Sequence[str], question: str = "") -> str:
    """The entity of the latest earlier question that has one. A plural pronoun (它们) takes two
    units joined by 和/与/及/、; a personal one (他/她) prefers a unit with a person name (nr)."""
    plural = bool(re.search(r"们|們|\bthey\b|\btheir\b", question, re.I))
    person = bool(re.search(r"(?<!其)[他她]", simplified(question))) or bool(re.search(r"\b(he|she|him|his|her)\b", question, re.I))
    for q in reversed(earlier):
        if is_english(q):
            if entity_en(q):
                return entity_en(q)
            continue
        orig, simp = script_pair(q)
        us = units(simp)
        top = sorted(u for u in us if not any(v != u and v[0] <= u[0] and u[1] <= v[1] for v in us))
        if plural:
            for (a, b), (c, d) in zip(top, top[1:]):
                if simp[b:c] in ("和", "与", "及", "、", "以及"):
                    return orig[a:d]
        named = {u: any(f in ("nr", "nrfg", "nrt") and i + len(w) == u[1] for w, f, i in word_tokens(simp)) for u in us}
        pick = [u for u in us if named[u] == person] or us
        best = max(pick, key=lambda u: u[1] - u[0], default=None)
        if best:
            return orig[best[0] : best[1]]
    return ""

