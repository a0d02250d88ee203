"""`--overwrite` replaces only an earlier embedrt export of the same kind; what killed exports leave is cleaned by the next run."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

import embedrt
from embedrt.errors import ExportError
from embedrt.export import export_text, optimize_export
from embedrt.export.staging import MARKER_NAME, clean_stale_staging
from embedrt.triton.repository import build_repository
from random_models import random_distilbert


@pytest.fixture(scope="module")
def distil(tmp_path_factory, minilm_source) -> Path:
    return random_distilbert(tmp_path_factory.mktemp("source") / "distil", minilm_source)


@pytest.fixture(scope="module")
def distil_export(tmp_path_factory, distil) -> Path:
    return export_text(distil, tmp_path_factory.mktemp("exports") / "distil")


def _tree(path: Path) -> dict[str, bytes]:
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def _cli(*args, cwd=None, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "embedrt.cli", *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env)


def test_overwrite_of_a_dir_of_user_files_is_refused_with_exit_2_and_nothing_deleted(tmp_path, distil):
    user = tmp_path / "photos"
    (user / "2024").mkdir(parents=True)
    (user / "2024" / "beach.jpg").write_bytes(b"\xff\xd8 my photo")
    (user / "notes.txt").write_text("mine")
    before = _tree(user)
    with pytest.raises(ExportError, match=r"--out .*photos: --overwrite replaces only an earlier text export .*no text manifest"):
        export_text(distil, user, overwrite=True)
    result = _cli("export", "text", distil, "--out", user, "--overwrite")
    assert result.returncode == 2
    assert "--out" in result.stderr and "nothing was deleted" in result.stderr
    assert _tree(user) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photos"]  # no staging dir left beside it


def test_overwrite_never_replaces_the_source_dir_or_a_dir_holding_it(tmp_path, minilm_source):
    source = random_distilbert(tmp_path / "models" / "distil", minilm_source)
    before = _tree(tmp_path / "models")
    with pytest.raises(ExportError, match=r"--out .*distil: is the source .*distil, which must not be replaced"):
        export_text(source, source, overwrite=True)
    with pytest.raises(ExportError, match=r"--out .*models: holds the source .*distil"):
        export_text(source, tmp_path / "models", overwrite=True)
    result = _cli("export", "text", source, "--out", tmp_path, "--overwrite")
    assert result.returncode == 2 and "holds the source" in result.stderr
    assert _tree(tmp_path / "models") == before


def test_overwrite_never_replaces_the_home_dir_or_the_current_dir_or_its_parents(tmp_path, distil, monkeypatch):
    home, work = tmp_path / "home", tmp_path / "home" / "work" / "project"
    work.mkdir(parents=True)
    (home / "keep.txt").write_text("mine")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    for out in (home, work, work.parent):
        with pytest.raises(ExportError, match="the root, the home dir or the current dir"):
            export_text(distil, out, overwrite=True)
    with pytest.raises(ExportError, match="the root, the home dir or the current dir"):
        export_text(distil, "/", overwrite=True)
    assert (home / "keep.txt").read_text() == "mine"


def test_an_earlier_export_of_the_same_kind_is_replaced_and_marked(tmp_path, distil, distil_export):
    out = tmp_path / "again"
    shutil.copytree(distil_export, out)
    marker = json.loads((out / MARKER_NAME).read_text())
    assert marker["kind"] == "text"
    assert {"embedrt.json", "model.onnx", "tokenizer.json"} <= set(marker["files"])
    (out / "model.onnx").write_bytes(b"damaged")  # a damaged earlier export is still ours to replace
    assert export_text(distil, out, overwrite=True) == out
    assert embedrt.load(out).embed(["replaced"]).shape == (1, 64)


def test_an_earlier_export_with_a_users_file_added_is_refused(tmp_path, distil, distil_export):
    out = tmp_path / "export"
    shutil.copytree(distil_export, out)
    (out / "results.csv").write_text("my results")
    with pytest.raises(ExportError, match=r"holds files embedrt did not write there \(results.csv\)"):
        export_text(distil, out, overwrite=True)
    assert (out / "results.csv").read_text() == "my results"
    (out / "results.csv").unlink()
    (out / "runs" / "empty").mkdir(parents=True)  # dirs count too, even empty ones
    with pytest.raises(ExportError, match=r"did not write there \(runs/, runs/empty/\)"):
        export_text(distil, out, overwrite=True)
    assert (out / "runs" / "empty").is_dir()


def test_an_export_of_another_kind_is_not_replaced(tmp_path, distil, distil_export):
    repo = build_repository([distil_export], tmp_path / "repo")
    with pytest.raises(ExportError, match="it is a Triton model repository"):
        export_text(distil, repo, overwrite=True)
    legacy_image = tmp_path / "image"  # written before the marker existed: its manifest decides
    shutil.copytree(distil_export, legacy_image)
    (legacy_image / MARKER_NAME).unlink()
    manifest = json.loads((legacy_image / "embedrt.json").read_text())
    (legacy_image / "embedrt.json").write_text(json.dumps(dict(manifest, modality="image")))
    with pytest.raises(ExportError, match=r"no text manifest \(embedrt.json: image\)"):
        export_text(distil, legacy_image, overwrite=True)
    assert (repo / MARKER_NAME).is_file() and (legacy_image / "model.onnx").is_file()


def test_an_export_written_before_the_marker_existed_is_replaced(tmp_path, distil, distil_export):
    out = tmp_path / "legacy"
    shutil.copytree(distil_export, out)
    (out / MARKER_NAME).unlink()
    export_text(distil, out, overwrite=True)
    assert json.loads((out / MARKER_NAME).read_text())["kind"] == "text"


def test_optimize_refuses_an_out_that_holds_its_fp32_export(tmp_path, distil_export):
    holder = tmp_path / "holder"
    shutil.copytree(distil_export, holder / "fp32")
    with pytest.raises(ExportError, match=r"--out .*holder: holds the source .*fp32"):
        optimize_export(holder / "fp32", holder, precision="int8", overwrite=True)
    assert (holder / "fp32" / "model.onnx").is_file()


def test_triton_build_replaces_only_an_earlier_repository_and_names_repository(tmp_path, distil_export):
    user = tmp_path / "user"
    user.mkdir()
    (user / "thesis.tex").write_text("mine")
    with pytest.raises(ExportError, match=r"--repository .*user: exists and is not empty; pass --overwrite"):
        build_repository([distil_export], user)
    with pytest.raises(ExportError, match=r"--repository .*user: --overwrite replaces only an earlier Triton model repository"):
        build_repository([distil_export], user, overwrite=True)
    with pytest.raises(ExportError, match=r"--repository .*distil: is the source"):
        build_repository([distil_export], distil_export, overwrite=True)
    result = _cli("triton", "build", distil_export, "--repository", user, "--overwrite")
    assert result.returncode == 2 and "--repository" in result.stderr and "--out" not in result.stderr
    assert (user / "thesis.tex").read_text() == "mine"
    repo = build_repository([distil_export], tmp_path / "repo", name="first")
    (repo / "mine").mkdir()
    with pytest.raises(ExportError, match=r"did not write there \(mine/\)"):
        build_repository([distil_export], repo, name="second", overwrite=True)
    (repo / "mine").rmdir()
    build_repository([distil_export], repo, name="second", overwrite=True)
    assert sorted(p.name for p in repo.iterdir()) == [MARKER_NAME, "second", "second_encoder", "second_tokenizer"]


def _sigkilled_export(source: Path, out: Path, temp: Path) -> int:
    """Start `embedrt export text` in a subprocess, SIGKILL it once its staging and work dirs exist; its PID."""
    env = dict(os.environ, TMPDIR=str(temp))
    process = subprocess.Popen([sys.executable, "-m", "embedrt.cli", "export", "text", str(source), "--out", str(out), "--overwrite"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + 120
        while not (list(out.parent.glob(f".{out.name}.partial-{process.pid}-*")) and list(temp.glob(f"embedrt-fp32-{process.pid}-*"))):
            assert process.poll() is None, "the export ended before it could be killed"
            assert time.monotonic() < deadline, "the export never staged its dirs"
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=30) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return process.pid


def test_what_a_sigkilled_export_leaves_is_removed_by_the_next_run_but_a_live_runs_is_kept(tmp_path, distil, distil_export, monkeypatch):
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    out = tmp_path / "out"
    shutil.copytree(distil_export, out)
    before = _tree(out)
    dead = _sigkilled_export(distil, out, temp)
    assert _tree(out) == before  # the killed run left the previous export as it was
    leftovers = list(tmp_path.glob(f".out.partial-{dead}-*")) + list(temp.glob(f"embedrt-fp32-{dead}-*"))
    assert len(leftovers) == 2
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        live_partial = tmp_path / f".out.partial-{live.pid}-0123abcd"
        live_work = temp / f"embedrt-build-{live.pid}-xyz"
        for path in (live_partial, live_work):
            path.mkdir()
        export_text(distil, out, overwrite=True)
        assert not any(p.exists() for p in leftovers)
        assert live_partial.is_dir() and live_work.is_dir()  # a running export's dirs are never touched
    finally:
        live.kill()
        live.wait()
    assert embedrt.load(out).embed(["after the kill"]).shape == (1, 64)


def test_a_stale_previous_export_moved_aside_is_put_back_when_its_target_is_missing(tmp_path, distil_export):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    pid = int(dead.stdout)
    aside = tmp_path / f".model.old-{pid}-89abcdef"
    shutil.copytree(distil_export, aside)  # killed between moving the old export aside and renaming the new one in
    older = tmp_path / f".model.partial-{pid}"  # the name older versions used
    older.mkdir()
    assert sorted(clean_stale_staging(tmp_path)) == sorted([aside, older])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    assert (tmp_path / "model" / "model.onnx").read_bytes() == (distil_export / "model.onnx").read_bytes()
