"""Retrieval for feature models (two towers): queries through one export, documents through another, ranked by dot product.

It is the `retrieval` format with keys instead of texts: the --data file's rows are relevant (query, document)
key pairs; --queries and --documents are JSONL rows of each tower's columns plus a `query` / `document` key
column; --exclude (optional) holds pairs not to rank (what a user already has), as recommenders are scored.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from embedrt.errors import InputError
from embedrt.evaluation.metrics import retrieval_scores
from embedrt.input_files import read_table


@dataclass
class FeatureRetrievalSet:
    query_keys: list[str]
    query_rows: list[dict[str, Any]]  # the query tower's columns, one dict a query (key dropped)
    document_keys: list[str]
    document_rows: list[dict[str, Any]]
    relevant: list[set[int]]  # per query, indices into the documents
    excluded: list[set[int]]  # per query, documents not ranked


def read_feature_retrieval(
    data: str | os.PathLike, queries: str | os.PathLike, documents: str | os.PathLike, exclude: str | os.PathLike | None = None
) -> FeatureRetrievalSet:
    """The queries that have relevant documents in `data`, every document of `documents`; keys are compared as strings."""
    query_rows = _keyed(queries, "query", "--queries")
    document_rows = _keyed(documents, "document", "--documents")
    doc_index = {key: i for i, key in enumerate(document_rows)}
    relevant: dict[str, set[int]] = {}
    for number, row in enumerate(read_table(data, ("query", "document")), start=1):
        q, d = str(row["query"]), str(row["document"])
        if q not in query_rows:
            raise InputError(f"--data {data}: row {number} has query {q!r}, which --queries {queries} has no row for.")
        if d not in doc_index:
            raise InputError(f"--data {data}: row {number} has document {d!r}, which --documents {documents} has no row for.")
        relevant.setdefault(q, set()).add(doc_index[d])
    excluded: dict[str, set[int]] = {}
    if exclude is not None:
        for row in read_table(exclude, ("query", "document"), "--exclude"):
            if str(row["document"]) in doc_index:
                excluded.setdefault(str(row["query"]), set()).add(doc_index[str(row["document"])])
    keys = list(relevant)
    return FeatureRetrievalSet(
        keys, [query_rows[k] for k in keys], list(document_rows), list(document_rows.values()),
        [relevant[k] for k in keys], [excluded.get(k, set()) - relevant[k] for k in keys],
    )


def _keyed(path: str | os.PathLike, key: str, option: str) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for number, row in enumerate(read_table(path, (key,), option), start=1):
        k = str(row.pop(key))
        if k in rows:
            raise InputError(f"{option} {path}: row {number} repeats {key} {k!r}; give each {key} one row.")
        rows[k] = row
    return rows


def evaluate_feature_retrieval(query_embedder, document_embedder, data: FeatureRetrievalSet, ks: Sequence[int] = (1, 5, 10)) -> dict[str, Any]:
    """recall@k, MRR@10 and nDCG@10 of dot-product search (the two-tower score) of the queries over all documents."""
    queries = query_embedder.embed(data.query_rows).astype(np.float64)
    documents = document_embedder.embed(data.document_rows).astype(np.float64)
    similarity = queries @ documents.T
    for q, excluded in enumerate(data.excluded):
        similarity[q, list(excluded)] = -np.inf
    return {
        "task": "retrieval", "score": "dot", "queries": len(data.query_keys), "documents": len(data.document_keys),
        **retrieval_scores(similarity, data.relevant, ks),
    }
