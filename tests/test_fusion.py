"""rag.retrieve.fusion on hand-made rankings (expected values computed by hand in the comments)."""

import pytest

from rag.retrieve.fusion import convex, normalize_scores, rrf


def test_rrf_equal_weights_hand_computed():
    # k=60: a = 1/61 + 1/63 = 0.0163934 + 0.0158730 = 0.0322664
    #       b = 1/62 + 1/61 = 0.0161290 + 0.0163934 = 0.0325224
    #       c = 1/63        = 0.0158730
    #       d =        1/62 = 0.0161290
    got = rrf({"dense": ["a", "b", "c"], "bm25": ["b", "d", "a"]}, k=60)
    assert [i for i, _ in got] == ["b", "a", "d", "c"]
    assert got[0][1] == pytest.approx(1 / 62 + 1 / 61)
    assert got[1][1] == pytest.approx(1 / 61 + 1 / 63)
    assert got[2][1] == pytest.approx(1 / 62)
    assert got[3][1] == pytest.approx(1 / 63)


def test_rrf_weights_change_the_winner():
    # k=10, bm25 weight 3: x = 1/11 + 3/12 = 0.0909 + 0.25 = 0.3409 ; y = 1/12 + 3/11 = 0.0833 + 0.2727 = 0.3561
    got = rrf({"dense": ["x", "y"], "bm25": ["y", "x"]}, k=10, weights={"dense": 1, "bm25": 3})
    assert [i for i, _ in got] == ["y", "x"]
    assert got[0][1] == pytest.approx(1 / 12 + 3 / 11)
    # dense weight 0 → pure bm25 order
    assert [i for i, _ in rrf({"dense": ["x", "y"], "bm25": ["y", "x"]}, weights={"dense": 0})] == ["y", "x"]


def test_rrf_ties_are_deterministic():
    # p and q both get 1/61 + 1/62: tie → best single rank (both 1) → id order
    a = rrf({"dense": ["p", "q"], "bm25": ["q", "p"]})
    b = rrf({"bm25": ["q", "p"], "dense": ["p", "q"]})
    assert a == b and [i for i, _ in a] == ["p", "q"]
    # k=0: z = 1/1 + 1/2 = 1.5, y = 1/2 + 1/1 = 1.5 → tie, both best rank 1 → id order "y" < "z"
    got = rrf({"r1": ["z", "y"], "r2": ["y", "z"]}, k=0)
    assert [i for i, _ in got] == ["y", "z"]
    # equal score, different best rank: k=0, weights r1=2, r2=1:
    # u: r1 rank 2 → 2/2 = 1.0 ; v: r2 rank 1 → 1/1 = 1.0 → tie; v's best rank (1) beats u's (2)
    got = rrf({"r1": ["w", "u"], "r2": ["v"]}, k=0, weights={"r1": 2, "r2": 1})
    assert [i for i, _ in got] == ["w", "v", "u"]


def test_rrf_duplicates_count_once_and_empty():
    got = dict(rrf({"dense": ["a", "a", "b"]}, k=60))
    assert got["a"] == pytest.approx(1 / 61) and got["b"] == pytest.approx(1 / 63)
    assert rrf({}) == [] and rrf({"dense": []}) == []
    with pytest.raises(ValueError):
        rrf({"dense": ["a"]}, k=-1)


def test_normalize_scores():
    assert normalize_scores({"a": 4.0, "b": 2.0, "c": 0.0}) == {"a": 1.0, "b": 0.5, "c": 0.0}
    assert normalize_scores({"a": 3.0, "b": 3.0}) == {"a": 1.0, "b": 1.0}  # nothing to prefer
    z = normalize_scores({"a": 3.0, "b": 1.0}, "zscore")  # mean 2, std 1
    assert z == {"a": 1.0, "b": -1.0}
    assert normalize_scores({"a": 8.0, "b": 2.0}, "max") == {"a": 1.0, "b": 0.25}
    assert normalize_scores({}) == {}
    with pytest.raises(ValueError):
        normalize_scores({"a": 1.0}, "softmax")


def test_convex_hand_computed():
    # minmax: dense a 1.0, b 0.5, c 0.0 ; bm25 (c missing → floor 2.0) a 0.0, b 1.0, c 0.0
    # weights .3/.7: a = .30, b = .15 + .70 = .85, c = 0
    got = convex({"dense": {"a": 0.9, "b": 0.8, "c": 0.7}, "bm25": {"a": 2.0, "b": 12.0}},
                 weights={"dense": 0.3, "bm25": 0.7})
    assert [i for i, _ in got] == ["b", "a", "c"]
    assert [round(s, 6) for _, s in got] == [0.85, 0.3, 0.0]


def test_convex_ties_deterministic():
    # both 0.5 after weighting: a = .5·1 + .5·0, b = .5·0 + .5·1 → tie, both best rank 1 → id order
    got = convex({"dense": {"a": 1.0, "b": 0.0}, "bm25": {"a": 0.0, "b": 1.0}}, weights={"dense": .5, "bm25": .5})
    assert [i for i, _ in got] == ["a", "b"]
