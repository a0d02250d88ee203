"""A bulk job killed at any point (SIGKILL, SIGINT) and run again ends with every row exactly once, vectors as an uninterrupted run."""

from __future__ import annotations

import json
import signal

import numpy as np

from bulk_fixtures import chunks_done, embedrt_cli, read_output, run_until, sentences, small_text_dir, start_held, write_parquet  # noqa: F401

ROWS, CHUNK = 3000, 100


def test_sigkill_and_sigint_at_several_points_then_rerun_gives_each_row_once_with_uninterrupted_vectors(small_text_dir, tmp_path):
    texts = sentences(ROWS, seed=11)
    bad = {17, 1234, 2999}  # null texts: skipped and recorded once, whatever the kills
    source = write_parquet(tmp_path / "in.parquet", [None if i in bad else t for i, t in enumerate(texts)], [f"d{i}" for i in range(ROWS)], row_group_size=333)
    common = ["embed", small_text_dir, "--input", source, "--id-column", "doc", "--on-error", "skip", "--chunk-rows", CHUNK]

    reference = tmp_path / "reference.parquet"
    assert embedrt_cli(*common, "--output", reference, "--quiet").returncode == 0
    out = tmp_path / "out.parquet"
    reached = [run_until([*common, "--output", out], out, 0)]
    for chunks, sig in ((3, signal.SIGKILL), (12, signal.SIGINT), (21, signal.SIGKILL), (27, signal.SIGKILL)):
        reached.append(run_until([*common, "--output", out], out, chunks, sig))
    assert reached == sorted(reached) and reached[-1] < ROWS // CHUNK, f"the kills landed mid-job: {reached}"
    assert not out.exists()
    final = embedrt_cli(*common, "--output", out)
    assert final.returncode == 0, final.stderr
    assert f"resumed after {reached[-1]} finished chunk(s)" in final.stderr

    ids, vectors, _ = read_output(out, key="doc")
    expected_ids = [f"d{i}" for i in range(ROWS) if i not in bad]
    assert ids == expected_ids  # each id exactly once, in input order
    ref_ids, ref_vectors, _ = read_output(reference, key="doc")
    assert ref_ids == expected_ids
    np.testing.assert_array_equal(vectors, ref_vectors)
    skipped = [json.loads(line) for line in (tmp_path / "out.parquet.skipped.jsonl").read_text().splitlines()]
    assert [r["row"] for r in skipped] == sorted(bad) and {r["reason"] for r in skipped} == {"'text' is null"}


def test_a_finished_output_is_left_alone_unless_overwrite(small_text_dir, tmp_path):
    source = write_parquet(tmp_path / "in.parquet", sentences(50))
    out = tmp_path / "out.npy"
    assert embedrt_cli("embed", small_text_dir, "--input", source, "--output", out).returncode == 0
    stamp = out.stat().st_mtime_ns
    again = embedrt_cli("embed", small_text_dir, "--input", source, "--output", out)
    assert again.returncode == 0 and "is complete (same model, input and options): nothing to do" in again.stderr
    assert out.stat().st_mtime_ns == stamp
    forced = embedrt_cli("embed", small_text_dir, "--input", source, "--output", out, "--overwrite")
    assert forced.returncode == 0 and out.stat().st_mtime_ns != stamp
    assert np.load(out).shape == (50, 64)


def test_a_changed_option_input_or_model_is_refused_naming_what_changed(small_text_dir, tmp_path, minilm_dir):
    source = write_parquet(tmp_path / "in.parquet", sentences(300))
    out = tmp_path / "out.parquet"
    stopped = run_until(["embed", small_text_dir, "--input", source, "--output", out, "--chunk-rows", 20], out, 2)
    assert 2 <= stopped < 15
    result = embedrt_cli("embed", small_text_dir, "--input", source, "--output", out, "--chunk-rows", 50)
    assert result.returncode == 2 and "an unfinished job wrote it with a different --chunk-rows (20 -> 50)" in result.stderr
    result = embedrt_cli("embed", minilm_dir, "--input", source, "--output", out, "--chunk-rows", 20)
    assert result.returncode == 2 and "model (path:" in result.stderr and "model (dim: 64 -> 384)" in result.stderr
    write_parquet(source, sentences(301))
    result = embedrt_cli("embed", small_text_dir, "--input", source, "--output", out, "--chunk-rows", 20)
    assert result.returncode == 2 and f"input {source.resolve()} (bytes:" in result.stderr and "pass --overwrite to start over" in result.stderr
    assert embedrt_cli("embed", small_text_dir, "--input", source, "--output", out, "--chunk-rows", 20, "--overwrite").returncode == 0
    assert len(read_output(out)[0]) == 301


# A real `embedrt embed` that, having committed its first chunk, waits for a line on stdin before the next: the
# test holds it open there (lock taken, journal written), so the overlap it checks is forced, not raced.
def test_a_second_job_on_the_same_output_is_refused_and_cannot_swap_results(small_text_dir, tmp_path):
    many = write_parquet(tmp_path / "many.parquet", sentences(2000, seed=1))
    few = write_parquet(tmp_path / "few.parquet", sentences(10, seed=2))
    out = tmp_path / "out.parquet"
    first = start_held(["embed", small_text_dir, "--input", many, "--output", out, "--chunk-rows", 50], 1)
    try:
        assert chunks_done(out) == 1  # mid-job: one chunk committed, the lock held
        second = embedrt_cli("embed", small_text_dir, "--input", few, "--output", out, "--chunk-rows", 50)
        first.stdin.write("go\n")
        first.stdin.flush()
    finally:
        first.stdin.close()  # lets the first job go on (or stop) even when an assertion above failed
    assert first.wait(timeout=300) == 0, first.stderr.read()
    assert second.returncode == 2
    assert f"--output {out}: another `embedrt embed` (pid {first.pid}) is writing it" in second.stderr
    assert len(read_output(out)[0]) == 2000  # the first job's rows, all of them
    after = embedrt_cli("embed", small_text_dir, "--input", few, "--output", out, "--chunk-rows", 50)
    assert after.returncode == 2 and "a finished job wrote it with a different input" in after.stderr


def test_a_same_size_edit_with_its_mtime_put_back_is_refused_naming_the_input(small_text_dir, tmp_path):
    import os

    source = tmp_path / "in.txt"
    source.write_text("".join(t + "\n" for t in sentences(300, seed=6)), encoding="utf-8")
    out = tmp_path / "out.npy"
    stopped = run_until(["embed", small_text_dir, "--input", source, "--output", out, "--chunk-rows", 20], out, 2)
    assert 2 <= stopped < 15
    stat = source.stat()
    data = bytearray(source.read_bytes())
    data[0] = ord("X") if data[0] != ord("X") else ord("Y")  # a row of the finished first chunk, same size
    source.write_bytes(bytes(data))
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert (source.stat().st_size, source.stat().st_mtime_ns) == (stat.st_size, stat.st_mtime_ns)
    result = embedrt_cli("embed", small_text_dir, "--input", source, "--output", out, "--chunk-rows", 20)
    assert result.returncode == 2, result.stderr
    assert f"an unfinished job wrote it with a different input {source.resolve()} (sha256:" in result.stderr
    assert not out.exists()
