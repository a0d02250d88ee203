"""`embedrt embed --input FILE --output FILE` streams every format in and out, in order, with the in-process vectors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bulk_fixtures import embedrt_cli, read_output, sentences, small_text, small_text_dir, write_input, write_parquet  # noqa: F401

TEXTS = sentences(230, seed=3) + ["", "東京 café ünïcödé", 'a "quoted", comma-separated\nline break inside']


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".tsv", ".parquet"])
def test_every_table_input_to_parquet_keeps_ids_texts_and_order(small_text_dir, small_text, tmp_path, suffix):
    source = write_input(tmp_path / f"in{suffix}", TEXTS)
    out = tmp_path / "out.parquet"
    result = embedrt_cli("embed", small_text_dir, "--input", source, "--id-column", "doc", "--keep-text", "--output", out, "--chunk-rows", 50)
    assert result.returncode == 0, result.stderr
    ids, vectors, texts = read_output(out, key="doc")
    assert ids == [f"d{i}" for i in range(len(TEXTS))]
    assert texts == TEXTS
    np.testing.assert_allclose(vectors, small_text.embed(TEXTS), atol=1e-6)
    assert f"wrote {len(TEXTS)} x 64 vectors to {out}" in result.stderr


def test_a_text_file_gives_one_row_a_line_and_row_numbers_as_ids(small_text_dir, small_text, tmp_path):
    lines = [t.replace("\n", " ") for t in TEXTS]
    source = write_input(tmp_path / "in.txt", lines)
    result = embedrt_cli("embed", small_text_dir, "--input", source, "--output", tmp_path / "out.parquet", "--chunk-rows", 64)
    assert result.returncode == 0, result.stderr
    ids, vectors, texts = read_output(tmp_path / "out.parquet")
    assert ids == list(range(len(lines))) and texts is None
    np.testing.assert_allclose(vectors, small_text.embed(lines), atol=1e-6)


@pytest.mark.parametrize("suffix", [".npy", ".jsonl", ".parquet"])
def test_every_output_format_holds_the_in_process_vectors_in_input_order(small_text_dir, small_text, tmp_path, suffix):
    source = write_parquet(tmp_path / "in.parquet", TEXTS, row_group_size=37)
    out = tmp_path / f"out{suffix}"
    result = embedrt_cli("embed", small_text_dir, "--input", source, "--output", out, "--chunk-rows", 40)
    assert result.returncode == 0, result.stderr
    ids, vectors, _ = read_output(out)
    assert vectors.dtype == np.float32 and vectors.shape == (len(TEXTS), 64)
    np.testing.assert_allclose(vectors, small_text.embed(TEXTS), atol=1e-6)  # .jsonl rounds to 7 digits
    if ids is not None:
        assert ids == list(range(len(TEXTS)))
    assert not list(tmp_path.glob(f"out{suffix}.parts/part-*")), "parts are deleted once the output is assembled"


def test_a_text_column_of_another_name_is_read(small_text_dir, small_text, tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps({"body": t}) + "\n" for t in TEXTS[:20]), encoding="utf-8")
    result = embedrt_cli("embed", small_text_dir, "--input", path, "--text-column", "body", "--output", tmp_path / "o.npy")
    assert result.returncode == 0, result.stderr
    np.testing.assert_allclose(np.load(tmp_path / "o.npy"), small_text.embed(TEXTS[:20]), atol=1e-6)


def test_a_missing_text_column_exits_2_naming_the_column_and_what_there_is(small_text_dir, tmp_path):
    source = write_input(tmp_path / "in.parquet", TEXTS[:5])
    result = embedrt_cli("embed", small_text_dir, "--input", source, "--text-column", "body", "--output", tmp_path / "o.parquet")
    assert result.returncode == 2
    assert "no 'body' column (found text, doc); pass --text-column NAME" in result.stderr
    csv = write_input(tmp_path / "in.csv", TEXTS[:5])
    result = embedrt_cli("embed", small_text_dir, "--input", csv, "--id-column", "key", "--output", tmp_path / "o.parquet")
    assert result.returncode == 2 and "no 'key' column in the header (found doc, text)" in result.stderr


def test_npy_output_refuses_ids_and_texts_it_cannot_hold(small_text_dir, tmp_path):
    source = write_input(tmp_path / "in.jsonl", TEXTS[:5])
    result = embedrt_cli("embed", small_text_dir, "--input", source, "--keep-text", "--output", tmp_path / "o.npy")
    assert result.returncode == 2 and "a .npy file holds vectors only" in result.stderr


def test_stdout_streams_jsonl_with_each_text(small_text_dir, small_text, tmp_path):
    source = write_input(tmp_path / "in.txt", ["one", "two", "three"])
    result = embedrt_cli("embed", small_text_dir, "--input", source, "--chunk-rows", 2)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["text"] for r in rows] == ["one", "two", "three"]
    np.testing.assert_allclose(np.array([r["embedding"] for r in rows]), small_text.embed(["one", "two", "three"]), atol=1e-6)


def test_no_tty_logs_a_progress_line_with_the_count_and_quiet_silences_everything(small_text_dir, tmp_path):
    source = write_input(tmp_path / "in.txt", TEXTS[:100])
    result = embedrt_cli("embed", small_text_dir, "--input", source, "--output", tmp_path / "o.npy", "--chunk-rows", 30)
    assert result.returncode == 0 and "embedrt: 100/100 texts (100%)" in result.stderr and "texts/s" in result.stderr
    result = embedrt_cli("embed", small_text_dir, "--input", source, "--output", tmp_path / "q.npy", "--quiet")
    assert result.returncode == 0  # quiet but for the one thing lost: a text cut to the model's length
    assert result.stderr.splitlines() == [f"embedrt: wrote 100 x 64 vectors to {tmp_path / 'q.npy'} (1 text(s) longer than the model truncated)"]
    short = write_input(tmp_path / "short.txt", ["one", "two"])
    result = embedrt_cli("embed", small_text_dir, "--input", short, "--output", tmp_path / "s.npy", "--quiet")
    assert result.returncode == 0 and result.stderr == ""


def test_on_a_terminal_the_progress_bar_shows_rate_and_total(small_text_dir, tmp_path):
    import os
    import pty
    import subprocess
    import sys

    source = write_input(tmp_path / "in.txt", TEXTS[:120])
    import fcntl
    import struct
    import termios

    primary, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # a terminal 120 columns wide
    process = subprocess.Popen([sys.executable, "-m", "embedrt.cli", "embed", str(small_text_dir), "--input", str(source), "--output",
                                str(tmp_path / "o.npy"), "--chunk-rows", "40"], stderr=secondary, stdout=subprocess.DEVNULL)
    os.close(secondary)
    seen = b""
    while True:
        try:
            data = os.read(primary, 4096)
        except OSError:  # the terminal closes when the process ends
            break
        if not data:
            break
        seen += data
    assert process.wait(timeout=120) == 0
    screen = seen.decode(errors="replace")
    assert "120/120" in screen and "text/s" in screen and "embedding" in screen


@pytest.mark.parametrize("suffix", [".ndjson", ".json"])
def test_ndjson_and_json_inputs_are_read_as_json_lines(small_text_dir, small_text, tmp_path, suffix):
    source = tmp_path / f"in{suffix}"
    source.write_text("".join(json.dumps({"doc": f"d{i}", "text": t}) + "\n" for i, t in enumerate(TEXTS)), encoding="utf-8")
    out = tmp_path / "out.parquet"
    result = embedrt_cli("embed", small_text_dir, "--input", source, "--id-column", "doc", "--keep-text", "--output", out)
    assert result.returncode == 0, result.stderr
    ids, vectors, texts = read_output(out, key="doc")
    assert ids == [f"d{i}" for i in range(len(TEXTS))] and texts == TEXTS
    np.testing.assert_allclose(vectors, small_text.embed(TEXTS), atol=1e-6)


def test_a_json_array_input_exits_2_asking_for_json_lines(small_text_dir, tmp_path):
    source = tmp_path / "in.json"
    source.write_text(json.dumps([{"text": t} for t in TEXTS[:5]], indent=2), encoding="utf-8")
    result = embedrt_cli("embed", small_text_dir, "--input", source, "--output", tmp_path / "o.npy")
    assert result.returncode == 2
    assert f"--input {source}: a JSON array; give one JSON object a line (JSON lines)" in result.stderr, result.stderr


def test_a_txt_input_of_json_objects_is_embedded_as_lines_with_a_warning_naming_it(small_text_dir, small_text, tmp_path):
    lines = [json.dumps({"text": t}) for t in TEXTS[:5]]
    source = tmp_path / "in.txt"
    source.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    result = embedrt_cli("embed", small_text_dir, "--input", source, "--output", tmp_path / "o.npy")
    assert result.returncode == 0, result.stderr
    assert f"--input {source}: its first line is a JSON object" in result.stderr and ".jsonl" in result.stderr, result.stderr
    np.testing.assert_allclose(np.load(tmp_path / "o.npy"), small_text.embed(lines), atol=1e-6)  # a .txt is text: as asked
