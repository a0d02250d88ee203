"""Evaluation measures against values computed by hand on small fixtures."""

from __future__ import annotations

import math

import numpy as np
import pytest

from embedrt.errors import InputError
from embedrt.evaluation.metrics import average_ranks, knn_accuracy, neighbour_agreement, retrieval_scores, spearman


def test_average_ranks_share_tied_ranks():
    np.testing.assert_array_equal(average_ranks(np.array([10, 30, 20, 20])), [1, 4, 2.5, 2.5])


def test_spearman_with_ties_matches_the_hand_computed_value_and_scipy():
    x, y = [1, 2, 3, 4, 5], [5, 6, 7, 8, 7]
    # ranks of y: 1, 2, 3.5, 5, 3.5; Pearson of the ranks: 8 / sqrt(10 * 9.5)
    assert spearman(x, y) == pytest.approx(8 / math.sqrt(95), abs=1e-12)
    from scipy.stats import spearmanr

    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 5, 40), rng.normal(size=40)
    assert spearman(a, b) == pytest.approx(spearmanr(a, b).statistic, abs=1e-12)
    assert spearman([1, 2, 3], [30, 20, 10]) == pytest.approx(-1.0)


def test_spearman_refuses_constant_scores():
    with pytest.raises(InputError, match="at least 2 pairs with varying scores"):
        spearman([1, 2, 3], [4, 4, 4])


def test_retrieval_scores_match_hand_computed_recall_mrr_and_ndcg():
    # query 0 ranks documents 2, 0, 3, 1 and documents 0 and 1 are relevant (hits at ranks 2 and 4);
    # query 1 ranks document 3 first and only document 3 is relevant.
    similarity = np.array([[0.8, 0.1, 0.9, 0.5], [0.2, 0.1, 0.3, 0.9]])
    scores = retrieval_scores(similarity, [{0, 1}, {3}], ks=(1, 2, 3))
    dcg0 = 1 / math.log2(3) + 1 / math.log2(5)
    idcg0 = 1 + 1 / math.log2(3)
    assert scores["recall@1"] == pytest.approx((0 + 1) / 2)
    assert scores["recall@2"] == pytest.approx((0.5 + 1) / 2)
    assert scores["recall@3"] == pytest.approx((0.5 + 1) / 2)
    assert scores["mrr@10"] == pytest.approx((1 / 2 + 1) / 2)
    assert scores["ndcg@10"] == pytest.approx((dcg0 / idcg0 + 1) / 2)
    assert scores["ndcg@10"] == pytest.approx(0.825460, abs=1e-6)  # (1.061606 / 1.630930 + 1) / 2


def test_mrr_counts_only_hits_within_the_cutoff():
    similarity = -np.arange(12, dtype=float)[None, :]  # ranks documents 0, 1, ..., 11
    scores = retrieval_scores(similarity, [{11}], ks=(10,))
    assert scores["mrr@10"] == 0.0 and scores["recall@10"] == 0.0 and scores["ndcg@10"] == 0.0


def test_knn_accuracy_leave_one_out_matches_hand_count():
    # Directions on the unit circle: a cluster of "a" near 0 degrees, "b" near 90, one "b" sitting among the "a"s.
    angles = np.radians([0, 5, 10, 90, 95, 100, 7])
    vectors = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    labels = ["a", "a", "a", "b", "b", "b", "b"]
    # k=1: the stray "b" (7 degrees) is nearest to "a" at 5 or 10 -> wrong; the "a" at 5 and 10 have the stray
    # "b" at 7 as nearest (2 and 3 degrees away) -> wrong; 0 -> nearest 5 (a) right; the b cluster right.
    assert knn_accuracy(vectors, labels, k=1) == pytest.approx(4 / 7)
    # k=3: every "a" sees two "a" and the stray "b"; each cluster "b" sees its two others; the stray sees "a"s.
    assert knn_accuracy(vectors, labels, k=3) == pytest.approx(6 / 7)


def test_knn_tie_goes_to_the_label_whose_member_is_nearest():
    angles = np.radians([0, 10, 30, 50])
    vectors = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    # item 0's two nearest are 10 ("x") and 30 ("y"): a 1-1 tie, won by "x", the nearer; item 0 is "x".
    assert knn_accuracy(vectors, ["x", "x", "y", "y"], k=2) == pytest.approx(3 / 4)


def _circle(degrees):
    angles = np.radians(degrees)
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)


def test_neighbour_agreement_is_the_share_of_shared_top_k_neighbours():
    ref = _circle([0, 10, 40, 100])  # nearest others: 0->1, 1->0, 2->1, 3->2
    assert neighbour_agreement(ref, ref, k=2) == 1.0
    cand = _circle([0, 10, 40, 3])  # item 3 moved next to item 0: nearest others 0->3, 1->3, 2->1, 3->0
    assert neighbour_agreement(ref, cand, k=1) == pytest.approx(1 / 4)
    assert neighbour_agreement(ref, cand, k=3) == 1.0  # k = n-1: every row's neighbours are all the others
