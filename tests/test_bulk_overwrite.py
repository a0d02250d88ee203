"""`embed --overwrite` keeps the previous output, byte for byte, until the new one is complete: a run that fails any way leaves it."""

from __future__ import annotations

import json
import shutil
import signal
import sys

import numpy as np

from bulk_fixtures import embedrt_cli, sentences, small_text_dir, start_held, write_parquet  # noqa: F401
from test_bulk_errors import _in_namespace

OLD_ROWS, NEW_ROWS, CHUNK = 50, 3000, 100


def old_output(small_text_dir, tmp_path, suffix=".parquet"):
    """A finished output with a skipped-rows file beside it: (its path, the bytes of both files)."""
    source = write_parquet(tmp_path / "old.parquet", [None if i == 7 else t for i, t in enumerate(sentences(OLD_ROWS, seed=3))])
    out = tmp_path / f"out{suffix}"
    result = embedrt_cli("embed", small_text_dir, "--input", source, "--on-error", "skip", "--output", out)
    assert result.returncode == 0, result.stderr
    return out, source, snapshot(out)


def snapshot(out):
    return {p.name: p.read_bytes() for p in (out, out.with_name(out.name + ".skipped.jsonl"))}


def assert_old_output_kept(out, before, small_text_dir, old_source):
    assert snapshot(out) == before
    # the finished journal still describes it: the old command finds its output complete
    again = embedrt_cli("embed", small_text_dir, "--input", old_source, "--on-error", "skip", "--output", out)
    assert again.returncode == 0 and "is complete" in again.stderr, again.stderr
    assert snapshot(out) == before


def test_a_bad_utf8_row_in_the_new_input_leaves_the_old_output_intact(small_text_dir, tmp_path):
    out, old_source, before = old_output(small_text_dir, tmp_path)
    for bad_row in (3, 250):  # in the first chunk (nothing finished), and after two finished chunks
        lines = [t.encode() for t in sentences(400, seed=4)]
        lines[bad_row] = b"caf\xe9 au lait"
        source = tmp_path / f"bad{bad_row}.txt"
        source.write_bytes(b"\n".join(lines) + b"\n")
        result = embedrt_cli("embed", small_text_dir, "--input", source, "--chunk-rows", CHUNK, "--output", out, "--overwrite")
        assert result.returncode == 2 and f"{source}:{bad_row + 1}: not valid UTF-8" in result.stderr, result.stderr
        assert snapshot(out) == before
    # the second failure had committed chunks: its job is resumable, and the old output is still the one in place
    journal = json.loads((tmp_path / "out.parquet.parts" / "journal.json").read_text())
    assert len(journal["chunks"]) == 2 and not journal["finished"]


