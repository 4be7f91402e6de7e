"""Follow-up questions made standalone (for retrieval and the answer prompt only — never part of
the answer text), and English questions turned into Chinese queries.

`condense(question, history, chat_model=None) -> Condensed`
- Unchanged when no context is needed: no pronoun/ellipsis, or the question names its own entity.
- With a chat model: a few-shot prompt (fixed system prompt with invented examples, then the
  previous question, the entity, the follow-up) asks for the follow-up with only the pronoun or
  the ellipsis filled in. The rewrite is CHECKED (`check_rewrite`: one question, not an answer;
  bounded length; the conversation's entity whole; no new number; every content word of the
  follow-up kept, script-folded; its pronoun/ellipsis gone) and replaced by the heuristic when
  the check fails — the 1.5B model wrote 组建 → 成立, and retrieval then missed 組建於.
- The heuristic: pronouns (它/他/其/该X/这个/这里, it/its/they/there…) are replaced by the entity;
  an ellipsis ("副组长呢？", "那2009年呢？", "And in 2009?") is rebuilt from the previous question
  with the changed slot swapped: a year, an entity, a word the fragment contains or extends, the
  "多少X" slot, else the noun before the question word. Earlier follow-ups are resolved first, so
  chains work. The result keeps the question's script (OpenCC) and words; never keyword soup.
- The entity: the longest named unit of the latest earlier question that has one — a run of
  jieba noun/name tokens (posseg nt/ns/nr/nz/j…, and single characters such as 南 in 南/马路/小学)
  ending in a name tag or a known suffix (公司, 小学, 村, 市委, 党支部…); 他/她 prefer a unit ending
  in a person name, 它 one that does not, 它们 two units joined by 和/与. English: capitalised words
  plus a suffix word ("Bacha village").

`to_chinese_query(question, chat_model, cache=None) -> str`: an English question as a simplified
Chinese query by the model (checked: Chinese, every number kept, bounded), cached per model and
normalised question (in-memory LRU, optionally a JSON file written atomically); "" = fall back.

Compromises: the heuristic knows no synonyms and cannot resolve a referent named only in an
answer (answers are not used at all); 其中 ("among them") and a 这 that points at a statement are
not resolved; the checks are lexical, so a rewrite that reorders words passes and one that
paraphrases any word fails — by design. Names in translations are not verified (the 1.5B model
transliterates Nanmalu as 南明); only numbers are. Only the last `rag.limits.LIMITS.condense_chars`
characters of each of the last 4 earlier questions are read (the tokenizer's cost is bounded
whatever a caller passes); the question itself is bounded by its callers (rag.answer).
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

from rag.limits import bounded_tail
from rag.text.markers import parse_markers
from rag.textnorm import cjk_count, detect_script, fold_width, normalize, s2t, t2s

log = logging.getLogger(__name__)

MAX_TOKENS = 64
SUFFIXES = tuple(sorted(
    "公司 集团 学校 小学 中学 大学 学院 医院 银行 协会 村 社区 街道 镇 乡 县 区 市 省 市委 县委 区委 党委 "
    "党支部 支部 党总支 委员会 政府 局 厅 部 所 站 队 大队 车间 厂 矿 社 中心 网 日报 电视台 报社".split(), key=len, reverse=True))
_NAMED = {"nt", "ns", "nr", "nz", "nrt", "nrfg", "j"}
_NOUNISH = _NAMED | {"n", "ng", "s", "f", "b", "l", "x", "vn", "eng"}
_QW = re.compile(r"什么|哪|多少|几|谁|吗|如何|怎|是否|为何|何")
_PRON = re.compile(r"(?<!其)(?:它们|他们|她们|它|他|她)|(?<![尤极与])其(?![他它中实余次间])|这里|那里|这儿|那儿")
_DEM = re.compile(r"(?<![应因如彼])(?:这个|那个|这些|那些|(?:该|此|这|那)(?![么样时里儿些外后])[个位项次家所座条种批]?)")
_LEAD = re.compile(r"^\s*(?:那么|那|还有|另外)(?![个些里儿样时])[，,\s]*")
_PARTICLE = {"的", "了", "呢", "吧", "啊", "呀"}
_OPTIONAL = set("是 有 在 和 与 及 于 把 被 对 都 也 就 还 又".split())  # a rewrite may drop these
_YEAR = re.compile(r"(?<!\d)(1[89]\d\d|20\d\d)(?!\d)")
_EN_PRON = re.compile(r"\b(it|they|them|he|she|him|its|their|his|her)\b", re.I)
_EN_DROP = set("it its they them their he she him his her there this that these those and so then also about the a an".split())
_EN_SUFFIX = set("village county city town district province committee company school university college "
                 "bureau branch party group team factory hospital".split())
_EN_QW = set("what which who whom whose when where why how is are was were do does did and the in of".split())


@dataclass(frozen=True)
class Condensed:
    """`text`: the standalone question (retrieval and prompt only); `method`: "model" |
    "heuristic" | "unchanged"; `entity`: the entity carried over, in the question's script, or ""."""

    text: str
    method: str
    entity: str = ""


