"""`embedrt export module FACTORY --weights --inputs --out` as a user runs it: a real process, real files."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import torch

import embedrt
from feature_models import EXAMPLES

from two_tower.data import make_interactions  # noqa: E402 (feature_models puts it on sys.path)
from two_tower.model import ItemTower
from two_tower.train import item_vectors


def embedrt_cli(*args):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(EXAMPLES), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "embedrt.cli", *map(str, args)], capture_output=True, text=True, env=env)


def test_export_module_from_a_factory_weights_and_inputs_json(tmp_path):
    torch.manual_seed(5)
    tower = ItemTower().eval()
    torch.save(tower.state_dict(), tmp_path / "item_tower.pt")
    data = make_interactions()
    example = {k: v[:50].tolist() for k, v in data.item_rows().items()}
    inputs = {"inputs": [{"name": "item_id", "kind": "id"}, {"name": "category", "kind": "id", "num_embeddings": 20},
                         {"name": "price", "kind": "float"}], "example": example}
    (tmp_path / "inputs.json").write_text(json.dumps(inputs))
    result = embedrt_cli("export", "module", "two_tower.model:build_item_tower", "--weights", tmp_path / "item_tower.pt",
                         "--inputs", tmp_path / "inputs.json", "--out", tmp_path / "item")
    assert result.returncode == 0, result.stderr
    manifest = json.loads((tmp_path / "item" / "embedrt.json").read_text())
    assert manifest["source"]["factory"] == "two_tower.model:build_item_tower"
    assert manifest["source"]["fingerprint"] == hashlib.sha256((tmp_path / "item_tower.pt").read_bytes()).hexdigest()
    assert manifest["features"]["columns"][0]["num_embeddings"] == 500  # read from the item table
    with torch.no_grad():
        expected = item_vectors(tower, data.item_rows()).numpy()
    np.testing.assert_allclose(embedrt.load(tmp_path / "item").embed(data.item_rows()), expected, atol=1e-5)


def test_export_module_without_inputs_reads_the_module_declaration(tmp_path):
    result = embedrt_cli("export", "module", "two_tower.model:build_user_tower", "--out", tmp_path / "user", "--precision", "int8")
    assert result.returncode == 0, result.stderr
    manifest = json.loads((tmp_path / "user" / "embedrt.json").read_text())
    assert manifest["precision"] == "int8" and manifest["source"]["random_init"] is True
    assert [c["name"] for c in manifest["features"]["columns"]] == ["user_id", "history", "age", "activity"]


def test_weights_that_do_not_fit_the_factory_exit_2_naming_the_file(tmp_path):
    torch.save({"nope": torch.zeros(1)}, tmp_path / "bad.pt")
    result = embedrt_cli("export", "module", "two_tower.model:build_item_tower", "--weights", tmp_path / "bad.pt", "--out", tmp_path / "x")
    assert result.returncode == 2
    assert f"--weights {tmp_path / 'bad.pt'}: does not fit two_tower.model:build_item_tower" in result.stderr
    assert not (tmp_path / "x").exists()


def test_a_factory_that_cannot_be_imported_exits_2(tmp_path):
    result = embedrt_cli("export", "module", "no_such_pkg.towers:build", "--out", tmp_path / "x")
    assert result.returncode == 2 and "FACTORY 'no_such_pkg.towers:build': cannot import it" in result.stderr


BAD_MODULES = {
    "a factory that raises": ("import torch\n\ndef build():\n    raise ValueError('no config for the tower')\n",
                              ["calling build() raised ValueError: no config for the tower", "bad_tower.py:4"]),
    "a SyntaxError": ("import torch\n\ndef build(:\n    return None\n", ["bad_tower.py:3: a SyntaxError"]),
    "a module that raises at import": ("import torch\n\nSETTINGS = {}\nDIM = SETTINGS['dim']\n\ndef build():\n    return None\n",
                                       ["importing it raised KeyError: 'dim'", "bad_tower.py:4"]),
}


def test_a_bad_module_exits_2_naming_its_file_and_what_to_do(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    for case, (source, expected) in BAD_MODULES.items():
        (package / "bad_tower.py").write_text(source)
        result = subprocess.run([sys.executable, "-m", "embedrt.cli", "export", "module", "pkg.bad_tower:build", "--out", tmp_path / "x"],
                                capture_output=True, text=True, env=env)
        assert result.returncode == 2, (case, result.stderr)
        assert "Traceback" not in result.stderr, (case, result.stderr)
        assert f"FACTORY 'pkg.bad_tower:build': {package / 'bad_tower.py'}" in result.stderr, (case, result.stderr)
        assert all(e in result.stderr for e in expected) and "then run the command again" in result.stderr, (case, result.stderr)
        assert not (tmp_path / "x").exists()


NAN_TOWER = '''
import torch
from torch import nn


class NanTower(nn.Module):
    embedrt_inputs = [{"name": "item_id", "kind": "id", "num_embeddings": 10}, {"name": "price", "kind": "float"}]
    embedrt_example = {"item_id": [1, 2, 3], "price": [1.0, 4.0, 9.0]}

    def __init__(self):
        super().__init__()
        self.item = nn.Embedding(10, 4)

    def forward(self, item_id, price):
        return self.item(item_id) / (item_id[:, None] - 7).float().clamp(min=0)  # inf or nan for every id up to 7


def build():
    return NanTower()
'''


def test_a_forward_that_returns_nan_or_inf_is_refused_naming_the_row_not_the_precision(tmp_path):
    (tmp_path / "nan_tower.py").write_text(NAN_TOWER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-m", "embedrt.cli", "export", "module", "nan_tower:build", "--out", tmp_path / "x"],
                            capture_output=True, text=True, env=env)
    assert result.returncode == 2, result.stderr
    assert "nan_tower:build: the module's forward gives NaN or Inf for" in result.stderr, result.stderr
    assert "(first: row 0: item_id=0" in result.stderr and "precision" not in result.stderr, result.stderr
    assert not (tmp_path / "x").exists()
