"""After generation: a draft reviewed statement by statement (rag.cite.review), then either the
checked answer or a refusal that says why — nothing the model said could be verified, or what it
verified counts in another unit than the one asked (the neighbouring fact of a near miss).

The second of the answer stage's two refusal decisions (the first, before generation, is
rag.answer.refusal.pre_check); a refused draft and why it failed stay in the diagnostics.
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Sequence

from rag.answer.edges import to_answer_script
from rag.answer.refusal import describe_unit_mismatch, is_refusal, refusal_text, unit_mismatch
from rag.cite.resolve import TextSource
from rag.types import Citation, Claim, Passage

_UNVERIFIED = {
    "zh-Hans": "（模型给出的回答无法在资料中核实。）",
    "zh-Hant": "（模型給出的回答無法在資料中核實。）",
    "en": "(The model's answer could not be verified against the documents.)",
}


class Verdict(NamedTuple):
    """What `verdict` decided: refused, the refusal reason, the text shown, the citations and
    claims (empty when refused), and the draft's diagnostics (empty when not refused)."""

    refused: bool
    reason: str
    text: str
    citations: list[Citation]
    claims: list[Claim]
    draft: dict


def verdict(
    raw: str, passages: Sequence[Passage], standalone: str, query: str, lang: str, reason: str, *,
    text_source: TextSource | None = None, similarity: Callable[[str, str], float] | None = None,
) -> Verdict:
    """Review the draft `raw` against `passages` for the question `standalone` (in `lang`;
    `query`: its Chinese retrieval form), `similarity` judging English statements. Returns the
    checked answer in the question's script, or a refusal saying why (`reason` is kept when the
    answer stands).

    >>> from rag.types import Chunk, Hit
    >>> c = Chunk("d#0", "d", 0, "某局", (), "该局现有干部职工68人。", 0, 12)
    >>> ps = [Passage.from_hit(1, Hit(c, 1.0, 1))]
    >>> verdict("该局有干部职工68人【1】。", ps, "该局有多少名干部职工？", "", "zh-Hant", "").text
    '該局有幹部職工68人【1】。'
    >>> v = verdict("该局有干部职工70人【1】。", ps, "该局有多少名干部职工？", "", "zh-Hans", ""); (v.refused, v.reason)
    (True, '（模型给出的回答无法在资料中核实。）')
    """
    from rag.cite.review import review

    shown, citations, claims = review(
        raw,
        passages,
        standalone,
        text_source=text_source,
        similarity=similarity,
        attribute=True,
        convert=lambda t: to_answer_script(t, lang),
        query=query if lang == "en" and query != standalone else "",
    )

    def draft() -> dict:
        # a refused draft and why it failed stay in the diagnostics (eval, logs), not the answer
        return {"draft": raw[:2000], "draft_claims": [c.to_dict() for c in claims],
                "draft_citations": [{"n": c.n, "supported": c.supported, "missing": c.metadata.get("missing"),
                                     "reason": c.metadata.get("reason")} for c in citations]}

    if not any(c.verified for c in claims):
        # nothing the model said could be verified (or it declined): refuse, saying why
        model_declined = is_refusal(raw)
        reason = "" if model_declined else _UNVERIFIED.get(lang, _UNVERIFIED["zh-Hans"])
        return Verdict(True, reason, refusal_text(lang, reason), [], [], draft())
    from rag.text.norm import normalize

    near = unit_mismatch(standalone, [normalize(c.text) for c in claims if c.verified]) if lang != "en" else None
    if near is not None:
        # verified, but a count in another unit than the one asked: the neighbouring fact of a
        # near miss ("多少名职工" → "19支作业队") is not an answer
        reason = describe_unit_mismatch(near[1], lang)
        return Verdict(True, reason, refusal_text(lang, reason), [], [], draft())
    return Verdict(False, reason, shown.strip(), citations, claims, {})
