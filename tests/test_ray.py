"""embedrt.ray on a real local Ray cluster (2 CPUs, started here, shut down at the end): vectors, order, ids, a killed actor,
and how many actors of how many threads it sizes, reserving how many CPUs."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest

from embedrt.errors import EmbedrtError

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


@pytest.mark.parametrize("nodes, threads, concurrency, expected", [
    ([2.0], 1, None, (2, 0.5)),  # this machine: an actor per core, one logical CPU left for the read and write tasks
    ([2.0], 2, None, (1, 1.0)),
    ([3.0], 1, None, (3, 0.6666)),  # rounded down: rounding up would take the CPU kept for reads
    ([8.0, 8.0], 2, None, (8, 1.75)),
    ([16.0, 4.0], 1, None, (20, 0.75)),  # the smallest node decides: 4 actors there must leave it one CPU
    ([1.0], 1, None, (1, 0.0)),
    ([2.0], 1, 4, (4, 0.25)),  # more actors than cores, as asked: they share what the reads leave
    ([4.0, 0.0], 1, None, (4, 0.75)),  # a node without CPUs holds no actor
])
def test_actor_sizing_runs_a_thread_on_every_core_and_leaves_one_cpu_per_node_for_reads(nodes, threads, concurrency, expected):
    import embedrt.ray

    actors, reserved = embedrt.ray.actor_sizing(nodes, threads=threads, concurrency=concurrency)
    assert (actors, reserved) == expected
    assert actors * reserved <= sum(nodes) - sum(1 for c in nodes if c >= 1)


@pytest.mark.parametrize("nodes, options, named", [
    ([2.0], {"threads": 0}, "threads=0"),
    ([2.0], {"threads": 1.5}, "threads=1.5"),
    ([2.0], {"concurrency": 0}, "concurrency=0"),
    ([0.0], {}, "no node with a CPU"),
    ([], {}, "no node with a CPU"),
])
def test_actor_sizing_refuses_what_cannot_run_naming_it(nodes, options, named):
    import embedrt.ray

    with pytest.raises(EmbedrtError, match=named.replace(".", r"\.")):
        embedrt.ray.actor_sizing(nodes, **options)


def test_by_default_each_cpu_runs_an_actor_and_a_one_block_dataset_is_shared_between_them(cluster, small_text_dir, small_text):
    import embedrt.ray

    class PidEmbed(embedrt.ray.Embed):
        def __call__(self, batch):
            out = super().__call__(batch)
            out["pid"] = np.full(len(out[self.column]), os.getpid())
            return out

    texts = sentences(1200, seed=21)
    ds = ray.data.from_items([{"doc": i, "text": t} for i, t in enumerate(texts)], override_num_blocks=1)  # as one Parquet file reads
    rows = embedrt.ray.embed_dataset(ds, small_text_dir, batch_size=100, embed_class=PidEmbed).take_all()
    assert [r["doc"] for r in rows] == list(range(len(texts)))
    pids = [int(r["pid"]) for r in rows]
    assert len(set(pids)) == 2  # 2 CPUs: 2 actors, and the single block was cut so that both got rows
    assert all(len(set(pids[start:start + 100])) == 1 for start in range(0, len(pids), 100))  # one call per 100-row block
    assert min_cosine(np.stack([r["embedding"] for r in rows]), small_text.embed(texts)) >= 0.99999
