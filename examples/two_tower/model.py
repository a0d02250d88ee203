"""The two towers, in plain PyTorch: what a recommendation team would train, nothing embedrt-specific but `embedrt_inputs`."""

from __future__ import annotations

import torch
from torch import nn

from two_tower.data import N_CATEGORIES, N_ITEMS, N_USERS

DIM = 32


class UserTower(nn.Module):
    """user id + history (a variable-length list of item ids, mean of an nn.EmbeddingBag) + age + activity -> DIM."""

    # What `embedrt export module` reads when no --inputs JSON is given; num_embeddings comes from the tables.
    embedrt_inputs = [
        {"name": "user_id", "kind": "id"},
        {"name": "history", "kind": "id_list", "layout": "offsets"},
        {"name": "age", "kind": "float"},
        {"name": "activity", "kind": "float"},
    ]

    def __init__(self, n_users: int = N_USERS, n_items: int = N_ITEMS, dim: int = DIM, hidden: int = 64):
        super().__init__()
        self.user = nn.Embedding(n_users, 32)
        self.history = nn.EmbeddingBag(n_items, 32, mode="mean")
        self.dense = nn.Linear(2, 8)
        self.mlp = nn.Sequential(nn.Linear(72, hidden), nn.ReLU(), nn.Linear(hidden, dim))

    def forward(self, user_id, history, history_offsets, age, activity):
        floats = torch.relu(self.dense(torch.stack([age, activity], dim=1)))
        return self.mlp(torch.cat([self.user(user_id), self.history(history, history_offsets), floats], dim=1))


class ItemTower(nn.Module):
    """item id + category + log price -> DIM."""

    embedrt_inputs = [
        {"name": "item_id", "kind": "id"},
        {"name": "category", "kind": "id"},
        {"name": "price", "kind": "float"},
    ]

    def __init__(self, n_items: int = N_ITEMS, n_categories: int = N_CATEGORIES, dim: int = DIM, hidden: int = 64):
        super().__init__()
        self.item = nn.Embedding(n_items, 32)
        self.category = nn.Embedding(n_categories, 16)
        self.price = nn.Linear(1, 8)
        self.mlp = nn.Sequential(nn.Linear(56, hidden), nn.ReLU(), nn.Linear(hidden, dim))

    def forward(self, item_id, category, price):
        return self.mlp(torch.cat([self.item(item_id), self.category(category), torch.relu(self.price(price[:, None]))], dim=1))


def build_user_tower() -> UserTower:
    """The factory `embedrt export module two_tower.model:build_user_tower --weights user_tower.pt` calls."""
    return UserTower()


def build_item_tower() -> ItemTower:
    return ItemTower()
