"""A wheel install of embedrt carries the Triton python-backend model sources (no source checkout needed)."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from embedrt.triton.repository import PYTHON_MODELS, model_sources

ROOT = Path(__file__).resolve().parents[1]


def test_a_source_checkout_reads_triton_models_itself():
    assert model_sources() == ROOT / "triton_models"
    assert sorted(p.name for p in (ROOT / "triton_models").iterdir() if p.is_dir()) == sorted(PYTHON_MODELS)


@pytest.mark.slow
def test_a_wheel_install_finds_the_sources_under_its_prefix_and_builds_a_repository(tmp_path, minilm_dir):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"), str(ROOT)],
                   check=True, capture_output=True)
    (wheel,) = (tmp_path / "dist").glob("embedrt-*.whl")
    prefix = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(prefix)], check=True)
    # pip --python installs into that venv alone (--prefix would also uninstall this environment's embedrt)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(prefix / "bin" / "python"), "install", "--quiet", "--no-deps", str(wheel)],
                   check=True, capture_output=True)
    # the wheel's embedrt first, this environment's dependencies after it (the editable embedrt here is only a .pth hook)
    site_packages = sysconfig.get_path("purelib", vars={"base": str(prefix)})
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([site_packages, sysconfig.get_path("purelib")])}
    script = (
        "import embedrt, sys; from embedrt.triton.repository import build_repository, model_sources; "
        "print(embedrt.__file__); print(model_sources()); "
        f"build_repository([{str(minilm_dir)!r}], {str(tmp_path / 'repo')!r}, name='minilm')"
    )
    shown = subprocess.run([str(prefix / "bin" / "python"), "-c", script], env=env, cwd=tmp_path, check=True,
                           capture_output=True, text=True).stdout.splitlines()
    assert Path(shown[0]).is_relative_to(prefix)  # the installed wheel, not this checkout
    assert Path(shown[1]) == prefix / "share" / "embedrt" / "triton_models"
    assert (tmp_path / "repo" / "minilm_encoder" / "1" / "model.py").read_bytes() == (ROOT / "triton_models" / "encoder" / "model.py").read_bytes()
