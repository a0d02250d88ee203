"""Deterministic synthetic interactions with latent preferences, so that a two-tower model has something real to learn.

Each user has a taste vector, each category a centroid and each item its category's centroid plus noise.
A user picks items with probability softmax(taste . item / T), mixed with a popularity prior: the
popularity baseline is fair but beatable. The last HELD_OUT picks of every user are held out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

N_USERS = 1000
N_ITEMS = 500
N_CATEGORIES = 20
LATENT = 8
PICKS = 20  # interactions a user
HELD_OUT = 2  # the last picks of each user, kept for evaluation
TEMPERATURE = 0.1  # on unit vectors: a user's taste picks out a few categories
POPULARITY_WEIGHT = 0.2  # share of picks drawn from the popularity prior instead of the taste


@dataclass(frozen=True)
class Interactions:
    users: dict[str, np.ndarray]  # user_id, age, activity (the user tower's features, history aside)
    items: dict[str, np.ndarray]  # item_id, category, price (the item tower's columns)
    train: list[np.ndarray]  # per user: item ids seen in training (its history)
    test: list[np.ndarray]  # per user: held-out item ids

    def train_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        users = np.concatenate([np.full(len(t), u) for u, t in enumerate(self.train)])
        return users, np.concatenate(self.train)

    def user_rows(self, users: np.ndarray | None = None) -> dict:
        """The user tower's columns for `users` (all by default): id, history (a list of item ids a row), age, activity."""
        users = np.arange(N_USERS) if users is None else np.asarray(users)
        return {
            "user_id": users.astype(np.int64),
            "history": [self.train[u] for u in users],
            "age": self.users["age"][users],
            "activity": self.users["activity"][users],
        }

    def item_rows(self) -> dict:
        return dict(self.items)


def make_interactions(seed: int = 0) -> Interactions:
    rng = np.random.default_rng(seed)
    centroids = rng.standard_normal((N_CATEGORIES, LATENT))
    category = rng.integers(0, N_CATEGORIES, size=N_ITEMS)
    item_latent = _unit(centroids[category] + 0.5 * rng.standard_normal((N_ITEMS, LATENT)))
    price = np.exp(rng.normal(3.0, 0.5, size=N_CATEGORIES)[category] + 0.3 * rng.standard_normal(N_ITEMS))
    age = rng.normal(40, 12, size=N_USERS).clip(16, 90)
    # Taste follows age a little (older users lean to the first categories): a feature worth reading.
    taste = _unit(rng.standard_normal((N_USERS, LATENT)) + 0.5 * ((age[:, None] - 40) / 12) * centroids[0])
    popularity = rng.zipf(1.6, size=N_ITEMS).clip(max=200).astype(np.float64)
    popularity /= popularity.sum()
    logits = taste @ item_latent.T / TEMPERATURE
    train, test = [], []
    for u in range(N_USERS):
        p = np.exp(logits[u] - logits[u].max())
        p = (1 - POPULARITY_WEIGHT) * p / p.sum() + POPULARITY_WEIGHT * popularity
        picks = rng.choice(N_ITEMS, size=PICKS, replace=False, p=p)
        train.append(np.sort(picks[:-HELD_OUT]).astype(np.int64))
        test.append(picks[-HELD_OUT:].astype(np.int64))
    activity = np.log1p(rng.poisson(30, size=N_USERS)).astype(np.float32)
    return Interactions(
        users={"user_id": np.arange(N_USERS, dtype=np.int64), "age": ((age - 40) / 12).astype(np.float32), "activity": activity},
        items={"item_id": np.arange(N_ITEMS, dtype=np.int64), "category": category.astype(np.int64), "price": np.log(price).astype(np.float32)},
        train=train,
        test=test,
    )


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)