# ------------------------------------------------------------------------------ text helpers


def _simp(text: str) -> str:
    return t2s(fold_width(text))


def _pair(text: str) -> tuple[str, str]:
    """(working text, simplified form of equal length): spans found in the second slice the first.
    When folding changes the length the simplified form is used for both."""
    s = _simp(text)
    return (text, s) if len(s) == len(text) else (s, s)


def _english(text: str) -> bool:
    return cjk_count(text) == 0


def _english_question(text: str) -> bool:
    """English, possibly quoting a few Chinese names (rag.answer.answer_language's rule)."""
    latin = len(re.findall(r"[A-Za-z]+", text))
    return _english(text) or (latin >= 3 and latin > cjk_count(text) / 2)


def _in_script(text: str, question: str) -> str:
    """`text` in the script of `question`, converting only clauses that need it (s2t over text that
    already is traditional "corrects" variants such as 周年 → 週年); English questions: unchanged.

    >>> _in_script("宝泰隆公司是哪一年組建的？", "它是哪一年組建的？")
    '寶泰隆公司是哪一年組建的？'
    """
    script = "other" if _english(question) else detect_script(question)
    if script == "simplified":
        return t2s(text)
    if script != "traditional":
        return text
    parts = re.split(r"(?<=[，,、；;：:？?。])", text)
    return "".join(s2t(p) if any(t2s(c) == c != s2t(c) for c in p) else p for p in parts)


@lru_cache(maxsize=1024)
def _tokens(simp: str) -> tuple[tuple[str, str, int], ...]:
    """jieba posseg tokens (word, flag, start) of a simplified text."""
    import jieba.posseg as pseg

    out, i = [], 0
    for p in pseg.lcut(simp):
        out.append((p.word, p.flag, i))
        i += len(p.word)
    return tuple(out)


# ------------------------------------------------------------------------------ entities


def _eligible(word: str, flag: str) -> bool:
    if _PRON.search(word) or _QW.search(word) or word in _PARTICLE or word in ("现在", "目前", "现有"):
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
    toks = _tokens(simp) + (("。", "x", len(simp)),)
    ok = [_eligible(w, f) for w, f, _ in toks]
    for i in range(1, len(toks)):  # 联合(v)/村: a one-character suffix needs its word
        w, f = toks[i - 1][:2]
        if toks[i][0] in SUFFIXES and len(toks[i][0]) == 1 and not ok[i - 1] and len(w) >= 2 and f[:1] not in "pcurdmqyx":
            ok[i - 1] = not _QW.search(w)
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
        if (w[:1].isupper() and not (i == 0 and w.lower() in _EN_QW)) or (run and w.lower() in _EN_SUFFIX):
            run.append(w)
            continue
        best, run = max(best, " ".join(run), key=len), []
    return best


def _entity_of(text: str) -> str:
    """The entity of one question, in its own script ("" if none)."""
    if _english(text):
        return entity_en(text)
    orig, simp = _pair(text)
    sp = entity_span(simp)
    return orig[sp[0] : sp[1]] if sp else ""


# ------------------------------------------------------------------------------ the heuristic


