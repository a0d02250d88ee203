"""Train both towers with an in-batch softmax on the training interactions (a few seconds on a CPU)."""

from __future__ import annotations

import numpy as np
import torch

from two_tower.data import Interactions
from two_tower.model import ItemTower, UserTower


def history_tensors(histories: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Lists of item ids as nn.EmbeddingBag takes them: the flat ids and where each row starts."""
    lengths = np.array([len(h) for h in histories])
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    flat = np.concatenate(histories).astype(np.int64) if len(histories) else np.zeros(0, np.int64)
    return torch.from_numpy(flat), torch.from_numpy(offsets)


def user_vectors(tower: UserTower, rows: dict) -> torch.Tensor:
    history, offsets = history_tensors(list(rows["history"]))
    return tower(torch.as_tensor(rows["user_id"]), history, offsets, torch.as_tensor(rows["age"]), torch.as_tensor(rows["activity"]))


def item_vectors(tower: ItemTower, rows: dict) -> torch.Tensor:
    return tower(torch.as_tensor(rows["item_id"]), torch.as_tensor(rows["category"]), torch.as_tensor(rows["price"]))


def train(data: Interactions, *, epochs: int = 12, batch: int = 1024, lr: float = 0.003, seed: int = 0) -> tuple[UserTower, ItemTower]:
    torch.manual_seed(seed)
    torch.set_num_threads(1)  # small batches: one thread is faster than two contending ones here
    rng = np.random.default_rng(seed)
    users, tower_items = UserTower(), ItemTower()
    optimizer = torch.optim.Adam([*users.parameters(), *tower_items.parameters()], lr=lr)
    pair_users, pair_items = data.train_pairs()
    items = data.item_rows()
    # logQ correction: popular items are in-batch negatives more often; without it the model learns to avoid them.
    log_q = torch.from_numpy(np.log(np.bincount(pair_items, minlength=len(items["item_id"])) / len(pair_items) + 1e-9)).float()
    for _ in range(epochs):
        order = rng.permutation(len(pair_users))
        for start in range(0, len(order), batch):
            idx = order[start : start + batch]
            u = user_vectors(users, data.user_rows(pair_users[idx]))
            v = item_vectors(tower_items, {k: col[pair_items[idx]] for k, col in items.items()})
            logits = u @ v.T - log_q[pair_items[idx]][None, :]  # the other pairs of the batch are the negatives
            loss = torch.nn.functional.cross_entropy(logits, torch.arange(len(idx)))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return users.eval(), tower_items.eval()
