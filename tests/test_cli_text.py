"""`embedrt export/embed/info` as a user runs them: a real process, real files."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from embedrt.gate import describe
from embedrt.manifest import read_manifest


def embedrt_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "embedrt.cli", *map(str, args)], capture_output=True, text=True, cwd=cwd)


def test_embed_round_trip_from_a_text_file_to_npy_equals_the_python_api(minilm_dir, minilm, tmp_path):
    texts = ["The cat sits outside", "A man is playing guitar", "東京", ""]
    (tmp_path / "in.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    result = embedrt_cli("embed", minilm_dir, "--input", tmp_path / "in.txt", "--output", tmp_path / "out.npy")
    assert result.returncode == 0, result.stderr
    vectors = np.load(tmp_path / "out.npy")
    np.testing.assert_allclose(vectors, minilm.embed(texts), atol=1e-6)


def test_embed_round_trip_jsonl_keeps_each_text_beside_its_vector(minilm_dir, minilm, tmp_path):
    texts = ["first", "second text"]
    (tmp_path / "in.jsonl").write_text("\n".join(json.dumps({"text": t, "id": i}) for i, t in enumerate(texts)))
    result = embedrt_cli("embed", minilm_dir, "--input", tmp_path / "in.jsonl", "--keep-text", "--output", tmp_path / "out.jsonl")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["text"] for r in rows] == texts
    np.testing.assert_allclose(np.array([r["embedding"] for r in rows]), minilm.embed(texts), atol=1e-6)


def test_embed_texts_from_arguments_print_jsonl(minilm_dir, minilm):
    result = embedrt_cli("embed", minilm_dir, "hello", "world")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    np.testing.assert_allclose(np.array([r["embedding"] for r in rows]), minilm.embed(["hello", "world"]), atol=1e-6)


def test_a_bad_jsonl_line_exits_2_naming_the_line_and_writes_nothing(minilm_dir, tmp_path):
    (tmp_path / "in.jsonl").write_text('{"text": "ok"}\n{"text": "ok too"}\n{"text": broken\n')
    result = embedrt_cli("embed", minilm_dir, "--input", tmp_path / "in.jsonl", "--output", tmp_path / "out.npy")
    assert result.returncode == 2
    assert "in.jsonl:3: not valid JSON" in result.stderr
    assert not (tmp_path / "out.npy").exists()


def test_a_jsonl_line_without_text_exits_2_naming_the_line(minilm_dir, tmp_path):
    (tmp_path / "in.jsonl").write_text('{"text": "ok"}\n{"body": "wrong key"}\n')
    result = embedrt_cli("embed", minilm_dir, "--input", tmp_path / "in.jsonl", "--output", tmp_path / "out.npy")
    assert result.returncode == 2 and "in.jsonl:2: no 'text' field" in result.stderr
    assert not (tmp_path / "out.npy").exists()


def test_a_directory_given_as_input_file_exits_2_naming_it(minilm_dir, tmp_path):
    result = embedrt_cli("embed", minilm_dir, "--input", tmp_path)
    assert result.returncode == 2 and f"--input {tmp_path}: unreadable" in result.stderr


def test_a_missing_or_undecodable_input_file_exits_2_naming_it(minilm_dir, tmp_path):
    result = embedrt_cli("embed", minilm_dir, "--input", tmp_path / "absent.txt")
    assert result.returncode == 2 and "absent.txt: no such file" in result.stderr
    (tmp_path / "latin1.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    result = embedrt_cli("embed", minilm_dir, "--input", tmp_path / "latin1.txt", "--output", tmp_path / "o.npy")
    assert result.returncode == 2 and "latin1.txt:1: not valid UTF-8" in result.stderr
    assert not (tmp_path / "o.npy").exists() and not (tmp_path / "o.npy.parts").exists()


def test_info_prints_the_manifest_and_active_providers(minilm_dir):
    result = embedrt_cli("info", minilm_dir)
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["active_providers"] == ["CPUExecutionProvider"]
    assert info["manifest"]["dim"] == 384


def test_export_cli_writes_a_loadable_dir_and_refuses_to_clobber(tmp_path, minilm_source):
    from random_models import random_distilbert

    source = random_distilbert(tmp_path / "distil", minilm_source)
    out = tmp_path / "exported"
    result = embedrt_cli("export", "text", source, "--out", out)
    assert result.returncode == 0, result.stderr
    assert (out / "embedrt.json").is_file()
    # the gate it passed is shown without -v: min and mean cosine against PyTorch, cut to 7 digits from the manifest's
    shown = re.search(r"parity gate passed against pytorch fp32: min cosine (\d\.\d{7}), mean (\d\.\d{7}) \(min_cosine >= 0\.99999\)", result.stdout)
    assert shown, result.stdout
    parity = read_manifest(out).parity
    assert float(shown[1]) <= parity["min_cosine"] < float(shown[1]) + 1e-7
    assert float(shown[2]) <= parity["mean_cosine"] < float(shown[2]) + 1e-7
    again = embedrt_cli("export", "text", source, "--out", out)
    assert again.returncode == 2 and "--overwrite" in again.stderr


def test_default_model_is_exported_once_into_the_cache_dir(tmp_path):
    env = dict(os.environ, EMBEDRT_CACHE=str(tmp_path / "cache"))
    run = lambda: subprocess.run([sys.executable, "-m", "embedrt.cli", "embed", "default", "hi"], capture_output=True, text=True, env=env)
    first = run()
    assert first.returncode == 0, first.stderr
    manifest = tmp_path / "cache" / "all-MiniLM-L6-v2" / "embedrt.json"
    stamp = manifest.stat().st_mtime_ns
    second = run()
    assert second.returncode == 0 and manifest.stat().st_mtime_ns == stamp
    assert json.loads(first.stdout)["embedding"] == json.loads(second.stdout)["embedding"]


def test_the_gate_line_cuts_cosines_and_never_rounds_them_up():
    report = {"reference": "pytorch fp32", "min_cosine": 0.99999996, "mean_cosine": 0.99999999, "thresholds": {"min_cosine": 0.99999}, "n": 18}
    assert describe(report) == ("parity gate passed against pytorch fp32: min cosine 0.9999999, mean 0.9999999 (min_cosine >= 0.99999) "
                                "on 18 inputs")
