"""rag.index.vectors: the int8 scan with exact rescoring gives the exact top-k (older versions without the
int8 copy: tests/test_index_format.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rag.index import vectors


def clustered(n: int, d: int, seed: int = 0) -> np.ndarray:
    """Unit vectors mixed from a few hundred centres (like embeddings: crowded, many near-ties)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(300, d))
    a, b = rng.integers(0, 300, n), rng.integers(0, 300, n)
    x = 0.6 * centres[a] + 0.4 * centres[b] + rng.normal(0, 0.05, (n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def exact_top(x: np.ndarray, q: np.ndarray, k: int) -> list[int]:
    s = x @ q
    return [int(i) for i in np.lexsort((np.arange(len(x)), -s))[:k]]


def test_int8_scan_with_rescoring_matches_exact_search(tmp_path):
    x = clustered(6000, 64)
    store = vectors.DenseStore(tmp_path, json.loads(json.dumps(vectors.write(tmp_path, x, 64))))
    assert store.use_coarse and store.ntotal == 6000
    rng = np.random.default_rng(1)
    qs = x[rng.integers(0, 6000, 300)] + rng.normal(0, 0.3, (300, 64)).astype(np.float32)
    qs /= np.linalg.norm(qs, axis=1, keepdims=True)
    same10 = same50 = 0
    for q in qs:
        got = store.search(q, 50)
        assert [s for _, s in got] == sorted((s for _, s in got), reverse=True)
        rows = [r for r, _ in got]
        same50 += rows == exact_top(x, q, 50)
        same10 += rows[:10] == exact_top(x, q, 10)
    # the bar: top-10 identical to exact search for ≥ 99.5 % of queries
    assert same10 / len(qs) >= 0.995 and same50 / len(qs) >= 0.99
    # exact mode (the recall reference) is exact; scores are the float32 inner products
    store.use_coarse = False
    r, s = store.search(qs[0], 1)[0]
    assert r == exact_top(x, qs[0], 1)[0] and s == pytest.approx(float(x[r] @ qs[0]), abs=1e-5)


def test_small_store_and_k_larger_than_rows(tmp_path):
    x = clustered(5, 16)
    store = vectors.DenseStore(tmp_path, vectors.write(tmp_path, x, 16))
    assert [r for r, _ in store.search(x[3], 10)] == exact_top(x, x[3], 10)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert vectors.DenseStore(empty, vectors.write(empty, np.zeros((0, 16), np.float32), 16)).search(x[0], 3) == []