def _anaphors(qs: str) -> list[tuple[int, int, str]]:
    """(start, end, kept noun) of the leading 那/还有 (kept ""), pronouns, and demonstratives with
    their classifier and, when it is part of the reference (该校, 这个支部), the noun after them.

    >>> q = "那这个项目的规模呢？"; [(q[a:b], x) for a, b, x in _anaphors(q)]
    [('那', ''), ('这个', '项目')]
    """
    out, lead = [], _LEAD.match(qs)
    if lead and lead.end() < len(qs):
        out.append((0, lead.end(), ""))
    taken = set(range(lead.end() if lead else 0))
    for m in _PRON.finditer(qs):
        out.append((m.start(), m.end(), ""))
        taken |= set(range(m.start(), m.end()))
    for m in _DEM.finditer(qs):
        if m.start() in taken:
            continue
        nxt = next(iter(_tokens(qs[m.end() :])), ("", "x", 0))
        x, noun = nxt[0], nxt[1][:1] in ("n", "j") or nxt[1] == "vn" or nxt[0].endswith(SUFFIXES)
        absorbed = noun and (len(x) == 1 or x.endswith(SUFFIXES))
        out.append((m.start(), m.end() + (len(x) if absorbed else 0), x if noun and not absorbed else ""))
    return sorted(out)


def _ellipsis(question: str) -> str | None:
    """The fragment of an elliptical follow-up, else None.

    >>> _ellipsis("那2009年呢？"), _ellipsis("And in 2009?"), _ellipsis("它有多少名党员？")
    ('2009年', 'in 2009', None)
    """
    q = question.strip()
    if _english(q):
        m = re.match(r"^(?:and|what about|how about)\s+(.{1,40}?)\s*[?？.]?$", q, re.I)
        ok = m and len(m.group(1).split()) <= 5 and m.group(1).split()[0].lower() not in _EN_QW - {"in", "the", "of"}
        return m.group(1) if ok else None
    lead = _LEAD.match(_simp(q))
    frag = re.sub(r"呢?\s*[？?。！!]*$", "", q[lead.end() if lead else 0 :]).strip()
    fs = _simp(frag)
    marked = bool(re.search(r"呢\s*[？?]?$", q)) or bool(lead)
    if not frag or not marked or len(frag) > 12 or _QW.search(fs) or _PRON.search(fs) or _DEM.match(fs):
        return None
    return frag


def _swap_slot(prev: str, frag: str) -> str | None:
    """`prev` with the slot that `frag` changes replaced by `frag` (both in the output script).

    >>> _swap_slot("2010年某村有多少党员？", "2009年"), _swap_slot("组长是谁？", "副组长")
    ('2009年某村有多少党员？', '副组长是谁？')
    >>> _swap_slot("某村现有多少户村民、多少口人？", "党员"), _swap_slot("某校的校训是什么？", "校歌")
    ('某村现有多少党员？', '某校的校歌是什么？')
    """
    po, ps = _pair(prev)
    fs = _simp(frag)
    fy, py = _YEAR.search(fs), _YEAR.search(ps)
    if fy:
        return po[: py.start()] + fy.group(1) + po[py.end() :] if py else frag.rstrip("的") + po
    fe, pe = entity_span(fs), entity_span(ps)
    if fe and pe and fe[1] - fe[0] >= len(fs) - 1:
        return po[: pe[0]] + frag + po[pe[1] :]
    toks = [t for t in _tokens(ps) if len(t[0]) >= 2 and not _QW.search(t[0]) and (not pe or t[2] >= pe[1])]
    inside = [t for t in toks if t[0] != fs and (t[0] in fs or fs in t[0])]
    if inside:
        w, _, a = max(inside, key=lambda t: len(t[0]))
        return po[:a] + frag + po[a + len(w) :]
    m = re.search(r"(多少|几)[个名户口位项家所条次人种]?", ps)
    nxt = next((t for t in _tokens(ps) if m and t[2] == m.end()), None)
    if nxt and re.match(r"\w", nxt[0]):
        b = nxt[2] + len(nxt[0])
        tail = re.match(r"[、,，和及](?:多少|几)[^？?。]*", ps[b:])
        return po[: m.end(1)] + frag + po[b + (tail.end() if tail else 0) :]
    qw = _QW.search(ps)
    nouns = [t for t in toks if qw and t[2] + len(t[0]) <= qw.start()]
    if nouns:
        w, _, a = nouns[-1]
        return po[:a] + frag + po[a + len(w) :]
    return None


