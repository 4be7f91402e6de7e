"""Follow-up detection and the deterministic standalone rewrite (`condense_heuristic`), the
fallback of rag.answer.condense whenever no model is used or its rewrite fails the check.

- `needs_context`: an ellipsis, a question that opens with a pronoun, or one with a pronoun or
  very short that names no entity of its own.
- Pronouns (它/他/其/该X/这个/这里, it/its/they/there…) are replaced by the conversation's entity
  (rag.answer.entities); an ellipsis ("副组长呢？", "那2009年呢？", "And in 2009?") is rebuilt from the
  previous question with the changed slot swapped: a year, an entity, a word the fragment
  contains or extends, the "多少X" slot, else the noun before the question word. Earlier
  follow-ups are resolved first, so chains work. The result keeps the question's script (OpenCC)
  and words; never keyword soup.

Compromises: no synonyms, and a referent named only in an answer is not resolved (answers are not
read at all); 其中 ("among them") and a 这 that points at a statement are left alone. Only the last
`rag.limits.LIMITS.condense_chars` characters of each of the last 4 earlier questions are read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from rag.answer.entities import (
    SUFFIXES,
    DEM,
    EN_PRON,
    EN_QW,
    LEAD,
    PRON,
    QW,
    YEAR,
    conversation_entity,
    eligible_word,
    is_english,
    in_script,
    script_pair,
    simplified,
    word_tokens,
    entity_en,
    entity_span,
)
from rag.limits import bounded_tail
from rag.text.norm import normalize, s2t, t2s


@dataclass(frozen=True)
class Condensed:
    """`text`: the standalone question (retrieval and prompt only); `method`: "model" |
    "heuristic" | "unchanged"; `entity`: the entity carried over, in the question's script, or ""."""

    text: str
    method: str
    entity: str = ""


# ------------------------------------------------------------------------------ the heuristic


def anaphors(qs: str) -> list[tuple[int, int, str]]:
    """(start, end, kept noun) of the leading 那/还有 (kept ""), pronouns, and demonstratives with
    their classifier and, when it is part of the reference (该校, 这个支部), the noun after them.

    >>> q = "那这个项目的规模呢？"; [(q[a:b], x) for a, b, x in anaphors(q)]
    [('那', ''), ('这个', '项目')]
    """
    out, lead = [], LEAD.match(qs)
    if lead and lead.end() < len(qs):
        out.append((0, lead.end(), ""))
    taken = set(range(lead.end() if lead else 0))
    for m in PRON.finditer(qs):
        out.append((m.start(), m.end(), ""))
        taken |= set(range(m.start(), m.end()))
    for m in DEM.finditer(qs):
        if m.start() in taken:
            continue
        nxt = next(iter(word_tokens(qs[m.end() :])), ("", "x", 0))
        x, noun = nxt[0], nxt[1][:1] in ("n", "j") or nxt[1] == "vn" or nxt[0].endswith(SUFFIXES)
        absorbed = noun and (len(x) == 1 or x.endswith(SUFFIXES))
        out.append((m.start(), m.end() + (len(x) if absorbed else 0), x if noun and not absorbed else ""))
    return sorted(out)


def ellipsis(question: str) -> str | None:
    """The fragment of an elliptical follow-up, else None.

    >>> ellipsis("那2009年呢？"), ellipsis("And in 2009?"), ellipsis("它有多少名党员？")
    ('2009年', 'in 2009', None)
    """
    q = question.strip()
    if is_english(q):
        m = re.match(r"^(?:and|what about|how about)\s+(.{1,40}?)\s*[?？.]?$", q, re.I)
        ok = m and len(m.group(1).split()) <= 5 and m.group(1).split()[0].lower() not in EN_QW - {"in", "the", "of"}
        return m.group(1) if ok else None
    lead = LEAD.match(simplified(q))
    frag = re.sub(r"呢?\s*[？?。！!]*$", "", q[lead.end() if lead else 0 :]).strip()
    fs = simplified(frag)
    marked = bool(re.search(r"呢\s*[？?]?$", q)) or bool(lead)
    if not frag or not marked or len(frag) > 12 or QW.search(fs) or PRON.search(fs) or DEM.match(fs):
        return None
    return frag


