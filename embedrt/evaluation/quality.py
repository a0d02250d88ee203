"""How good an embedder's vectors are on the user's labelled data: one function per task, on any `embed(texts)`."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from embedrt.evaluation.datasets import Dataset, LabelledItems, RetrievalSet, StsPairs
from embedrt.evaluation.metrics import cosine_matrix, knn_accuracy, retrieval_scores, spearman, unit_rows

Embed = Callable[[Sequence[str]], np.ndarray]


def evaluate_sts(embed: Embed, data: StsPairs) -> dict[str, Any]:
    """Spearman correlation of pair cosines against the given scores (STS benchmarks report it x100)."""
    a, b = unit_rows(embed(data.text1)), unit_rows(embed(data.text2))
    cosines = (a * b).sum(axis=1)
    return {"task": "sts", "pairs": len(cosines), "spearman": spearman(cosines, data.scores)}


def evaluate_retrieval(embed: Embed, data: RetrievalSet, ks: Sequence[int] = (1, 5, 10)) -> dict[str, Any]:
    """recall@k, MRR@10 and nDCG@10 of cosine search of the queries over all documents."""
    sim = cosine_matrix(embed(data.queries), embed(data.documents))
    return {"task": "retrieval", "queries": len(data.queries), "documents": len(data.documents), **retrieval_scores(sim, data.relevant, ks)}


def evaluate_classification(embed: Embed, data: LabelledItems, k: int = 5) -> dict[str, Any]:
    """Leave-one-out k-NN accuracy (cosine) of the labels."""
    vectors = embed(data.texts)
    k = min(k, len(data.texts) - 1)
    return {"task": "classification", "items": len(data.texts), "labels": len(set(data.labels)), "k": k, f"knn_accuracy@{k}": knn_accuracy(vectors, data.labels, k)}


def evaluate_quality(embed: Embed, task: str, data: Dataset, k: int = 5) -> dict[str, Any]:
    if task == "sts":
        return evaluate_sts(embed, data)
    if task == "retrieval":
        return evaluate_retrieval(embed, data)
    return evaluate_classification(embed, data, k)


def dataset_texts(data: Dataset) -> list[str]:
    """Every distinct text a dataset embeds, in first-seen order: the inputs of an engine-vs-engine comparison."""
    if isinstance(data, StsPairs):
        texts = data.text1 + data.text2
    elif isinstance(data, RetrievalSet):
        texts = data.queries + data.documents
    else:
        texts = data.texts
    return list(dict.fromkeys(texts))
