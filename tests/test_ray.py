"""embedrt.ray on a real local Ray cluster (2 CPUs, started here, shut down at the end): vectors, order, ids, a killed actor."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest

from bulk_fixtures import embedrt_cli, sentences, small_text, small_text_dir, write_parquet  # noqa: F401

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return float((a * b).sum(axis=1).min())


def rows_of(ds) -> tuple[list, np.ndarray, int]:
    import embedrt.ray

    rows = ds.take_all()
    return [r["doc"] for r in rows], np.stack([r["embedding"] for r in rows]), embedrt.ray.truncated_total(ds)


def test_embed_dataset_on_two_actors_equals_in_process_in_order_with_ids_and_truncation(cluster, minilm_dir, minilm):
    import embedrt.ray

    texts = sentences(300, seed=4) + ["word " * 400]  # one text over 256 tokens
    ds = ray.data.from_items([{"doc": f"d{i}", "text": t} for i, t in enumerate(texts)], override_num_blocks=6)
    before = minilm.truncated_total
    expected = minilm.embed(texts)
    ids, vectors, truncated = rows_of(embedrt.ray.embed_dataset(ds, minilm_dir, text_column="text", concurrency=2, batch_size=40))
    assert ids == [f"d{i}" for i in range(len(texts))]
    assert vectors.dtype == np.float32 and min_cosine(vectors, expected) >= 0.99999
    assert truncated == minilm.truncated_total - before == 1


def test_an_export_shipped_through_the_object_store_gives_the_same_vectors(cluster, small_text_dir, small_text):
    import embedrt.ray

    texts = sentences(120, seed=9)
    ds = ray.data.from_items([{"doc": i, "text": t} for i, t in enumerate(texts)], override_num_blocks=3)
    ids, vectors, _ = rows_of(embedrt.ray.embed_dataset(ds, embedrt.ray.put_export(small_text_dir), concurrency=1, batch_size=50))
    assert ids == list(range(len(texts)))
    assert min_cosine(vectors, small_text.embed(texts)) >= 0.99999


def _actor_pids() -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if b"MapWorker" in f.read():
                        pids.append(int(entry))
            except OSError:
                pass
    return pids


def test_a_killed_actor_is_replaced_and_no_row_is_lost_or_repeated(cluster, small_text_dir, small_text):
    import embedrt.ray

    texts = sentences(4000, seed=12)
    ds = ray.data.from_items([{"doc": i, "text": t} for i, t in enumerate(texts)], override_num_blocks=40)
    embedded = embedrt.ray.embed_dataset(ds, small_text_dir, concurrency=2, batch_size=25)
    ids, vectors, killed = [], [], []
    for batch in embedded.iter_batches(batch_size=100, batch_format="numpy"):
        ids += batch["doc"].tolist()
        vectors.append(batch["embedding"])
        if not killed and len(ids) >= 400:
            pids = _actor_pids()
            assert pids, "no map_batches actor process found"
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])
            time.sleep(0.5)
    assert killed and len(ids) == len(texts)
    assert ids == list(range(len(texts)))  # none lost, none twice, in order
    assert min_cosine(np.concatenate(vectors), small_text.embed(texts)) >= 0.99999


def test_the_cli_with_ray_writes_a_parquet_directory_with_ids_and_vectors(cluster, small_text_dir, small_text, tmp_path):
    import pyarrow.parquet as pq

    texts = sentences(200, seed=13)
    source = write_parquet(tmp_path / "in.parquet", texts, [f"d{i}" for i in range(len(texts))], row_group_size=50)
    address = ray.get_runtime_context().gcs_address
    result = embedrt_cli("embed", small_text_dir, "--input", source, "--id-column", "doc", "--output", tmp_path / "out", "--ray", "--address", address, "--concurrency", 1)
    assert result.returncode == 0, result.stderr
    table = pq.read_table(tmp_path / "out")
    order = np.argsort([int(d[1:]) for d in table.column("doc").to_pylist()])
    assert sorted(table.column("doc").to_pylist()) == sorted(f"d{i}" for i in range(len(texts)))
    vectors = np.stack(table.column("embedding").to_numpy(zero_copy_only=False))[order]
    assert min_cosine(vectors, small_text.embed(texts)) >= 0.99999
    assert f"wrote {len(texts)} x 64 vectors to {tmp_path / 'out'}" in result.stderr