def _swap_slot(prev: str, frag: str) -> str | None:
    """`prev` with the slot that `frag` changes replaced by `frag` (both in the output script).

    >>> _swap_slot("2010年某村有多少党员？", "2009年"), _swap_slot("组长是谁？", "副组长")
    ('2009年某村有多少党员？', '副组长是谁？')
    >>> _swap_slot("某村现有多少户村民、多少口人？", "党员"), _swap_slot("某校的校训是什么？", "校歌")
    ('某村现有多少党员？', '某校的校歌是什么？')
    """
    po, ps = script_pair(prev)
    fs = simplified(frag)
    fy, py = YEAR.search(fs), YEAR.search(ps)
    if fy:
        return po[: py.start()] + fy.group(1) + po[py.end() :] if py else frag.rstrip("的") + po
    fe, pe = entity_span(fs), entity_span(ps)
    if fe and pe and fe[1] - fe[0] >= len(fs) - 1:
        return po[: pe[0]] + frag + po[pe[1] :]
    toks = [t for t in word_tokens(ps) if len(t[0]) >= 2 and not QW.search(t[0]) and (not pe or t[2] >= pe[1])]
    inside = [t for t in toks if t[0] != fs and (t[0] in fs or fs in t[0])]
    if inside:
        w, _, a = max(inside, key=lambda t: len(t[0]))
        return po[:a] + frag + po[a + len(w) :]
    m = re.search(r"(多少|几)[个名户口位项家所条次人种]?", ps)
    nxt = next((t for t in word_tokens(ps) if m and t[2] == m.end()), None)
    if nxt and re.match(r"\w", nxt[0]):
        b = nxt[2] + len(nxt[0])
        tail = re.match(r"[、,，和及](?:多少|几)[^？?。]*", ps[b:])
        return po[: m.end(1)] + frag + po[b + (tail.end() if tail else 0) :]
    qw = QW.search(ps)
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
    fy, py = YEAR.search(frag), YEAR.search(prev)
    if fy and py:
        return prev[: py.start()] + fy.group(1) + prev[py.end() :]
    core = re.sub(r"^(?:the|a|an)\s+", "", frag.strip(), flags=re.I)
    last = core.split()[-1] if core.split() else ""
    m = re.search(rf"\b{re.escape(last)}\b", prev, re.I) if last else None
    return prev[: m.start()] + core + prev[m.end() :] if m and core.lower() != last.lower() else None


def _phrase(prev_simp: str, x: str, entity: str) -> str:
    """`x` with the noun words right before its first occurrence in the previous question (新上的
    甲醇项目 → 甲醇项目), prefixed by the entity unless the phrase holds it."""
    toks = word_tokens(prev_simp)
    i = next((k for k, t in enumerate(toks) if t[0] == x), None)
    if i is None:
        return entity + x
    j = i
    while j > 0 and eligible_word(*toks[j - 1][:2]):
        j -= 1
    phrase = "".join(t[0] for t in toks[j : i + 1])
    return phrase if simplified(entity) in phrase else entity + phrase


def _substitute(question: str, entity: str, prev: str, sample: str) -> str:
    """The anaphors of a Chinese question replaced by `entity` (in the output script, `sample`'s).

    >>> _substitute("这个项目的规模是多少吨？", "某公司", "某公司新上的甲醇项目收入多少？", "？")
    '某公司甲醇项目的规模是多少吨？'
    """
    qo, qs = script_pair(question)
    lead, edits = LEAD.match(qs), []
    for a, b, x in anaphors(qs):
        if lead and (a, b) == (0, lead.end()):
            edits.append((a, b, ""))
        elif not x:
            edits.append((a, b, entity))
        else:  # 这个项目 → the entity and the noun phrase of the previous question that ends in 项目
            edits.append((a, b + len(x), in_script(_phrase(simplified(prev), x, entity), sample)))
    if not any(rep for _, _, rep in edits):  # nothing to replace: the entity becomes the subject
        at = edits[-1][1] if edits else 0
        first = next(iter(word_tokens(qs[at:])), ("", "x", 0))
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
    out = EN_PRON.sub(lambda m: entity + ("'s" if m.group(1).lower() in ("its", "their", "his") else ""), question)
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
    from rag.answer.scoring import terms

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
    if ellipsis(question) is not None:
        return True
    if is_english(question):
        pron = re.search(r"\b(it|its|they|them|their|there|he|she|him|his|her)\b", question, re.I)
        return bool(pron) or (marked(question) and not entity_en(question))
    qs = simplified(question)
    an = [x for x in anaphors(qs) if not (LEAD.match(qs) and x[0] == 0)]
    start = LEAD.match(qs).end() if LEAD.match(qs) else 0
    if an and an[0][0] == start:
        return True
    return not entity_span(qs) and (bool(an) or marked(question))


def resolved_questions(history: Sequence[tuple[str, str]]) -> list[str]:
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


def script_sample(question: str, earlier: Sequence[str]) -> str:
    """Whose script the output takes: the question's, or the previous question's when the
    question reads the same in both scripts (那2009年呢？)."""
    neutral = t2s(question) == question == s2t(question)
    return earlier[-1] if neutral and earlier and not is_english(question) else question


def condense_heuristic(question: str, history: Sequence[tuple[str, str]]) -> Condensed:
    """Deterministic standalone question (see module doc).

    >>> condense_heuristic("那它有多少名党员？", [("南马路小学始建于哪一年？", "")]).text
    '南马路小学有多少名党员？'
    """
    earlier = resolved_questions(history) if history and needs_context(question) else []
    if not earlier:
        return Condensed(question, "unchanged")
    eng, sample = is_english(question), script_sample(question, earlier)
    prev = earlier[-1] if eng else in_script(earlier[-1], sample)
    ent = in_script(conversation_entity(earlier, question), sample)
    frag, text = ellipsis(question), None
    if frag is not None:
        text = (_swap_slot_en if is_english(prev) else _swap_slot)(prev, frag)
        if text is None and ent:
            text = f"{frag} ({ent})?" if eng else f"{ent}的{frag}呢？"
    elif ent:
        text = _substitute_en(question, ent) if eng else _substitute(question, ent, prev, sample)
    if not text or normalize(text) == normalize(question):
        return Condensed(question, "unchanged")
    return Condensed(text, "heuristic", ent if ent and normalize(ent) in normalize(text) else "")

