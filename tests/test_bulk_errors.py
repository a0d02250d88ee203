"""Bad rows stop a job naming the row, or are recorded with --on-error skip; a bad --output is refused before any work."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from bulk_fixtures import embedrt_cli, read_output, sentences, small_text, small_text_dir, write_parquet  # noqa: F401

GOOD = ["first text", "second text", "third text", "fourth text"]


def bad_inputs(tmp_path):
    """(file, where the bad row is, why) for each format: invalid UTF-8, a JSON lone surrogate, a null, a missing field."""
    txt = tmp_path / "in.txt"
    txt.write_bytes(b"first text\nsecond text\ncaf\xe9 au lait\nthird text\nfourth text\n")
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text('{"text": "first text"}\n{"text": "bad \\ud800 escape"}\n{"text": "second text"}\n{"body": "no text"}\n'
                     '{"text": "third text"}\n{"text": "fourth text"}\n', encoding="utf-8")
    csv = tmp_path / "in.csv"
    csv.write_bytes(b"text\nfirst text\nsecond text\nthird text\n\"caf\xe9\"\nfourth text\n")
    parquet = write_parquet(tmp_path / "in.parquet", ["first text", None, "second text", "third text", "fourth text"])
    return [
        (txt, f"{txt}:3: not valid UTF-8", [(2, "not valid UTF-8")]),
        (jsonl, f"{jsonl}:2: the text holds a lone surrogate (U+D800 at character 4)", [(1, "lone surrogate"), (3, "no 'text' field")]),
        (csv, f"{csv}, row 4: not valid UTF-8", [(3, "not valid UTF-8")]),
        (parquet, f"{parquet}, row 2: 'text' is null", [(1, "'text' is null")]),
    ]


def test_a_bad_row_stops_the_job_naming_its_file_and_row(small_text_dir, tmp_path):
    for source, message, _ in bad_inputs(tmp_path):
        out = tmp_path / f"out{source.suffix}.parquet"
        result = embedrt_cli("embed", small_text_dir, "--input", source, "--output", out)
        assert result.returncode == 2, result.stderr
        assert message in result.stderr and "--on-error skip" in result.stderr
        assert not out.exists() and not (tmp_path / (out.name + ".parts")).exists()


def test_on_error_skip_records_each_bad_row_with_its_reason_and_embeds_the_rest(small_text_dir, small_text, tmp_path):
    for source, _, bad in bad_inputs(tmp_path):
        out = tmp_path / f"out{source.suffix}.parquet"
        result = embedrt_cli("embed", small_text_dir, "--input", source, "--on-error", "skip", "--keep-text", "--output", out)
        assert result.returncode == 0, result.stderr
        ids, vectors, texts = read_output(out)
        assert texts == GOOD
        assert sorted(set(ids) | {row for row, _ in bad}) == list(range(len(GOOD) + len(bad)))
        np.testing.assert_allclose(vectors, small_text.embed(GOOD), atol=1e-6)
        side = [json.loads(line) for line in (tmp_path / f"{out.name}.skipped.jsonl").read_text().splitlines()]
        assert [(r["row"], why in r["reason"]) for r, (_, why) in zip(side, bad)] == [(row, True) for row, _ in bad]
        assert f"{len(bad)} row(s) skipped" in result.stderr


def test_a_text_over_the_models_length_with_no_truncate_names_its_row(small_text_dir, tmp_path):
    source = tmp_path / "in.txt"
    source.write_text("short\n" + "word " * 500 + "\nshort again\n", encoding="utf-8")
    result = embedrt_cli("embed", small_text_dir, "--input", source, "--no-truncate", "--output", tmp_path / "o.npy")
    assert result.returncode == 2 and f"{source}:2: the text is longer than the model's 128 tokens" in result.stderr
    result = embedrt_cli("embed", small_text_dir, "--input", source, "--no-truncate", "--on-error", "skip", "--output", tmp_path / "o.npy")
    assert result.returncode == 0 and np.load(tmp_path / "o.npy").shape == (2, 64)


def test_undecodable_bytes_in_a_text_argument_exit_2_naming_the_argument(small_text_dir):
    argv = [sys.executable.encode(), b"-m", b"embedrt.cli", b"embed", os.fsencode(small_text_dir), b"fine", b"caf\xe9"]
    result = subprocess.run(argv, capture_output=True)
    assert result.returncode == 2
    assert b"TEXT argument 2: the text holds a lone surrogate (U+DCE9 at character 3)" in result.stderr
    skipped = subprocess.run(argv + [b"--on-error", b"skip"], capture_output=True)
    assert skipped.returncode == 0 and b"skipped TEXT argument 2" in skipped.stderr
    assert [json.loads(line)["text"] for line in skipped.stdout.decode().splitlines()] == ["fine"]


@pytest.mark.parametrize("kind", ["directory", "symlink", "dangling symlink", "missing parent", "suffix"])
def test_an_unusable_output_path_exits_2_naming_output_before_the_model_is_read(tmp_path, kind):
    source = tmp_path / "in.txt"
    source.write_text("hello\n")
    target = {"directory": tmp_path / "out.parquet", "symlink": tmp_path / "link.npy", "dangling symlink": tmp_path / "dangling.npy",
              "missing parent": tmp_path / "absent" / "out.npy", "suffix": tmp_path / "out.csv"}[kind]
    if kind == "directory":
        target.mkdir()
    elif kind == "symlink":
        (tmp_path / "real.npy").write_bytes(b"")
        target.symlink_to(tmp_path / "real.npy")
    elif kind == "dangling symlink":
        target.symlink_to(tmp_path / "nowhere.npy")
    result = embedrt_cli("embed", tmp_path / "no-such-model", "--input", source, "--output", target)  # the model would fail later
    assert result.returncode == 2
    assert f"--output {target}: " in result.stderr and "no-such-model" not in result.stderr


def _in_namespace(script: str) -> subprocess.CompletedProcess:
    """Run a shell script as root of a new user and mount namespace, where it may mount a tmpfs of its own."""
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare (util-linux) to mount a private tmpfs")
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"user namespaces are not allowed here: {probe.stderr.decode().strip()}")
    return subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, timeout=600)


def test_a_read_only_output_directory_exits_2_before_the_model_is_loaded(small_text_dir, tmp_path):
    broken = tmp_path / "model"
    shutil.copytree(small_text_dir, broken)
    size = (broken / "model.onnx").stat().st_size
    (broken / "model.onnx").write_bytes(b"\0" * size)  # same size: its manifest reads, loading it would fail
    (tmp_path / "in.txt").write_text("hello\n")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    result = _in_namespace(f"mount -t tmpfs -o ro,size=1m tmpfs {mnt} && "
                           f"{sys.executable} -m embedrt.cli embed {broken} --input {tmp_path / 'in.txt'} --output {mnt / 'o.parquet'}")
    assert result.returncode == 2, result.stderr
    assert f"--output {mnt / 'o.parquet'}: not writable" in result.stderr and "Read-only file system" in result.stderr


def test_a_full_disk_is_refused_up_front_or_mid_job_and_the_same_command_resumes_after_space_is_freed(small_text_dir, small_text, tmp_path):
    texts = [t + " " + "padding words " * 30 for t in sentences(600, seed=5)]  # kept texts make parts outgrow the estimate
    source = write_parquet(tmp_path / "in.parquet", texts)
    mnt, out = tmp_path / "mnt", tmp_path / "mnt" / "o.parquet"
    mnt.mkdir()
    command = f"{sys.executable} -m embedrt.cli embed {small_text_dir} --input {source} --keep-text --chunk-rows 100 --output {out}"
    script = (f"mount -t tmpfs -o size=64k tmpfs {mnt}; {command}; echo rc=$?; "  # 600 x 64 x 4 x 2 bytes estimated: refused up front
              f"mount -o remount,size=420k {mnt}; {command}; echo rc=$?; "  # the estimate passes, the texts fill the disk mid-job
              f"mount -o remount,size=20m {mnt}; {command}; echo rc=$?; "
              f"{sys.executable} -c \"import pyarrow.parquet as pq, numpy as np; t = pq.read_table('{out}'); "
              f"np.save('{tmp_path / 'v.npy'}', t.column('embedding').combine_chunks().flatten().to_numpy().reshape(-1, 64)); "
              f"print('rows', t.num_rows, t.column('id').to_pylist() == list(range(600)))\"")
    result = _in_namespace(script)
    codes = [line for line in result.stdout.splitlines() if line.startswith("rc=")]
    assert codes == ["rc=2", "rc=2", "rc=0"], result.stdout + result.stderr
    assert f"--output {out}: about 0.3 MB are needed" in result.stderr
    assert f"--output {out}: no space left on the device" in result.stderr and "run the same command again" in result.stderr
    assert "resumed after" in result.stderr
    assert "rows 600 True" in result.stdout
    np.testing.assert_allclose(np.load(tmp_path / "v.npy"), small_text.embed(texts), atol=1e-6)


def test_an_existing_file_at_output_is_kept_and_nothing_is_left_beside_it(small_text_dir, tmp_path):
    (tmp_path / "in.txt").write_text("hello\n")
    out = tmp_path / "mine.npy"
    out.write_bytes(b"the user's own file")
    result = embedrt_cli("embed", small_text_dir, "--input", tmp_path / "in.txt", "--output", out)
    assert result.returncode == 2 and f"--output {out} exists and no unfinished job is writing it; pass --overwrite" in result.stderr
    assert out.read_bytes() == b"the user's own file" and sorted(p.name for p in tmp_path.iterdir()) == ["in.txt", "mine.npy"]


@pytest.mark.parametrize("suffix", [".npy", ".jsonl", ".parquet"])
def test_a_part_that_fills_the_disk_says_no_space_left_whatever_the_format(tmp_path, suffix):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    out = mnt / f"o{suffix}"
    code = ("import numpy as np; from pathlib import Path; from embedrt.bulk.parts import FORMATS, Chunk; from embedrt.bulk.journal import WorkDir\n"
            f"fmt, work = FORMATS[{suffix!r}]('id', 'int64', 64), WorkDir(Path({str(out)!r}))\n"
            "chunk = Chunk(list(range(300)), None, np.random.default_rng(0).standard_normal((300, 64)).astype(np.float32))\n"
            "try:\n"
            f"    work.write(Path({str(mnt / ('part-000001' + suffix))!r}), lambda tmp: fmt.write(chunk, tmp))\n"
            "except Exception as exc:\n"
            "    print(type(exc).__name__, exc)\n")
    # 300 x 64 float32 vectors: 76,800 bytes or more in every format, where 8 KiB are left
    result = _in_namespace(f"mount -t tmpfs -o size=64k tmpfs {mnt} && dd if=/dev/zero of={mnt}/filler bs=4k count=14 2>/dev/null && "
                           f"{sys.executable} -c \"{code}\"")
    assert f"InputError --output {out}: no space left on the device (writing part-000001{suffix}); free some space and run the same command again" \
        in result.stdout, result.stdout + result.stderr
