"""Evaluation metrics, correct for Chinese. Pure functions: text and ids in, numbers out.

Retrieval (Recall@k, MRR@10, nDCG@10 through ranx, at document and chunk level, with chunk
relevance derived from evidence quotes) lives in rag.evaluate.retrieval_scores and is
re-exported here; its docstring says how quotes become relevant chunks.

Answers follow the CMRC 2018 scorer (cmrc2018_evaluate.py), with script folding added:
normalise (OpenCC → simplified, NFKC half-width, lower case), tokenise as its
`mixed_segmentation` does (every Chinese character is a token, a run of other letters/digits is
one token; punctuation and whitespace dropped), then
- EM: the normalised strings are equal (`rag.text.norm.normalize_answer`), max over references;
- F1: from the *longest common substring* of the token lists (as CMRC; not a bag-of-characters
  overlap), P = lcs/len(pred), R = lcs/len(ref), max over references.

Citations are rechecked independently of the answering module's own `supported` flag with a
lexical support score (`lexical_support`), because an evaluation that trusts the system's
self-assessment measures nothing; the self-reported figure is reported beside it. An English
statement citing a Chinese passage shares no bigrams with it, so its recheck is the facts it
states in a form both languages share (`crosslingual_support`: numbers, Chinese terms, pinyin
names); one that states none of them keeps the system's flag.

Markers, sentences, quote location and bigram recall come from `rag.text` (shared with the
citation stage, so both read an answer the same way); `strip_markers` and `locate_quote` are
re-exported here.
"""

from __future__ import annotations

import math
import re
from typing import Any, Iterable, Mapping, Sequence

from rag.evaluate.answer_scores import (  # the answer-text scores, re-exported: callers read them as M.*
    answer_correct,
    answer_tokens,
    char_f1,
    contains_parts,
    contains_reference,
    exact_match,
    list_coverage,
)
from rag.evaluate.retrieval_scores import (  # the retrieval scores, re-exported likewise
    chunk_qrels,
    doc_ranking,
    evidence_ranking,
    heading_chunks,
    relevant_chunks,
    retrieval_metrics,
)
from rag.text.grams import overlap
from rag.text.markers import MARKER_RE, parse_markers, strip_markers
from rag.text.match import locate_quote  # noqa: F401  (re-exported: the one quote matcher)
from rag.text.sentences import sentence_spans
from rag.text.norm import normalize, normalize_answer

__all__ = [
    "answer_tokens",
    "exact_match",
    "char_f1",
    "contains_reference",
    "contains_parts",
    "answer_correct",
    "list_coverage",
    "strip_markers",
    "split_statements",
    "lexical_support",
    "crosslingual_support",
    "citation_precision",
    "citation_recall",
    "cites_evidence",
    "refusal_scores",
    "latency_summary",
    "locate_quote",
    "relevant_chunks",
    "heading_chunks",
    "chunk_qrels",
    "evidence_ranking",
    "doc_ranking",
    "retrieval_metrics",
    "mean",
]


# ----------------------------------------------------------------------------- citations

# `strip_markers` is re-exported from rag.text.markers (the one marker grammar).


def _markers(text: str) -> list[int]:
    return [n for m in parse_markers(text) for n in m.numbers]


# A marker group right after a sentence end ("第一句。【1】") belongs to the sentence before it.
_GROUP = rf"(?:{MARKER_RE.pattern})+"
_AFTER_END = re.compile(rf"(?P<end>[。！？!?；;])\s*(?P<group>{_GROUP})")
_BEFORE_END = re.compile(rf"(?P<group>{_GROUP})(?P<end>[。！？!?；;])$")


def split_statements(text: str) -> list[str]:
    """Answer statements: Chinese sentences (`rag.text.sentences.sentence_spans`), each
    keeping its trailing citation markers; pieces without any content token are dropped.

    >>> split_statements("会议在北京召开。【1】参会者有三百人【2】。")
    ['会议在北京召开。【1】', '参会者有三百人。【2】']
    """
    # markers written after the sentence end belong to the sentence before them
    glued = _AFTER_END.sub(lambda m: m["group"] + m["end"], text)
    out = []
    for a, b in sentence_spans(glued):
        s = glued[a:b]
        if answer_tokens(strip_markers(s)):
            # move the markers back behind the punctuation for readability of reports
            out.append(_BEFORE_END.sub(lambda m: m["end"] + m["group"], s))
    return out


