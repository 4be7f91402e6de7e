"""Rank fusion: pure functions that merge several retrievers' rankings into one.

Two families, both deterministic:

- `rrf`: weighted reciprocal-rank fusion (Cormack et al. 2009), score(d) = Σ_r w_r / (k + rank_r(d)).
  Only ranks matter, so retrievers with incomparable scores (BM25 vs cosine) combine safely.
- `convex`: per-query score normalisation (min-max or z-score over the candidate pool) followed
  by a convex combination Σ_r w_r · norm_r(d). Unlike RRF it keeps *how much* better the top
  candidate is, which matters when one retriever is far more confident than the other (BM25 on
  a question that repeats a rare name verbatim). The caller should pass every retriever's score
  for every candidate (the hybrid searcher computes exact dense and BM25 scores for the union of
  candidates); a missing score counts as that retriever's lowest score in the pool.

Ties are broken deterministically: higher fused score, then the best (smallest) rank any
retriever gave the item, then the item id (string order). Written by hand because the formula
is three lines and LangChain's `EnsembleRetriever` rebuilds its retrievers per query and breaks
ties by insertion order.
"""

from __future__ import annotations

from dataclasses import dataclass

import math
from typing import Mapping, Sequence


def _tie_key(item: str, score: float, best_rank: Mapping[str, int]) -> tuple[float, int, str]:
    return (-score, best_rank.get(item, 1 << 30), item)


def rrf(
    rankings: Mapping[str, Sequence[str]],
    k: float = 60,
    weights: Mapping[str, float] | None = None,
) -> list[tuple[str, float]]:
    """Weighted reciprocal-rank fusion of ranked id lists (best first, ranks are 1-based).

    `weights` defaults to 1.0 for every retriever; a retriever missing from `weights` gets 1.0.
    Duplicate ids inside one ranking count only at their first (best) position.

    Worked example (k=60, weights dense=1, bm25=2):
        dense: a b c     → a: 1/61, b: 1/62, c: 1/63
        bm25:  b a       → b: 2/61, a: 2/62
        a = 1/61 + 2/62 = 0.0163934 + 0.0322581 = 0.0486515 → 0.048652
        b = 1/62 + 2/61 = 0.0161290 + 0.0327869 = 0.0489159 → 0.048916
        c = 1/63                                   = 0.0158730 → 0.015873
    >>> [(i, round(s, 6)) for i, s in rrf({"dense": ["a", "b", "c"], "bm25": ["b", "a"]}, k=60,
    ...                                     weights={"dense": 1, "bm25": 2})]
    [('b', 0.048916), ('a', 0.048652), ('c', 0.015873)]
    """
    if k < 0:
        raise ValueError("rrf k must be >= 0")
    weights = weights or {}
    scores: dict[str, float] = {}
    best_rank: dict[str, int] = {}
    for name, ranking in rankings.items():
        w = float(weights.get(name, 1.0))
        seen: set[str] = set()
        for rank, item in enumerate(ranking, 1):
            if item in seen:
                continue
            seen.add(item)
            scores[item] = scores.get(item, 0.0) + w / (k + rank)
            best_rank[item] = min(best_rank.get(item, rank), rank)
    return sorted(scores.items(), key=lambda it: _tie_key(it[0], it[1], best_rank))


def normalize_scores(scores: Mapping[str, float], method: str = "minmax") -> dict[str, float]:
    """Per-query normalisation of one retriever's candidate scores.

    - "minmax": (s − min) / (max − min); all-equal scores map to 1.0 (nothing to prefer).
    - "zscore": (s − mean) / std (population std); std 0 maps to 0.0.
    - "max": s / max (scale only; keeps 0 as 0 — BM25's natural floor); max ≤ 0 maps to 0.0.

    >>> normalize_scores({"a": 10.0, "b": 5.0, "c": 0.0})
    {'a': 1.0, 'b': 0.5, 'c': 0.0}
    >>> normalize_scores({"a": 3.0, "b": 1.0}, "zscore")
    {'a': 1.0, 'b': -1.0}
    """
    if not scores:
        return {}
    vals = list(scores.values())
    if method == "minmax":
        lo, hi = min(vals), max(vals)
        span = hi - lo
        return {k: ((v - lo) / span if span > 0 else 1.0) for k, v in scores.items()}
    if method == "zscore":
        mean = sum(vals) / len(vals)
        std = math.sqrt(sum((v - mean) ** 2 for v in vals) / len(vals))
        return {k: ((v - mean) / std if std > 0 else 0.0) for k, v in scores.items()}
    if method == "max":
        hi = max(vals)
        return {k: (v / hi if hi > 0 else 0.0) for k, v in scores.items()}
    raise ValueError(f"unknown score normalisation {method!r} (minmax | zscore | max)")