def _swap_slot_en(prev: str, frag: str) -> str | None:
    """English ellipsis: swap the year, else the word the fragment ends with.

    >>> _swap_slot_en("What was the income in Bacha village in 1998?", "in 2009")
    'What was the income in Bacha village in 2009?'
    >>> _swap_slot_en("Who is the leader of the team?", "the deputy leader")
    'Who is the deputy leader of the team?'
    """
    fy, py = _YEAR.search(frag), _YEAR.search(prev)
    if fy and py:
        return prev[: py.start()] + fy.group(1) + prev[py.end() :]
    core = re.sub(r"^(?:the|a|an)\s+", "", frag.strip(), flags=re.I)
    last = core.split()[-1] if core.split() else ""
    m = re.search(rf"\b{re.escape(last)}\b", prev, re.I) if last else None
    return prev[: m.start()] + core + prev[m.end() :] if m and core.lower() != last.lower() else None


def _phrase(prev_simp: str, x: str, entity: str) -> str:
    """`x` with the noun words right before its first occurrence in the previous question (新上的
    甲醇项目 → 甲醇项目), prefixed by the entity unless the phrase holds it."""
    toks = _tokens(prev_simp)
    i = next((k for k, t in enumerate(toks) if t[0] == x), None)
    if i is None:
        return entity + x
    j = i
    while j > 0 and _eligible(*toks[j - 1][:2]):
        j -= 1
    phrase = "".join(t[0] for t in toks[j : i + 1])
    return phrase if _simp(entity) in phrase else entity + phrase


def _substitute(question: str, entity: str, prev: str, sample: str) -> str:
    """The anaphors of a Chinese question replaced by `entity` (in the output script, `sample`'s).

    >>> _substitute("这个项目的规模是多少吨？", "某公司", "某公司新上的甲醇项目收入多少？", "？")
    '某公司甲醇项目的规模是多少吨？'
    """
    qo, qs = _pair(question)
    lead, edits = _LEAD.match(qs), []
    for a, b, x in _anaphors(qs):
        if lead and (a, b) == (0, lead.end()):
            edits.append((a, b, ""))
        elif not x:
            edits.append((a, b, entity))
        else:  # 这个项目 → the entity and the noun phrase of the previous question that ends in 项目
            edits.append((a, b + len(x), _in_script(_phrase(_simp(prev), x, entity), sample)))
    if not any(rep for _, _, rep in edits):  # nothing to replace: the entity becomes the subject
        at = edits[-1][1] if edits else 0
        first = next(iter(_tokens(qs[at:])), ("", "x", 0))
        edits.append((at, at, entity + ("" if first[1][:1] in ("v", "p", "d") else "的")))
    out, last = [], 0
    for a, b, rep in edits:
        out += [qo[last:a], rep]
        last = b
    return "".join(out) + qo[last:]


def _substitute_en(question: str, entity: str) -> str:
    """English pronouns replaced by `entity`.

    >>> _substitute_en("How many members does it have?", "Bacha village")
    'How many members does Bacha village have?'
    """
    out = _EN_PRON.sub(lambda m: entity + ("'s" if m.group(1).lower() in ("its", "their", "his") else ""), question)
    out = re.sub(r"(?<!\bis )(?<!\bare )(?<!\bwas )(?<!\bwere )\bthere\b(?! (?:is|are|was|were)\b)", "in " + entity, out, flags=re.I)
    if entity not in out:
        out = re.sub(r"\s*([?？.]?)\s*$", lambda m: f" in {entity}{m.group(1) or '?'}", out, count=1)
    return out


_FOLLOWUP = re.compile(
    r"它|他们|她们|他|她|这些|那些|这个|那个|这里|那里|这|那|其|该|上述|此|前者|后者|同上|还有|另外|呢[？?]?$"
)
_FOLLOWUP_EN = re.compile(r"\b(it|its|they|them|their|this|that|these|those|he|she|his|her)\b", re.I)