def lexical_support(statement: str, passage: str) -> float:
    """Share of the statement's token bigrams (CMRC tokens, script-folded) found in the passage.

    >>> lexical_support("会议在北京召开", "會議於北京舉行並召開")
    0.5
    >>> # statement bigrams: 会议 议在 在北 北京 京召 召开 (6); in passage: 会议 北京 召开 (3) → 3/6
    """
    st = answer_tokens(strip_markers(statement))
    if len(st) == 1:  # a one-token statement: is the token in the passage at all
        return float(st[0] in answer_tokens(passage))
    return overlap(strip_markers(statement), passage, units=answer_tokens)


def _latin_heavy(text: str) -> bool:
    letters = [ch for ch in text if ch.isalpha()]
    return bool(letters) and sum(ch.isascii() for ch in letters) / len(letters) > 0.5


def crosslingual_support(statement: str, passage: str) -> float | None:
    """Share of an English statement's checkable facts found in a Chinese passage: its numbers
    (thousands separators dropped), its Chinese runs and its romanised names (rag.text.pinyin).
    None when it states none of them (nothing to recheck).

    >>> p = "富锦市委选派了29名优秀后备干部到村任第一书记，总经理刘恩福说。"
    >>> crosslingual_support("Fujin sent 29 cadres; the manager Liu Enfu agreed.", p)
    1.0
    >>> crosslingual_support("Fujin sent 30 cadres; the manager Bao Sheng agreed.", p)
    0.0
    >>> crosslingual_support("The campaign went well.", p) is None
    True
    """
    from rag.text.pinyin import find_name, romanized_names

    body = strip_markers(statement)
    key = normalize(passage)
    digits = re.sub(r"(?<=\d)[,，](?=\d{3})", "", key)
    items = [(n, n in digits) for n in re.findall(r"\d+(?:\.\d+)?", re.sub(r"(?<=\d),(?=\d{3})", "", body))]
    items += [(r, normalize(r) in key) for r in re.findall(r"[\u3400-\u9fff]{2,}", body)]
    items += [(n, find_name(n, passage) is not None) for n in romanized_names(body)]
    return sum(ok for _, ok in items) / len(items) if items else None


def _get(c: Any, key: str, default: Any = None) -> Any:
    return c.get(key, default) if isinstance(c, Mapping) else getattr(c, key, default)


def _citation_ok(c: Any, statement: str, passages: Mapping[str, str], threshold: float) -> bool:
    passage = passages.get(_get(c, "chunk_id", ""), "")
    if passage and statement and _latin_heavy(strip_markers(statement)) and not _latin_heavy(passage):
        cross = crosslingual_support(statement, passage)
        # all stated facts must be there; with none to check, nothing is rechecked: the flag stands
        return bool(_get(c, "supported", False)) if cross is None else cross == 1.0
    if passage and statement and answer_tokens(strip_markers(statement)):
        return lexical_support(statement, passage) >= threshold
    return bool(_get(c, "supported", False))  # nothing to recheck against: trust the flag


def citation_precision(
    citations: Sequence[Any], passages: Mapping[str, str] | None = None, threshold: float = 0.5
) -> float | None:
    """Share of citations whose passage supports the statement they are attached to.

    `citations`: Citation objects or their dicts (need `chunk_id`, `statement`, `supported`).
    Support is rechecked with `lexical_support(statement, passage) >= threshold` when the passage
    text is known, else the citation's own `supported` flag is used. None without citations.

    >>> cs = [{"chunk_id": "a#0", "statement": "会议在北京召开", "supported": True},
    ...       {"chunk_id": "a#1", "statement": "会议在上海召开", "supported": True}]
    >>> citation_precision(cs, {"a#0": "会议在北京召开。", "a#1": "代表三百人。"})
    0.5
    """
    if not citations:
        return None
    passages = passages or {}
    ok = sum(_citation_ok(c, _get(c, "statement", "") or "", passages, threshold) for c in citations)
    return ok / len(citations)