def test_an_export_that_fails_its_integrity_check_on_load_leaves_the_old_output_intact(small_text_dir, tmp_path):
    out, old_source, before = old_output(small_text_dir, tmp_path)
    broken = tmp_path / "broken"
    shutil.copytree(small_text_dir, broken)
    model = bytearray((broken / "model.onnx").read_bytes())
    model[len(model) // 2] ^= 0x01
    (broken / "model.onnx").write_bytes(bytes(model))
    new = write_parquet(tmp_path / "new.parquet", sentences(200, seed=8))
    result = embedrt_cli("embed", broken, "--input", new, "--output", out, "--overwrite")
    assert result.returncode == 2 and f"{broken / 'model.onnx'}: its sha256" in result.stderr, result.stderr
    assert_old_output_kept(out, before, small_text_dir, old_source)


def test_sigint_mid_run_leaves_the_old_output_intact_and_the_new_job_resumable(small_text_dir, tmp_path):
    out, old_source, before = old_output(small_text_dir, tmp_path)
    new = write_parquet(tmp_path / "new.parquet", sentences(NEW_ROWS, seed=9))
    args = ["embed", str(small_text_dir), "--input", str(new), "--chunk-rows", str(CHUNK), "--output", str(out), "--overwrite", "--quiet"]
    journal_path = tmp_path / "out.parquet.parts" / "journal.json"
    process = start_held(args, 2)  # the new job's journal lists 2 finished chunks of the new input
    process.send_signal(signal.SIGINT)
    process.wait(timeout=120)
    _, stderr = process.communicate()
    assert process.returncode == 130, stderr
    stopped = len(json.loads(journal_path.read_text())["chunks"])
    assert 2 <= stopped < NEW_ROWS // CHUNK, f"the signal landed mid-run: {stopped} chunks"
    assert snapshot(out) == before
    # the same command without --overwrite finishes the new job and only then replaces the output
    resumed = embedrt_cli(*args[:-2], "--quiet")
    assert resumed.returncode == 0 and f"resumed after {stopped} finished chunk(s)" in resumed.stderr, resumed.stderr
    import pyarrow.parquet as pq

    assert pq.read_table(out).num_rows == NEW_ROWS
    assert not out.with_name(out.name + ".skipped.jsonl").exists()  # the new job skipped nothing: the old side file went with it


def test_a_refused_space_check_leaves_the_old_output_intact(small_text_dir, tmp_path):
    texts = sentences(OLD_ROWS, seed=3)
    old = tmp_path / "old.txt"
    old.write_bytes(b"\n".join(t.encode() for t in texts[:7]) + b"\ncaf\xe9\n" + b"\n".join(t.encode() for t in texts[8:]) + b"\n")
    new = write_parquet(tmp_path / "new.parquet", sentences(NEW_ROWS, seed=9))
    mnt, keep = tmp_path / "mnt", tmp_path / "kept"
    mnt.mkdir()
    keep.mkdir()
    out = mnt / "o.npy"
    embed = f"{sys.executable} -m embedrt.cli embed {small_text_dir} --output {out}"
    script = (f"mount -t tmpfs -o size=128k tmpfs {mnt} && "  # 50 x 64 x 4 bytes x 2 fit; 3000 rows (1.5 MB estimated) do not
              f"{embed} --input {old} --on-error skip; echo rc=$?; cp {out} {out}.skipped.jsonl {keep}/; "
              f"{embed} --input {new} --overwrite; echo rc=$?; "
              f"cmp {out} {keep}/o.npy && cmp {out}.skipped.jsonl {keep}/o.npy.skipped.jsonl && echo kept; "
              f"{embed} --input {old} --on-error skip; echo rc=$?")
    result = _in_namespace(script)
    codes = [line for line in result.stdout.splitlines() if line.startswith("rc=")]
    assert codes == ["rc=0", "rc=2", "rc=0"], result.stdout + result.stderr
    assert f"--output {out}: about 1.5 MB are needed" in result.stderr
    assert "kept" in result.stdout.splitlines(), result.stdout + result.stderr
    assert np.load(keep / "o.npy").shape == (OLD_ROWS - 1, 64)
    assert result.stderr.index("is complete") > result.stderr.index("about 1.5 MB")  # the old command still finds its output done


def test_a_failed_load_leaves_no_work_dir_beside_a_new_or_a_foreign_output(small_text_dir, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(small_text_dir, broken)
    (broken / "model.onnx").write_bytes(b"\0" * (broken / "model.onnx").stat().st_size)  # same size: read, then refused by hash
    source = tmp_path / "in.txt"
    source.write_text("one\ntwo\n")
    new = tmp_path / "new.npy"
    assert embedrt_cli("embed", broken, "--input", source, "--output", new).returncode == 2
    mine = tmp_path / "mine.npy"
    mine.write_bytes(b"the user's own file")
    assert embedrt_cli("embed", broken, "--input", source, "--output", mine, "--overwrite").returncode == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken", "in.txt", "mine.npy"]
    assert mine.read_bytes() == b"the user's own file"
    again = embedrt_cli("embed", small_text_dir, "--input", source, "--output", mine)  # still not replaced without --overwrite
    assert again.returncode == 2 and "pass --overwrite to replace it" in again.stderr
