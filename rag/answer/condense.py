"""Follow-up questions made standalone (for retrieval and the answer prompt only — never part of
the answer text). The English→Chinese query translation lives in rag.answer.translate, the entity
rules in rag.answer.entities, the heuristic in rag.answer.followup; every name other code imports from here
is re-exported below.

`condense(question, history, chat_model=None) -> Condensed`
- Unchanged when no context is needed: no pronoun/ellipsis, or the question names its own entity.
- With a chat model: a few-shot prompt (fixed system prompt with invented examples, then the
  previous question, the entity, the follow-up) asks for the follow-up with only the pronoun or
  the ellipsis filled in. The rewrite is CHECKED (`check_rewrite`: one question, not an answer;
  bounded length; the conversation's entity whole; no new number; every content word of the
  follow-up kept, script-folded; its pronoun/ellipsis gone) and replaced by the heuristic
  (`rag.answer.followup.condense_heuristic`) when the check fails — the 1.5B model wrote 组建 → 成立,
  and retrieval then missed 組建於.

Compromises: the checks are lexical, so a rewrite that reorders words passes and one that
paraphrases any word fails — by design. The heuristic knows no synonyms and cannot resolve a
referent named only in an answer (see rag.answer.followup). The question itself is bounded by its
callers (rag.answer.assistant); earlier questions are bounded here (`rag.limits.LIMITS.condense_chars`).
"""

from __future__ import annotations

import logging
import re
from typing import Any, Sequence

from rag.answer.entities import (
    conversation_entity,
    EN_DROP,
    EN_PRON,
    entity_of,
    in_script,
    is_english,
    LEAD,
    OPTIONAL,
    PARTICLE,
    QW,
    simplified,
    word_tokens,
)
from rag.answer.followup import (
    anaphors,
    condense_heuristic,
    Condensed,
    ellipsis,
    needs_context,
    resolved_questions,
    script_sample,
)
from rag.llm.side_call import side_reply as _reply
from rag.text.markers import parse_markers
from rag.text.norm import normalize


log = logging.getLogger(__name__)


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
    `anaphors`), particles and punctuation.

    >>> _content_words("那它现在有多少名党员？"), _content_words("How many members does it have?")
    (['现在', '多少', '名', '党员'], ['how', 'many', 'members', 'does', 'have'])
    """
    q = normalize(question)
    if is_english(q):
        return [w for w in re.findall(r"[a-z0-9][a-z0-9'-]*", q) if w not in EN_DROP]
    rest, last = [], 0
    for a, b, _ in anaphors(q):
        rest.append(q[last:a])
        last = b
    rest.append(q[last:])
    words = [w for piece in rest for w, _, _ in word_tokens(piece)]
    return [w for w in words if w not in PARTICLE | OPTIONAL and re.search(r"\w", w)]


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
    if not (re.search(r"[?？]\s*$", r) or QW.search(simplified(r)) or re.search(r"\b(what|which|who|when|where|why|how)\b", rn)):
        return "not a question"
    if entity and not entity_of(question) and normalize(entity) not in rn:
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
    qs, lead = simplified(question), LEAD.match(simplified(question))
    refs = [qs[a:b] for a, b, _ in anaphors(qs) if not (lead and a == 0)] + EN_PRON.findall(question)
    if any(re.search(rf"(?<![a-z]){re.escape(t.lower())}(?![a-z])", rn) for t in refs if len(t) >= 2 or t in "它他她其"):
        return "pronoun kept"
    if ellipsis(question) is not None and re.search(r"呢\s*[？?]?\s*$|^\s*(?:and|what about|how about)\b", rn):
        return "ellipsis kept"
    return ""



def condense(question: str, history: Sequence[tuple[str, str]], chat_model: Any = None) -> Condensed:
    """The standalone form of `question` given `history` [(question, answer), …]: the model's
    rewrite when it passes `check_rewrite`, else the heuristic's (see module doc).

    >>> condense("副组长呢？", [("组长是谁？", "")])
    Condensed(text='副组长是谁？', method='heuristic', entity='')
    """
    if not history or not needs_context(question) or chat_model is None:
        return condense_heuristic(question, history)
    earlier = resolved_questions(history)
    if not earlier:
        return Condensed(question, "unchanged")
    ent = conversation_entity(earlier, question)
    try:
        text = in_script(_reply(chat_model, condense_messages(question, earlier, ent)), script_sample(question, earlier))
    except Exception as e:  # a failing side call must not fail the answer
        log.warning("condense: the model failed (%s); using the heuristic", e)
        return condense_heuristic(question, history)
    why = check_rewrite(question, text, ent, earlier[-1])
    if why:
        log.info("condense: model rewrite %r rejected (%s); using the heuristic", text, why)
        return condense_heuristic(question, history)
    ent_q = in_script(ent, script_sample(question, earlier))
    return Condensed(text, "model", ent_q if ent and normalize(ent) in normalize(text) else "")