def convex(
    scores: Mapping[str, Mapping[str, float]],
    weights: Mapping[str, float] | None = None,
    norm: str = "minmax",
) -> list[tuple[str, float]]:
    """Normalise each retriever's scores over the candidate pool, then add them with weights.

    `scores` is {retriever: {item: raw score}}. Items missing from a retriever get that
    retriever's lowest score in the pool (so they are not rewarded for being absent). Ties: as
    `rrf`, with each retriever's rank taken from its raw scores.

    Worked example (minmax, weights dense=0.3, bm25=0.7):
        dense: a 0.90, b 0.80, c 0.70 → a 1.0, b 0.5, c 0.0
        bm25:  a 2.0,  b 12.0 (c missing → 2.0) → a 0.0, b 1.0, c 0.0
        a = 0.3·1.0 + 0.7·0.0 = 0.30;  b = 0.3·0.5 + 0.7·1.0 = 0.85;  c = 0.0
    >>> [(i, round(s, 2)) for i, s in convex({"dense": {"a": .9, "b": .8, "c": .7},
    ...                                        "bm25": {"a": 2.0, "b": 12.0}},
    ...                                       weights={"dense": .3, "bm25": .7})]
    [('b', 0.85), ('a', 0.3), ('c', 0.0)]
    """
    weights = weights or {}
    items: set[str] = set()
    for s in scores.values():
        items.update(s)
    fused = dict.fromkeys(items, 0.0)
    best_rank: dict[str, int] = {}
    for name, s in scores.items():
        if not s:
            continue
        floor = min(s.values())
        full = {i: s.get(i, floor) for i in items}
        normed = normalize_scores(full, norm)
        w = float(weights.get(name, 1.0))
        for i, v in normed.items():
            fused[i] += w * v
        for rank, i in enumerate(sorted(s, key=lambda i: (-s[i], i)), 1):
            best_rank[i] = min(best_rank.get(i, rank), rank)
    return sorted(fused.items(), key=lambda it: _tie_key(it[0], it[1], best_rank))


@dataclass(frozen=True)
class Candidates:
    """One query's candidates, in the open form every retriever returns (BEIR's {doc: score}):
    each retriever's own top list in rank order, and both retrievers' exact scores over the union
    of the two lists (`*_all`), which `convex` normalises without guessing a missing score."""

    dense: list[tuple[str, float]]
    bm25: list[tuple[str, float]]
    dense_all: dict[str, float]
    bm25_all: dict[str, float]


def fuse(c: Candidates, fusion: str, weights: Mapping[str, float] | None = None, rrf_k: int = 60,
         norm: str = "minmax") -> list[tuple[str, float]]:
    """The hybrid ranking of one query: `rrf` over the retrievers' own lists, `convex` over their
    exact scores on the union. What `HybridSearcher.search` runs and the retrieval benchmark tunes.

    >>> c = Candidates(dense=[("a", .9), ("b", .8)], bm25=[("b", 12.0), ("c", 3.0)],
    ...                dense_all={"a": .9, "b": .8, "c": .7}, bm25_all={"a": 2.0, "b": 12.0, "c": 3.0})
    >>> [i for i, _ in fuse(c, "rrf", {"dense": 1, "bm25": 1}, rrf_k=60)]  # b is in both lists
    ['b', 'a', 'c']
    >>> [(i, round(s, 2)) for i, s in fuse(c, "convex", {"dense": .3, "bm25": .7})]
    [('b', 0.85), ('a', 0.3), ('c', 0.07)]
    """
    if fusion == "rrf":
        return rrf({"dense": [i for i, _ in c.dense], "bm25": [i for i, _ in c.bm25]}, k=rrf_k, weights=weights)
    if fusion == "convex":
        return convex({"dense": c.dense_all, "bm25": c.bm25_all}, weights=weights, norm=norm)
    raise ValueError(f"unknown fusion {fusion!r} (rrf | convex)")
