"""The evaluation measures, on plain arrays: Spearman, retrieval (recall@k, MRR@10, nDCG@10), k-NN accuracy, neighbour agreement.

Similarity is cosine throughout. Each function is checked against hand-computed values in tests.
"""

from __future__ import annotations

from collections import Counter
from typing import Hashable, Sequence

import numpy as np

from embedrt.errors import InputError


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float64)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-30)


def cosine_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) cosine similarities."""
    return unit_rows(a) @ unit_rows(b).T


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing the mean of their ranks (as Spearman's rho needs)."""
    values = np.asarray(values, dtype=np.float64)
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    ranks = np.empty(len(values), dtype=np.float64)
    start = 0
    while start < len(values):
        end = start + 1
        while end < len(values) and sorted_values[end] == sorted_values[start]:
            end += 1
        ranks[order[start:end]] = (start + 1 + end) / 2  # mean of ranks start+1 .. end
        start = end
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rank correlation: Pearson's r of the average ranks."""
    rx, ry = average_ranks(np.asarray(x)), average_ranks(np.asarray(y))
    if len(rx) < 2 or rx.std() == 0 or ry.std() == 0:
        raise InputError(f"Spearman correlation needs at least 2 pairs with varying scores and similarities (got {len(rx)} pair(s)).")
    return float(np.corrcoef(rx, ry)[0, 1])


def retrieval_scores(similarity: np.ndarray, relevant: Sequence[set[int]], ks: Sequence[int] = (1, 5, 10), cutoff: int = 10) -> dict[str, float]:
    """recall@k for each k, MRR@cutoff and nDCG@cutoff (binary relevance), averaged over queries.

    similarity: (n_queries, n_documents); relevant[q]: indices of the documents relevant to query q.
    recall@k is the share of a query's relevant documents found in its top k.
    """
    ranking = np.argsort(-similarity, axis=1, kind="stable")
    scores: dict[str, list[float]] = {f"recall@{k}": [] for k in ks}
    scores[f"mrr@{cutoff}"] = []
    scores[f"ndcg@{cutoff}"] = []
    discounts = 1.0 / np.log2(np.arange(2, cutoff + 2))
    for q, rel in enumerate(relevant):
        hits = np.isin(ranking[q], list(rel))
        for k in ks:
            scores[f"recall@{k}"].append(hits[:k].sum() / len(rel))
        first = np.flatnonzero(hits[:cutoff])
        scores[f"mrr@{cutoff}"].append(1.0 / (first[0] + 1) if first.size else 0.0)
        top = hits[:cutoff].astype(np.float64)
        ideal = discounts[: min(len(rel), cutoff)].sum()
        scores[f"ndcg@{cutoff}"].append(float((top * discounts[: len(top)]).sum() / ideal))
    return {name: float(np.mean(values)) for name, values in scores.items()}


def nearest_neighbours(vectors: np.ndarray, k: int) -> np.ndarray:
    """(n, k) indices of each row's k most cosine-similar other rows, nearest first (ties: lower index first)."""
    sim = cosine_matrix(vectors, vectors)
    np.fill_diagonal(sim, -np.inf)
    return np.argsort(-sim, axis=1, kind="stable")[:, :k]


def knn_accuracy(vectors: np.ndarray, labels: Sequence[Hashable], k: int = 5) -> float:
    """Leave-one-out k-NN classification accuracy: each item gets the majority label of its k nearest others.

    A tie between labels goes to the one whose nearest member comes first.
    """
    n = len(labels)
    if n < 2:
        raise InputError(f"k-NN accuracy needs at least 2 labelled items (got {n}).")
    k = min(k, n - 1)
    neighbours = nearest_neighbours(vectors, k)
    correct = 0
    for i, row in enumerate(neighbours):
        votes = Counter(labels[j] for j in row)
        best = max(votes.values())
        predicted = next(labels[j] for j in row if votes[labels[j]] == best)
        correct += predicted == labels[i]
    return correct / n


def neighbour_agreement(reference: np.ndarray, candidate: np.ndarray, k: int = 10) -> float:
    """Mean share of each row's top-k neighbours (itself excluded) that two sets of vectors agree on."""
    n = len(reference)
    if n < 2:
        raise InputError(f"neighbour agreement needs at least 2 inputs (got {n}).")
    k = min(k, n - 1)
    ref, cand = nearest_neighbours(reference, k), nearest_neighbours(candidate, k)
    return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(ref, cand)]))