def marked(question: str) -> bool:
    """A pronoun or ellipsis marker, or so few content terms that the question cannot stand alone.

    >>> marked("它们是哪一年成立的？"), marked("安达市委实施了哪些措施？"), marked("人数呢？")
    (True, False, True)
    """
    from rag.extractive import terms

    qn = normalize(question)
    if _FOLLOWUP.search(qn) or _FOLLOWUP_EN.search(qn):
        return True
    return len(terms(question)) <= 2


def needs_context(question: str) -> bool:
    """A follow-up: an ellipsis, a question that opens with a pronoun, or one with a pronoun or
    very short that names no entity of its own.

    >>> needs_context("它是哪一年组建的？"), needs_context("南马路小学有多少名党员？"), needs_context("副组长呢？")
    (True, False, True)
    """
    if _ellipsis(question) is not None:
        return True
    if _english(question):
        pron = re.search(r"\b(it|its|they|them|their|there|he|she|him|his|her)\b", question, re.I)
        return bool(pron) or (marked(question) and not entity_en(question))
    qs = _simp(question)
    an = [x for x in _anaphors(qs) if not (_LEAD.match(qs) and x[0] == 0)]
    start = _LEAD.match(qs).end() if _LEAD.match(qs) else 0
    if an and an[0][0] == start:
        return True
    return not entity_span(qs) and (bool(an) or marked(question))


def _resolved(history: Sequence[tuple[str, str]]) -> list[str]:
    """The earlier questions (at most the last 4), each made standalone by the heuristic.

    Only the last `LIMITS.condense_chars` characters of each are read: jieba's HMM step is
    quadratic, and a 1,048,576-character "question" in the history pinned a core for 13 minutes.
    An earlier question is itself bounded to that length, so no real conversation loses a word.
    """
    recent: list[str] = []
    for q, _ in reversed(history):  # newest first, so a long history is never walked whole
        q = bounded_tail(q) if isinstance(q, str) else ""
        if q.strip():
            recent.append(q)
            if len(recent) == 4:
                break
    out: list[str] = []
    for q in reversed(recent):
        out.append(condense_heuristic(q, [(p, "") for p in out]).text if out else q)
    return out


def _conversation_entity(earlier: Sequence[str], question: str = "") -> str:
    """The entity of the latest earlier question that has one. A plural pronoun (它们) takes two
    units joined by 和/与/及/、; a personal one (他/她) prefers a unit with a person name (nr)."""
    plural = bool(re.search(r"们|們|\bthey\b|\btheir\b", question, re.I))
    person = bool(re.search(r"(?<!其)[他她]", _simp(question))) or bool(re.search(r"\b(he|she|him|his|her)\b", question, re.I))
    for q in reversed(earlier):
        if _english(q):
            if entity_en(q):
                return entity_en(q)
            continue
        orig, simp = _pair(q)
        us = units(simp)
        top = sorted(u for u in us if not any(v != u and v[0] <= u[0] and u[1] <= v[1] for v in us))
        if plural:
            for (a, b), (c, d) in zip(top, top[1:]):
                if simp[b:c] in ("和", "与", "及", "、", "以及"):
                    return orig[a:d]
        named = {u: any(f in ("nr", "nrfg", "nrt") and i + len(w) == u[1] for w, f, i in _tokens(simp)) for u in us}
        pick = [u for u in us if named[u] == person] or us
        best = max(pick, key=lambda u: u[1] - u[0], default=None)
        if best:
            return orig[best[0] : best[1]]
    return ""


def _sample(question: str, earlier: Sequence[str]) -> str:
    """Whose script the output takes: the question's, or the previous question's when the
    question reads the same in both scripts (那2009年呢？)."""
    neutral = t2s(question) == question == s2t(question)
    return earlier[-1] if neutral and earlier and not _english(question) else question