def citation_recall(
    answer: str,
    citations: Sequence[Any],
    passages: Mapping[str, str] | None = None,
    threshold: float = 0.5,
) -> float | None:
    """Share of answer statements that carry at least one supporting citation.

    A statement carries the citations whose 【n】 marker it contains, and any citation whose
    recorded `statement` is that sentence (answers whose markers were stripped). None when the
    answer has no statements.

    >>> cs = [{"n": 1, "chunk_id": "a#0", "statement": "会议在北京召开。", "supported": True}]
    >>> citation_recall("会议在北京召开。【1】参会者有三百人。", cs, {"a#0": "会议在北京召开。"})
    0.5
    >>> # two statements; only the first carries a citation and it is supported → 1/2
    """
    statements = split_statements(answer)
    if not statements:
        return None
    passages = passages or {}
    by_n: dict[int, list[Any]] = {}
    for c in citations:
        by_n.setdefault(int(_get(c, "n", 0) or 0), []).append(c)
    good = 0
    for s in statements:
        ns = normalize_answer(strip_markers(s))
        cands = [c for n in _markers(s) for c in by_n.get(n, [])]
        for c in citations:
            st = normalize_answer(strip_markers(_get(c, "statement", "") or ""))
            if st and ns and (st == ns or (len(st) >= 4 and (st in ns or ns in st))) and c not in cands:
                cands.append(c)
        if any(_citation_ok(c, s, passages, threshold) for c in cands):
            good += 1
    return good / len(statements)


def cites_evidence(cited_chunk_ids: Iterable[str], relevant_chunk_ids: Iterable[str]) -> float:
    """1.0 when the answer cites at least one passage holding the evidence quote.

    >>> cites_evidence(["d#3", "d#7"], ["d#7"]), cites_evidence(["d#3"], ["d#7"])
    (1.0, 0.0)
    """
    rel = set(relevant_chunk_ids)
    return float(any(c in rel for c in cited_chunk_ids))


# ----------------------------------------------------------------------------- refusal, latency


def refusal_scores(answerable: Sequence[bool], refused: Sequence[bool]) -> dict[str, float | None]:
    """Refusal accuracy (share of unanswerable questions refused) and false-refusal rate (share of
    answerable questions refused). None where there is nothing to measure.

    >>> refusal_scores([True, True, True, True, False, False], [False, True, False, False, True, False])
    {'refusal_accuracy': 0.5, 'false_refusal_rate': 0.25, 'n_unanswerable': 2, 'n_answerable': 4}
    """
    if len(answerable) != len(refused):
        raise ValueError("answerable and refused must have the same length")
    un = [r for a, r in zip(answerable, refused) if not a]
    an = [r for a, r in zip(answerable, refused) if a]
    return {
        "refusal_accuracy": (sum(map(bool, un)) / len(un)) if un else None,
        "false_refusal_rate": (sum(map(bool, an)) / len(an)) if an else None,
        "n_unanswerable": len(un),
        "n_answerable": len(an),
    }


def latency_summary(seconds: Iterable[float | None]) -> dict[str, float | None]:
    """p50/p95 (linear interpolation, numpy's default), mean and max of the known values.

    >>> latency_summary([1.0, 2.0, 3.0, 4.0, None])
    {'p50': 2.5, 'p95': 3.85, 'mean': 2.5, 'max': 4.0, 'n': 4}
    """
    import numpy as np

    v = [float(x) for x in seconds if x is not None and not (isinstance(x, float) and math.isnan(x))]
    if not v:
        return {"p50": None, "p95": None, "mean": None, "max": None, "n": 0}
    a = np.asarray(v)
    return {
        "p50": round(float(np.percentile(a, 50)), 6),
        "p95": round(float(np.percentile(a, 95)), 6),
        "mean": round(float(a.mean()), 6),
        "max": round(float(a.max()), 6),
        "n": len(v),
    }


def mean(values: Iterable[float | None]) -> float | None:
    """Mean of the known values (None entries skipped); None when nothing is known."""
    v = [float(x) for x in values if x is not None]
    return sum(v) / len(v) if v else None
