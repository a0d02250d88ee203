"""Pooling and normalisation inside the exported graph (torch); the same arithmetic as embedrt.runtime.text.pooling."""

from __future__ import annotations

import torch


def pool_tokens(hidden: torch.Tensor, attention_mask: torch.Tensor, mode: str) -> torch.Tensor:
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    if mode == "mean":
        return (hidden * mask).sum(dim=1) / torch.clamp(mask.sum(dim=1), min=1e-9)
    if mode == "cls":
        return hidden[:, 0]
    if mode == "max":
        return torch.where(mask > 0, hidden, torch.full_like(hidden, -1e9)).max(dim=1).values
    raise ValueError(f"pooling {mode!r}")


def l2_normalize(vectors: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(vectors, p=2.0, dim=-1, eps=1e-12)


class TextEncoderGraph(torch.nn.Module):
    """A transformers encoder plus pooling: outputs token_embeddings and, when pooling, sentence_embedding."""

    def __init__(self, model: torch.nn.Module, pooling: str | None, normalize: bool, takes_token_types: bool):
        super().__init__()
        self.model = model
        self.pooling = pooling
        self.normalize = normalize
        self.takes_token_types = takes_token_types

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if self.takes_token_types:
            kwargs["token_type_ids"] = token_type_ids
        tokens = self.model(**kwargs)[0]
        if self.pooling is None:
            return (tokens,)
        pooled = pool_tokens(tokens, attention_mask, self.pooling)
        if self.normalize:
            pooled = l2_normalize(pooled)
        return tokens, pooled
