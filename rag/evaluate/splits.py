"""Dev / held-out halves and the refusal summary of the eval harness's metrics.

The project tunes on the dev half of a set (benchmarks/calibrate_refusal.py chooses the refusal
threshold there) and reports the held-out half beside it. `split_map` places every question of a
set with `rag.evaluate.evalsets.dev_split` (sha1 of the query id, stratified by answerability, a follow-up
in the half of its conversation's first question); the harness records each row's half as
`split` in results.jsonl, `--split dev|heldout` runs one half, and metrics.json holds, per
configuration, the same metrics on each half under `by_split`.

Refusal: refusal accuracy (unanswerable refused) and false-refusal rate (answerable refused) are
joined by their balanced accuracy (mean of the two recalls; any constant policy scores 0.5) and by
the decision accuracy over all questions shown beside what never refusing scores on the same
questions: on the seed set's held-out half (21 unanswerable of 132) never refusing is 0.841
accurate, so the calibrated refusal's 0.833 there was worse than no refusal at all.

Deliberate compromises
- The split is computed over every question of the set, not only the selected ones, so a
  `--limit`/`--sample` run puts each question in the same half as a full run (its halves are then
  unbalanced). The halves are a property of the set, not of the run.
- `by_split` is not part of baselines (`flat_metrics` reads the whole-set groups only); the
  never-refuse accuracy is a property of the questions, not of the system, and is never checked.
- Answerability follows the harness's rule (answers row, then query metadata, then qrels), which
  equals calibrate_refusal's on sets with an answers file.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

from rag.evaluate.evalsets import EvalSet, dev_split
from rag.evaluate import metrics as M

SPLITS = ("dev", "heldout")
CHOICES = ("all", *SPLITS)
LABEL = {"all": "all", "dev": "dev", "heldout": "held-out"}


def answerable_of(es: EvalSet, qid: str) -> bool:
    a = es.answers.get(qid) or {}
    meta = (es.queries.get(qid) or {}).get("metadata") or {}
    return bool(a.get("answerable", meta.get("answerable", bool(es.qrels.get(qid)))))


def split_map(es: EvalSet) -> dict[str, str]:
    """Query id → "dev" | "heldout", over every question of the set."""
    ids = list(es.queries)
    labels = {q: answerable_of(es, q) for q in ids}
    follows = {q: (es.answers.get(q) or {}).get("follow_up_of") or ((es.queries[q].get("metadata") or {}).get("follow_up_of"))
               for q in ids}
    dev, held = dev_split(ids, labels, follows)
    return {**{q: "dev" for q in dev}, **{q: "heldout" for q in held}}


def keep_ids(smap: Mapping[str, str], split: str) -> set[str] | None:
    """The ids of one half, or None for "all"."""
    if split not in CHOICES:
        raise ValueError(f"unknown split {split!r}; choose from {', '.join(CHOICES)}")
    return None if split == "all" else {q for q, s in smap.items() if s == split}


def refusal_summary(answerable: Sequence[bool], refused: Sequence[bool]) -> dict[str, float | None]:
    """rag.evaluate.metrics.refusal_scores plus balanced accuracy, decision accuracy and the
    accuracy of never refusing on the same questions.

    >>> s = refusal_summary([True, True, True, False], [False, True, False, True])
    >>> # balanced (1 + 2/3) / 2; right decisions 3 of 4; never refusing: 3 answerable of 4
    >>> round(s["balanced_accuracy"], 4), s["accuracy"], s["never_refuse_accuracy"]
    (0.8333, 0.75, 0.75)
    """
    s: dict[str, Any] = dict(M.refusal_scores(list(answerable), list(refused)))
    n = len(answerable)
    ra, fr = s.get("refusal_accuracy"), s.get("false_refusal_rate")
    s["balanced_accuracy"] = (ra + 1.0 - fr) / 2 if ra is not None and fr is not None else None
    s["accuracy"] = sum(1 for a, r in zip(answerable, refused) if bool(a) != bool(r)) / n if n else None
    s["never_refuse_accuracy"] = sum(map(bool, answerable)) / n if n else None
    return s


def row_split(row: Mapping[str, Any], smap: Mapping[str, str]) -> str | None:
    return row.get("split") or smap.get(row["qid"])


def by_split(rows: Sequence[Mapping[str, Any]], smap: Mapping[str, str],
             summarise: Callable[[list[Mapping[str, Any]]], dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """`summarise(rows of one half)` for each half that has rows."""
    out: dict[str, dict[str, Any]] = {}
    for s in SPLITS:
        sub = [r for r in rows if row_split(r, smap) == s]
        if sub:
            out[s] = summarise(sub)
    return out


def split_counts(qids: Sequence[str], smap: Mapping[str, str]) -> dict[str, int]:
    return {s: sum(1 for q in qids if smap.get(q) == s) for s in SPLITS}