def condense_heuristic(question: str, history: Sequence[tuple[str, str]]) -> Condensed:
    """Deterministic standalone question (see module doc).

    >>> condense_heuristic("那它有多少名党员？", [("南马路小学始建于哪一年？", "")]).text
    '南马路小学有多少名党员？'
    """
    earlier = _resolved(history) if history and needs_context(question) else []
    if not earlier:
        return Condensed(question, "unchanged")
    eng, sample = _english(question), _sample(question, earlier)
    prev = earlier[-1] if eng else _in_script(earlier[-1], sample)
    ent = _in_script(_conversation_entity(earlier, question), sample)
    frag, text = _ellipsis(question), None
    if frag is not None:
        text = (_swap_slot_en if _english(prev) else _swap_slot)(prev, frag)
        if text is None and ent:
            text = f"{frag} ({ent})?" if eng else f"{ent}的{frag}呢？"
    elif ent:
        text = _substitute_en(question, ent) if eng else _substitute(question, ent, prev, sample)
    if not text or normalize(text) == normalize(question):
        return Condensed(question, "unchanged")
    return Condensed(text, "heuristic", ent if ent and normalize(ent) in normalize(text) else "")


# ------------------------------------------------------------------------------ with a model

CONDENSE_SYSTEM = (
    "把用户的追问改写成不依赖对话也能看懂的问题。规则：保留追问的每一个词，只把代词（它、他、其、该校、"
    "这个、这里、it、they、there）换成“名称”；省略句（如“那2009年呢？”“副组长呢？”）照上一个问题的"
    "句式补全，只替换变化的部分。不要回答，不要解释，只输出一个问题。\n示例：\n"
)
# (previous question, its entity, follow-up, standalone) — invented, not from any evaluation set.
# They sit in the fixed system prompt, so llama.cpp evaluates them once per process and slot.
CONDENSE_SHOTS = (
    ("红星村党支部是哪一年成立的？", "红星村党支部", "它有多少名党员？", "红星村党支部有多少名党员？"),
    ("2010年青山县有多少个行政村？", "青山县", "那2012年呢？", "2012年青山县有多少个行政村？"),
    ("华联公司的总经理是谁？", "华联公司", "副总经理呢？", "华联公司的副总经理是谁？"),
    ("东风中学的校长是谁？", "东风中学", "它是哪一年建校的？", "东风中学是哪一年建校的？"),
    ("長江化工廠新建的污水處理站投資多少？", "長江化工廠", "這個處理站每天能處理多少噸？", "長江化工廠污水處理站每天能處理多少噸？"),
    ("Where is Lianhe village?", "Lianhe village", "How many people live there?", "How many people live in Lianhe village?"),
    ("How many students did Dongfeng School have in 2015?", "Dongfeng School", "And in 2016?", "How many students did Dongfeng School have in 2016?"),
)


def _condense_user(prev: str, entity: str, question: str) -> str:
    return f"上一个问题：{prev}\n" + (f"名称：{entity}\n" if entity else "") + f"追问：{question.strip()}\n改写："


def condense_messages(question: str, earlier: Sequence[str], entity: str) -> list[tuple[str, str]]:
    """Few-shot prompt: a fixed system prompt with the examples (a cacheable prefix), then the
    previous question (already made standalone), the entity and the follow-up."""
    shots = "\n\n".join(_condense_user(p, e, q) + s for p, e, q, s in CONDENSE_SHOTS)
    return [("system", CONDENSE_SYSTEM + shots), ("user", _condense_user(earlier[-1], entity, question))]


def _content_words(question: str) -> list[str]:
    """The question's own words a rewrite must keep (normalised): all but the anaphors (see
    `_anaphors`), particles and punctuation.

    >>> _content_words("那它现在有多少名党员？"), _content_words("How many members does it have?")
    (['现在', '多少', '名', '党员'], ['how', 'many', 'members', 'does', 'have'])
    """
    q = normalize(question)
    if _english(q):
        return [w for w in re.findall(r"[a-z0-9][a-z0-9'-]*", q) if w not in _EN_DROP]
    rest, last = [], 0
    for a, b, _ in _anaphors(q):
        rest.append(q[last:a])
        last = b
    rest.append(q[last:])
    words = [w for piece in rest for w, _, _ in _tokens(piece)]
    return [w for w in words if w not in _PARTICLE | _OPTIONAL and re.search(r"\w", w)]


