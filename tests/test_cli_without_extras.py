"""The CLI on a partial install: each optional extra made unimportable in a real `embedrt` process.

A meta-path finder raises ModuleNotFoundError for the blocked top-level modules, as Python does for a
package that is not installed. The install-matrix check (.ci/install_matrix.sh) does the same in real venvs.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import tomllib
from importlib.metadata import PackageNotFoundError, packages_distributions, requires
from pathlib import Path

import httpx
import numpy as np
import pytest

from embedrt.cli import COMMANDS
from embedrt.extras import EXTRA_OF_MODULE
from tests.serve_server import free_port

ALL_EXTRAS = sorted(EXTRA_OF_MODULE)
PRELUDE = """
import sys
blocked = set(sys.argv[1].split(","))

class NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in blocked:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NotInstalled())
from embedrt.cli import main
sys.exit(main(sys.argv[2:]))
"""


def embedrt_without(blocked, *args, cwd=None):
    """`embedrt ARGS` in a process where the modules `blocked` cannot be imported."""
    return subprocess.run([sys.executable, "-c", PRELUDE, ",".join(blocked), *map(str, args)], capture_output=True, text=True, cwd=cwd)


def modules_of(extra):
    return [module for module, e in EXTRA_OF_MODULE.items() if e == extra]


def test_help_lists_every_command_without_any_extra():
    result = embedrt_without(ALL_EXTRAS, "--help")
    assert result.returncode == 0, result.stderr
    listed = re.findall(r"^    (\w+) ", result.stdout, flags=re.MULTILINE)
    assert listed == list(COMMANDS)


@pytest.mark.parametrize("command", list(COMMANDS))
def test_each_command_help_works_without_any_extra(command):
    result = embedrt_without(ALL_EXTRAS, command, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: embedrt {command} ")


def test_embed_on_the_runtime_alone_gives_the_python_apis_vectors(minilm_dir, minilm):
    result = embedrt_without(ALL_EXTRAS, "embed", minilm_dir, "hello", "world")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    np.testing.assert_allclose(np.array([r["embedding"] for r in rows]), minilm.embed(["hello", "world"]), atol=1e-6)


def test_info_on_the_runtime_alone_runs_the_self_check(minilm_dir):
    result = embedrt_without(ALL_EXTRAS, "info", minilm_dir)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["active_providers"] == ["CPUExecutionProvider"]
    assert report["self_check"]["passed"] is True


def test_triton_build_runs_on_the_runtime_alone_and_triton_serve_names_its_extra(minilm_dir, tmp_path):
    built = embedrt_without(ALL_EXTRAS, "triton", "build", minilm_dir, "--repository", tmp_path / "repo", "--name", "minilm")
    assert built.returncode == 0, built.stderr
    assert (tmp_path / "repo" / "minilm_encoder" / "config.pbtxt").is_file()
    served = embedrt_without(modules_of("triton"), "triton", "serve", tmp_path / "repo")
    assert served.returncode == 2 and "pip install 'embedrt[triton]'" in served.stderr, served.stderr


def test_serve_runs_a_text_model_without_the_image_extra_and_starts_without_a_truncation_warning(minilm_dir, tmp_path):
    port = free_port()
    log = tmp_path / "serve.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-c", PRELUDE, ",".join(modules_of("image")), "serve", str(minilm_dir), "--port", str(port),
                                 "--lanes", "1"], stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.5)
        assert proc.poll() is None, log.read_text()
        response = httpx.post(f"http://127.0.0.1:{port}/v1/embeddings", json={"input": ["no Pillow here"], "model": minilm_dir.name}, timeout=30)
        assert response.status_code == 200 and len(response.json()["data"][0]["embedding"]) == 384
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(60) == 0
    assert "truncated" not in log.read_text()


def test_a_command_whose_extra_is_missing_exits_2_naming_the_extra(minilm_dir, tmp_path):
    (tmp_path / "in.txt").write_text("one\ntwo\n")
    cases = [
        ("serve", ["serve", minilm_dir, "--port", "0"]),
        ("export", ["export", "text", "default", "--out", tmp_path / "export"]),
        ("default-model", ["export", "text", "default", "--out", tmp_path / "export"]),
        ("export", ["optimize", minilm_dir, "--out", tmp_path / "int8", "--precision", "int8"]),
        ("bulk", ["embed", minilm_dir, "--input", tmp_path / "in.txt", "--output", tmp_path / "out.parquet"]),
        ("ray", ["embed", minilm_dir, "--ray", "--input", tmp_path / "in.txt", "--output", tmp_path / "ray-out"]),
        ("eval", ["visualize", minilm_dir, "--input", tmp_path / "in.txt", "--method", "pca", "--out", tmp_path / "plot.png"]),
    ]
    for extra, args in cases:
        result = embedrt_without(modules_of(extra), *args)
        assert result.returncode == 2, (extra, result.stderr)
        assert f"pip install 'embedrt[{extra}]'" in result.stderr or f",{extra}]'" in result.stderr, (extra, result.stderr)
        assert "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt"]  # nothing half-written


def test_serve_without_its_extra_names_the_command_and_the_extra(minilm_dir):
    result = embedrt_without(modules_of("serve"), "serve", minilm_dir, "--port", "0")
    assert result.returncode == 2
    assert re.search(r"embedrt serve needs the serve extra \((starlette|fastapi|uvicorn|prometheus_client) is missing\): "
                     r"pip install 'embedrt\[serve\]'", result.stderr), result.stderr


def test_import_embedrt_and_its_help_import_no_optional_extra():
    code = ("import sys, embedrt\nfrom embedrt.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted({m.partition('.')[0] for m in sys.modules}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    imported = set(json.loads(result.stdout.splitlines()[-1].replace("'", '"')))
    assert imported & set(EXTRA_OF_MODULE) == set()


def extra_requirements(extra, extras, seen=()):
    """The distribution names an extra installs, its `embedrt[...]` references followed."""
    names = set()
    for requirement in extras[extra]:
        name = re.match(r"[A-Za-z0-9_.-]+", requirement).group(0).lower().replace("_", "-")
        if name == "embedrt":
            for inner in re.search(r"\[(.*)\]", requirement).group(1).split(","):
                names |= extra_requirements(inner.strip(), extras, seen + (extra,)) if inner.strip() not in seen else set()
        else:
            names.add(name)
    return names


def installed_with(names):
    """Those distributions and all they require, as installed here (requirements only an extra of theirs asks for left out)."""
    found, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name in found:
            continue
        found.add(name)
        try:
            needs = requires(name) or []
        except PackageNotFoundError:
            continue
        todo += [re.match(r"[A-Za-z0-9_.-]+", r).group(0).lower().replace("_", "-") for r in needs if "extra ==" not in r]
    return found


def test_each_module_the_extras_table_names_is_installed_by_that_extra():
    extras = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    installed_by = packages_distributions()
    for module, extra in EXTRA_OF_MODULE.items():
        assert extra in extras, f"{module}: no extra {extra!r} in pyproject.toml"
        dists = {d.lower().replace("_", "-") for d in installed_by.get(module, ())}
        if not dists:
            continue  # not installed here: nothing to check it against
        assert dists & installed_with(extra_requirements(extra, extras)), f"{module} comes from {dists}, which the {extra} extra does not install"
