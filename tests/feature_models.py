"""Small feature models (random init, fixed seed) for the features tests, and the example's towers on sys.path."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
if str(EXAMPLES) not in sys.path:
    sys.path.insert(0, str(EXAMPLES))  # the two_tower example package


class BagModel(nn.Module):
    """A variable-length history through nn.EmbeddingBag (sum) with offsets, and a fixed 3-float vector."""

    def __init__(self, n_items: int = 300, seed: int = 0):
        torch.manual_seed(seed)
        super().__init__()
        self.bag = nn.EmbeddingBag(n_items, 16, mode="sum")
        self.dense = nn.Linear(3, 16)
        self.out = nn.Linear(32, 12)

    def forward(self, history, history_offsets, context):
        return self.out(torch.cat([self.bag(history, history_offsets), torch.tanh(self.dense(context))], dim=1))


class PaddedModel(nn.Module):
    """A variable-length id list padded with 0 (nn.Embedding padding_idx): masked mean, returned in a dict."""

    def __init__(self, n_tags: int = 50, seed: int = 0):
        torch.manual_seed(seed)
        super().__init__()
        self.tags = nn.Embedding(n_tags, 8, padding_idx=0)
        self.out = nn.Linear(8, 6)

    def forward(self, tags):
        mask = (tags != 0).unsqueeze(-1).float()
        pooled = (self.tags(tags) * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return {"embedding": self.out(pooled), "logits": pooled.sum(1)}


class ModuloIds(nn.Module):
    """Ids hashed (ids % 10) before their table: the valid range cannot be read off the table."""

    def __init__(self):
        torch.manual_seed(0)
        super().__init__()
        self.table = nn.Embedding(10, 4)

    def forward(self, ids):
        return self.table(ids % 10)


class BakedConstant(nn.Module):
    """A Python float taken from the data: the tracer bakes in its value, so the ONNX graph differs from PyTorch."""

    def __init__(self):
        torch.manual_seed(0)
        super().__init__()
        self.a = nn.Linear(2, 4)

    def forward(self, x):
        return self.a(x) + float(x.abs().max())


def bag_rows(n: int = 20, seed: int = 1) -> dict:
    rng = np.random.default_rng(seed)
    history = [rng.integers(0, 300, size=k) for k in rng.integers(0, 30, size=n)]
    history[0] = np.zeros(0, dtype=np.int64)
    return {"history": history, "context": rng.standard_normal((n, 3)).astype(np.float32)}


def bag_torch(model: BagModel, rows: dict) -> np.ndarray:
    lengths = [len(h) for h in rows["history"]]
    flat = torch.from_numpy(np.concatenate(rows["history"]).astype(np.int64))
    offsets = torch.from_numpy(np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64))
    with torch.no_grad():
        return model(flat, offsets, torch.from_numpy(rows["context"])).numpy()