def check_rewrite(question: str, rewrite: str, entity: str, prev: str) -> str:
    """Why a model rewrite is unusable ("" if it is fine): not one question, too long, the
    conversation's entity not whole, a number changed, a content word of the question lost, or
    the pronoun / ellipsis still there.

    >>> check_rewrite("它是哪一年组建的？", "宝泰隆公司是哪一年组建的？", "宝泰隆公司", "宝泰隆公司的主要业务是什么？")
    ''
    >>> check_rewrite("它是哪一年组建的？", "宝泰隆公司成立于哪一年？", "宝泰隆公司", "宝泰隆公司的主要业务是什么？")
    'lost word: 组建'
    """
    r, rn = rewrite.strip(), normalize(rewrite)
    if not r:
        return "empty"
    if len(r) > len(question) + len(prev) + 10:
        return "too long"
    if re.search(r"[。！!？?；;]", r.rstrip("？?。 ")) or parse_markers(r) or "【" in r or "\n" in r:
        return "not one question"
    if not (re.search(r"[?？]\s*$", r) or _QW.search(_simp(r)) or re.search(r"\b(what|which|who|when|where|why|how)\b", rn)):
        return "not a question"
    if entity and not _entity_of(question) and normalize(entity) not in rn:
        return f"entity not whole: {entity}"
    nums, qn = set(re.findall(r"\d+", rn)), set(re.findall(r"\d+", normalize(question)))
    if not nums <= (qn or set(re.findall(r"\d+", normalize(prev)))):
        return "numbers changed"
    flat = rn.replace(" ", "")
    for w in _content_words(question):
        if (re.search(rf"(?<![a-z0-9]){re.escape(w)}(?![a-z0-9])", rn) is None) if w.isascii() else (w not in flat):
            return f"lost word: {w}"
    if needs_context(question) and normalize(r) == normalize(question):
        return "unchanged"
    qs, lead = _simp(question), _LEAD.match(_simp(question))
    refs = [qs[a:b] for a, b, _ in _anaphors(qs) if not (lead and a == 0)] + _EN_PRON.findall(question)
    if any(re.search(rf"(?<![a-z]){re.escape(t.lower())}(?![a-z])", rn) for t in refs if len(t) >= 2 or t in "它他她其"):
        return "pronoun kept"
    if _ellipsis(question) is not None and re.search(r"呢\s*[？?]?\s*$|^\s*(?:and|what about|how about)\b", rn):
        return "ellipsis kept"
    return ""


def _reply(chat_model: Any, messages: Sequence[tuple[str, str]]) -> str:
    from rag.prompts import to_langchain

    out = chat_model.invoke(to_langchain(messages), max_tokens=MAX_TOKENS, temperature=0.0, stop=["\n"])
    text = out.content if isinstance(out.content, str) else str(out.content)
    text = text.strip().splitlines()[0] if text.strip() else ""
    text = re.sub(r"^(?:改写后的问题|改写|问题|中文|翻译|standalone question)\s*[:：]\s*", "", text, flags=re.I)
    return text.strip().strip("“”\"'「」 ")


def condense(question: str, history: Sequence[tuple[str, str]], chat_model: Any = None) -> Condensed:
    """The standalone form of `question` given `history` [(question, answer), …]: the model's
    rewrite when it passes `check_rewrite`, else the heuristic's (see module doc).

    >>> condense("副组长呢？", [("组长是谁？", "")])
    Condensed(text='副组长是谁？', method='heuristic', entity='')
    """
    if not history or not needs_context(question) or chat_model is None:
        return condense_heuristic(question, history)
    earlier = _resolved(history)
    if not earlier:
        return Condensed(question, "unchanged")
    ent = _conversation_entity(earlier, question)
    try:
        text = _in_script(_reply(chat_model, condense_messages(question, earlier, ent)), _sample(question, earlier))
    except Exception as e:  # a failing side call must not fail the answer
        log.warning("condense: the model failed (%s); using the heuristic", e)
        return condense_heuristic(question, history)
    why = check_rewrite(question, text, ent, earlier[-1])
    if why:
        log.info("condense: model rewrite %r rejected (%s); using the heuristic", text, why)
        return condense_heuristic(question, history)
    ent_q = _in_script(ent, _sample(question, earlier))
    return Condensed(text, "model", ent_q if ent and normalize(ent) in normalize(text) else "")


