"""Top-k items for users from the two towers' vectors, and recall@k on the held-out interactions (numpy only)."""

from __future__ import annotations

import numpy as np

from embedrt.evaluation.metrics import retrieval_scores


def scores(user_vectors: np.ndarray, item_vectors: np.ndarray, seen: list[np.ndarray]) -> np.ndarray:
    """Dot products (users, items), with the items each user already has set to -inf."""
    s = user_vectors.astype(np.float64) @ item_vectors.astype(np.float64).T
    for u, items in enumerate(seen):
        s[u, items] = -np.inf
    return s


def top_k(user_vectors: np.ndarray, item_vectors: np.ndarray, seen: list[np.ndarray], k: int = 10) -> np.ndarray:
    return np.argsort(-scores(user_vectors, item_vectors, seen), axis=1, kind="stable")[:, :k]


def recall_at_k(similarity: np.ndarray, held_out: list[np.ndarray], k: int = 10) -> float:
    return retrieval_scores(similarity, [set(t.tolist()) for t in held_out], ks=(k,))[f"recall@{k}"]


def popularity_scores(train: list[np.ndarray], n_items: int) -> np.ndarray:
    """The baseline: every user gets the items most picked in training, minus their own."""
    counts = np.bincount(np.concatenate(train), minlength=n_items).astype(np.float64)
    s = np.tile(counts, (len(train), 1))
    for u, items in enumerate(train):
        s[u, items] = -np.inf
    return s
