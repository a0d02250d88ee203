"""`embedrt evaluate MODEL --data FILE [--task T] [--compare OTHER] [--json]`: parity and quality on the user's data."""

from __future__ import annotations

import argparse
import json
from typing import Any

from embedrt.evaluation.datasets import TASKS, __doc__ as FORMATS

RESULT_ORDER = ("spearman", "recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10", "min_cosine", "mean_cosine", "max_abs")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.description = "Score an export on labelled data, or measure its parity.\n\n" + FORMATS.split("\n\n", 1)[1]
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("model", metavar="MODEL", help="export dir, or 'default'")
    p.add_argument("--data", required=True, metavar="FILE", help=".csv/.tsv/.jsonl with the task's columns (or .txt texts for parity)")
    p.add_argument("--task", choices=TASKS, help="default: chosen from the file's columns")
    p.add_argument("--corpus", metavar="FILE", help="retrieval: more documents to search (one a line, or JSONL with 'text')")
    p.add_argument("--queries", metavar="JSONL", help="feature models, retrieval: the query tower's rows, each with a 'query' key")
    p.add_argument("--documents", metavar="JSONL", help="feature models, retrieval: the document tower's rows, each with a 'document' key")
    p.add_argument("--document-model", metavar="DIR", help="feature models: the document (item) tower's export (default: MODEL)")
    p.add_argument("--exclude", metavar="FILE", help="feature models: (query, document) pairs not to rank, e.g. what a user already has")
    p.add_argument("--compare", metavar="OTHER", help="a second export dir (another precision, say): the task on both, and their parity")
    p.add_argument("--source", metavar="DIR", help="parity: the PyTorch checkpoint dir (default: the one the manifest records)")
    p.add_argument("--k", type=int, default=5, help="classification: neighbours that vote (default 5)")
    p.add_argument("--top-k", type=int, default=10, help="parity: nearest neighbours compared per input (default 10)")
    p.add_argument("--long-text", default="truncate", choices=("truncate", "chunk"), help="texts longer than the model (see embedrt embed)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda", "tensorrt"))
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import embedrt
    from embedrt.default_model import resolve_model
    from embedrt.errors import InputError
    from embedrt.evaluation.datasets import read_dataset
    from embedrt.evaluation.parity import engine_parity, source_parity
    from embedrt.evaluation.quality import dataset_texts, evaluate_quality
    from embedrt.manifest import read_manifest

    if args.k < 1 or args.top_k < 1:
        raise InputError(f"--k {args.k} / --top-k {args.top_k}: must be at least 1.")
    path = resolve_model(args.model)
    modality = read_manifest(path).modality
    if modality == "features":
        return run_features(args, path)
    items = "image" if modality == "image" else "text"
    task, data = read_dataset(args.data, args.task, args.corpus, items)  # bad data fails before a model loads
    embedder = embedrt.load(path, device=args.device)
    other = embedrt.load(args.compare, device=args.device) if args.compare else None
    result: dict[str, Any] = {"data": str(args.data), "task": task, "model": str(embedder.path)}
    if task == "parity":
        if other is None:
            result["parity"] = source_parity(embedder, data.texts, source=args.source, k=args.top_k)
        else:
            result["parity"] = engine_parity(embedder, other, data.texts, k=args.top_k)
    else:
        result[str(embedder.path)] = evaluate_quality(_embed_fn(embedder, args.long_text), task, data, args.k)
        if other is not None:
            result[str(other.path)] = evaluate_quality(_embed_fn(other, args.long_text), task, data, args.k)
            result["parity"] = engine_parity(embedder, other, dataset_texts(data), k=args.top_k)
    print(json.dumps(result, indent=2) if args.json else _table(result, embedder, other))
    return 0


def run_features(args: argparse.Namespace, path) -> int:
    """Retrieval of a feature model: query rows through MODEL, document rows through --document-model, by dot product."""
    import embedrt
    from embedrt.errors import InputError
    from embedrt.evaluation.feature_retrieval import evaluate_feature_retrieval, read_feature_retrieval

    if args.task not in (None, "retrieval") or args.compare:
        raise InputError(f"{path} is a feature model: `embedrt evaluate` scores it on retrieval only (--task retrieval, no --compare).")
    if not args.queries or not args.documents:
        raise InputError(f"{path} is a feature model: retrieval needs --queries JSONL and --documents JSONL (each tower's rows, with a key).")
    data = read_feature_retrieval(args.data, args.queries, args.documents, args.exclude)  # bad data fails before a model loads
    queries = embedrt.load(path, device=args.device)
    documents = embedrt.load(args.document_model, device=args.device) if args.document_model else queries
    result: dict[str, Any] = {"data": str(args.data), "task": "retrieval", "model": str(queries.path)}
    result[str(queries.path)] = evaluate_feature_retrieval(queries, documents, data)
    print(json.dumps(result, indent=2) if args.json else _table(result, queries, None))
    return 0


def _embed_fn(embedder, long_text: str):
    if embedder.manifest.modality == "image":
        return lambda paths: embedder.embed(list(paths))
    if long_text == "chunk":
        return lambda texts: embedder.embed(list(texts), long_text="chunk")
    return lambda texts: embedder.embed(list(texts))


def _table(result: dict[str, Any], embedder, other) -> str:
    lines = [f"{result['task']} on {result['data']}"]
    models = [m for m in (embedder, other) if m is not None]
    if result["task"] != "parity":
        scores = [result[str(m.path)] for m in models]
        metric_names = [k for k in scores[0] if isinstance(scores[0][k], float)]
        header = f"  {'':<22}" + "".join(f"{_short(m.path):>20}" for m in models) + (f"{'change':>12}" if other else "")
        lines += [_sizes(scores[0]), header]
        for name in sorted(metric_names, key=lambda n: RESULT_ORDER.index(n) if n in RESULT_ORDER else len(RESULT_ORDER)):
            row = f"  {name:<22}" + "".join(f"{s[name]:>20.4f}" for s in scores)
            lines.append(row + (f"{scores[1][name] - scores[0][name]:>+12.4f}" if other else ""))
    if "parity" in result:
        p = result["parity"]
        lines.append(f"parity of {p['model']} against {p['reference']} on {p['n']} inputs ({p['precision']} gate: {'passed' if p['passed'] else 'MISSED'})")
        for name in ("min_cosine", "mean_cosine", "max_abs") + tuple(k for k in p if k.startswith("neighbour_agreement")):
            lines.append(f"  {name:<22}{p[name]:>14.2e}" if name == "max_abs" else f"  {name:<22}{p[name]:>14.7f}")
    return "\n".join(lines)


def _sizes(scores: dict[str, Any]) -> str:
    return "  " + ", ".join(f"{scores[k]} {k}" for k in ("pairs", "queries", "documents", "items", "labels") if k in scores)


def _short(path) -> str:
    name = str(getattr(path, "name", path))
    return name if len(name) <= 19 else name[:18] + "…"