# ------------------------------------------------------------------------------ cross-lingual

TRANSLATE_SYSTEM = "把英文问题翻译成简体中文问题。保留人名、地名、机构名和所有数字。只输出中文问题。"
TRANSLATE_SHOTS = (
    ("How many party members does Hongxing village have?", "红星村有多少名党员？"),
    ("What did the Qingshan county committee decide in March 2011?", "2011年3月青山县委决定了什么？"),
)


class QueryCache:
    """Thread-safe LRU of translated queries; with `path`, also a JSON file (loaded at start,
    rewritten atomically — temp file + os.replace — after each new entry)."""

    def __init__(self, path: str | Path | None = None, size: int = 512):
        self.path, self.size, self.lock = (Path(path) if path else None), size, threading.Lock()
        self.data: OrderedDict[str, str] = OrderedDict()
        if self.path and self.path.is_file():
            try:
                self.data.update(json.loads(self.path.read_text(encoding="utf-8")))
            except (OSError, ValueError) as e:
                log.warning("ignoring unreadable query cache %s: %s", self.path, e)

    def get(self, key: str) -> str | None:
        with self.lock:
            if key in self.data:
                self.data.move_to_end(key)
                return self.data[key]
        return None

    def put(self, key: str, value: str) -> None:
        with self.lock:
            self.data[key] = value
            while len(self.data) > self.size:
                self.data.popitem(last=False)
            if not self.path:
                return
            try:  # an unwritable cache file must not fail the question: memory only then
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".cache-", suffix=".json")
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    json.dump(self.data, f, ensure_ascii=False)
                os.replace(tmp, self.path)
            except OSError as e:
                log.warning("query cache %s not written: %s", self.path, e)


_CACHES: dict[str, QueryCache] = {}


def _cache(cache: QueryCache | str | Path | None) -> QueryCache:
    if isinstance(cache, QueryCache):
        return cache
    key = str(cache or "")
    if key not in _CACHES:
        _CACHES[key] = QueryCache(cache or None)
    return _CACHES[key]


def check_translation(question: str, query: str) -> str:
    """Why a translated query is unusable ("" if fine): no Chinese, a number lost, too long.

    >>> check_translation("What was the income in 2009?", "2009年的收入是多少？"), check_translation("In 2009?", "200年收入")
    ('', 'lost number: 2009')
    """
    if cjk_count(query) < 2:
        return "no Chinese"
    for n in re.findall(r"\d+(?:\.\d+)?", fold_width(question)):
        if not re.search(rf"(?<![\d.]){re.escape(n)}(?![\d.])", fold_width(query)):
            return f"lost number: {n}"
    if len(query) > max(40, len(question)) or "\n" in query:
        return "too long"
    return ""


def to_chinese_query(question: str, chat_model: Any, cache: QueryCache | str | Path | None = None) -> str:
    """A simplified-Chinese query for an English `question` ("" when the question is not
    English, the model fails, or its output fails `check_translation`: fall back to the
    question). `cache`: a QueryCache, a JSON file path, or None (a process-wide LRU)."""
    if chat_model is None or not _english_question(question):
        return ""
    c = _cache(cache)
    key = f"{getattr(chat_model, 'model_name', type(chat_model).__name__)}\x1f{' '.join(normalize(question).split())}"
    hit = c.get(key)
    if hit is not None:
        return hit
    msgs = [("system", TRANSLATE_SYSTEM)]
    for en, zh in TRANSLATE_SHOTS:
        msgs += [("user", en), ("assistant", zh)]
    try:
        out = t2s(_reply(chat_model, msgs + [("user", question.strip())]))
    except Exception as e:
        log.warning("to_chinese_query: the model failed (%s)", e)
        return ""
    why = check_translation(question, out)
    if why:
        log.info("to_chinese_query: %r rejected (%s)", out, why)
    c.put(key, "" if why else out)
    return "" if why else out
