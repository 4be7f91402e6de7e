"""Claim-level support checking: is what a statement *asserts* in the passage it cites?

Bigram overlap (the old check) passes a statement made of the passage's words that says
something the passage does not: a list of items that occur nowhere, a neighbouring year, a name
swapped for another. Here a statement is reduced to its answer-bearing items and each must be
found in the cited passage after script and width folding (rag.text.norm.normalize):

- strict items, all required: numbers with their unit and magnitude (`3000名`, `2010年`,
  `25%`, `三千名` = `3000名`; read by rag.cite.quantities), quoted terms (`『六学』`, `“三包”`, `《…》`), list items (a
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
from typing import Callable

from rag.cite.quantities import Quantity, blank_numbers, quantities, quantity_found
from rag.text.sentences import sentence_spans
from rag.text.norm import normalize, normalize_answer

# ---------------------------------------------------------------- items of a statement

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


# the metric form (rag.text.norm.normalize_answer), cached: an answer's statements are checked
# against the same passages again and again
_key = lru_cache(maxsize=4096)(normalize_answer)


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
    body = blank_numbers(normalize(text)[:400])
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
    (rag.answer.translate.to_chinese_query). Cross-lingual cosine is weak on e5-small, so once every
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
    qk = _key(question)
    qs = _claimed_numbers(statement, qk)
    numbers = _number_items(qs, passage, pk)
    strict = [*numbers, *_quoted_items(statement, pk, qk), *_list_item_items(statement, pk)]
    if len(numbers) >= 2 and all(found for _, found in numbers) and not list_items(statement):
        apart = _numbers_apart(qs, passage)
        if apart:
            return ClaimCheck(False, 0.0, apart, "numbers not stated together")
    if _latin_share(statement) > 0.5 and _latin_share(passage) < 0.3:
        strict += _chinese_run_items(statement, pk)
        return _check_english(statement, passage, question, strict, similarity, min_similarity, query)
    return _check_chinese(statement, pk, question, strict)


# a statement's numbers must be stated together: within this many consecutive sentences
NUMBER_WINDOW = 3


def _numbers_apart(qs: list[Quantity], passage: str) -> tuple[str, ...]:
    r"""The numbers `qs` (a statement's, as `_claimed_numbers` reads them) when no
    `NUMBER_WINDOW` consecutive sentences of `passage` (a heading line is a sentence of its own)
    hold them all, else (). A year from a heading's date range beside a count from the body
    ("2011年表彰了1个…") is not something the passage says.

    >>> p = "（2010年6月-2011年6月）\n要树立典型。要加强学习。要改进作风。\n现有党组织12个。"
    >>> _numbers_apart(quantities("2011年表彰了12个党组织"), p)
    ('2011年', '12个')
    >>> _numbers_apart(quantities("2011年6月前完成"), p)
    ()
    """
    spans = sentence_spans(passage)
    per = [quantities(passage[a:b]) for a, b in spans]  # each sentence read once, not once per window
    for i in range(len(spans)):
        j = min(i + NUMBER_WINDOW, len(spans))
        window, wk = [q for part in per[i:j] for q in part], _key(passage[spans[i][0] : spans[j - 1][1]])
        if all(_number_found(q, window, wk) for q in qs):
            return ()
    return tuple(q.text for q in qs)


# each strict-item check: (item, found in the passage) for every item of its kind


def _claimed_numbers(statement: str, qk: str) -> list[Quantity]:
    """The numbers a statement claims: a Chinese numeral the question has too is part of a name
    (七台河, 三河市), not a quantity."""
    return [q for q in quantities(statement) if q.text[:1].isdigit() or not (qk and _key(q.text) in qk)]


def _number_found(q: Quantity, found_in: list[Quantity], text_key: str) -> bool:
    """The same value and unit class, or the literal text (a numeral inside a name)."""
    return quantity_found(q, found_in) or _in(q.text, text_key)


def _number_items(qs: list[Quantity], passage: str, pk: str) -> list[tuple[str, bool]]:
    """Numbers with their units, each found in the passage (`_number_found`)."""
    pq = quantities(passage)
    return [(q.text, _number_found(q, pq, pk)) for q in qs]


def _quoted_items(statement: str, pk: str, qk: str) -> list[tuple[str, bool]]:
    """Quoted terms, each found as written (after folding)."""
    # the question's own term (its topic), as with names: not what the answer adds
    return [(t, _in(t, pk)) for t in quoted_terms(statement) if not (qk and _key(t) and _key(t) in qk)]


def _list_item_items(statement: str, pk: str) -> list[tuple[str, bool]]:
    """List items, found whole or by most of their bigrams."""
    return [(item, _in(item, pk) or _bigram_recall(item, pk) >= 0.75) for item in list_items(statement)]


def _chinese_run_items(statement: str, pk: str) -> list[tuple[str, bool]]:
    """Chinese runs quoted inside an English statement (names, terms)."""
    out = []
    for run in re.findall(r"[\u3400-\u9fff]{2,}", statement):
        if _key(run) in _FUNCTION or _key(run) in ("现有资料", "资料中"):
            continue  # a model's stray Chinese filler ("According to the existing资料") claims nothing
        out.append((run, _in(run, pk)))
    return out


def _check_english(
    statement: str, passage: str, question: str, strict: list[tuple[str, bool]],
    similarity: Callable[[str, str], float] | None, min_similarity: float, query: str,
) -> ClaimCheck:
    """An English statement over a Chinese passage: its strict items and romanised names must be
    found; the rest is judged by `similarity` when there is one."""
    strict_missing = [item for item, found in strict if not found]
    anchors = _english_anchors(statement, passage, question, strict_missing)
    n_strict = len(strict) + len(anchors["names"])
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


def _check_chinese(statement: str, pk: str, question: str, strict: list[tuple[str, bool]]) -> ClaimCheck:
    """A Chinese statement: its strict items and names must be found, and most of its soft
    words (the content words it adds beyond the question)."""
    strict_missing = [item for item, found in strict if not found]
    n_strict = len(strict)
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

