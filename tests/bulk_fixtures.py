"""Fixtures and helpers of the bulk tests: a small random text model, input files, the CLI in a real process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="session")
def small_text_dir(tmp_path_factory, minilm_source):
    """A 2-layer random BERT (dim 64, max 128 tokens), exported once per session: fast enough for 100,000 rows."""
    from random_models import random_bert

    from embedrt.export import export_text

    root = tmp_path_factory.mktemp("small")
    return export_text(random_bert(root / "source", minilm_source, pooling="mean"), root / "export")


@pytest.fixture(scope="session")
def small_text(small_text_dir):
    import embedrt

    return embedrt.TextEmbedder(small_text_dir)


def embedrt_cli(*args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "embedrt.cli", *map(str, args)], capture_output=True, text=True, **kwargs)


# A real `embedrt embed` that stops before its chunk number EMBEDRT_TEST_HOLD_AT, prints "held" and waits for a
# line on stdin: a test then signals it, or runs a second job beside it, provably mid-run, whatever the load.
HELD_JOB = """
import os, sys
from embedrt.bulk.job import BulkJob
from embedrt.cli import main
hold_at, chunk = int(os.environ["EMBEDRT_TEST_HOLD_AT"]), BulkJob._chunk
def held(self, index, *args, **kwargs):
    if index == hold_at:
        print("held", flush=True)
        sys.stdin.readline()
    return chunk(self, index, *args, **kwargs)
BulkJob._chunk = held
sys.exit(main(sys.argv[1:]))
"""


def start_held(args, hold_at: int) -> subprocess.Popen:
    """`embedrt ARGS` held before chunk `hold_at`: its journal then lists `hold_at` finished chunks (a resumed job's too)."""
    process = subprocess.Popen([sys.executable, "-c", HELD_JOB, *map(str, args)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env={**os.environ, "EMBEDRT_TEST_HOLD_AT": str(hold_at)})
    if process.stdout.readline() != "held\n":
        process.kill()
        raise AssertionError(f"the job never reached chunk {hold_at}: {process.communicate()[1]}")
    return process


def chunks_done(out) -> int:
    try:
        return len(json.loads((out.parent / (out.name + ".parts") / "journal.json").read_text())["chunks"])
    except (FileNotFoundError, ValueError):
        return -1


def run_until(args, out, chunks: int, sig=signal.SIGKILL) -> int:
    """Run the job, send `sig` while it is held with `chunks` finished chunks, and return the chunks its journal lists."""
    process = start_held(args, chunks)
    process.send_signal(sig)  # before stdin closes: a job that read EOF would go on
    process.wait(timeout=120)
    process.communicate()
    return chunks_done(out)


def sentences(n: int, seed: int = 0) -> list[str]:
    from embedrt.sample_text import sample_sentences

    return sample_sentences(n, min_words=2, max_words=24, seed=seed)


def write_parquet(path: Path, texts: list[str], ids: list | None = None, row_group_size: int = 1000) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = {"text": texts}
    if ids is not None:
        columns["doc"] = ids
    pq.write_table(pa.table(columns), path, row_group_size=row_group_size)
    return path


def write_input(path: Path, texts: list[str]) -> Path:
    """`texts` in the format the suffix says, with a 'doc' id column ("d0", "d1"...) where the format has columns."""
    ids = [f"d{i}" for i in range(len(texts))]
    suffix = path.suffix
    if suffix == ".txt":
        path.write_text("".join(t + "\n" for t in texts), encoding="utf-8")
    elif suffix == ".jsonl":
        path.write_text("".join(json.dumps({"doc": d, "text": t}) + "\n" for d, t in zip(ids, texts)), encoding="utf-8")
    elif suffix in (".csv", ".tsv"):
        import csv

        with open(path, "w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f, delimiter="\t" if suffix == ".tsv" else ",")
            writer.writerow(["doc", "text"])
            writer.writerows(zip(ids, texts))
    else:
        write_parquet(path, texts, ids)
    return path


def read_output(path: Path, key: str = "id") -> tuple[list, np.ndarray, list | None]:
    """(keys, float32 vectors, texts or None) of a .parquet or .jsonl output; .npy gives (None, vectors, None)."""
    if path.suffix == ".npy":
        return None, np.load(path), None
    if path.suffix == ".jsonl":
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        texts = [r["text"] for r in rows] if rows and "text" in rows[0] else None
        return [r[key] for r in rows], np.array([r["embedding"] for r in rows], dtype=np.float32).reshape(len(rows), -1), texts
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    vectors = table.column("embedding").combine_chunks().flatten().to_numpy().reshape(table.num_rows, -1)
    texts = table.column("text").to_pylist() if "text" in table.column_names else None
    return table.column(key).to_pylist(), vectors, texts
