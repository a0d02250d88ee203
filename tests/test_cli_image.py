"""`embedrt export image` and `embedrt embed --images` as a user runs them: a real process, real files."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

import embedrt
from image_samples import photo, write


def embedrt_cli(*args):
    return subprocess.run([sys.executable, "-m", "embedrt.cli", *map(str, args)], capture_output=True, text=True)


def image_tree(tmp_path):
    """imgs/{astronaut.png, coffee.jpg, sub/chelsea.png} and a list file naming rocket.png relative to itself."""
    imgs = tmp_path / "imgs"
    (imgs / "sub").mkdir(parents=True)
    write(imgs / "astronaut.png", photo("astronaut"))
    write(imgs / "coffee.jpg", photo("coffee"), "JPEG", quality=90)
    write(imgs / "sub" / "chelsea.png", photo("chelsea"))
    (imgs / "notes.md").write_text("not an image suffix: ignored in a directory")
    write(tmp_path / "rocket.png", photo("rocket"))
    (tmp_path / "list.txt").write_text("rocket.png\n\n")
    return imgs, [imgs / "astronaut.png", imgs / "coffee.jpg", imgs / "sub" / "chelsea.png", tmp_path / "rocket.png"]


def test_export_image_then_embed_a_directory_and_a_list_round_trip(tmp_path, resnet18):
    out = tmp_path / "unit"
    result = embedrt_cli("export", "image", "resnet18", "--random-init", "--normalize", "--out", out)
    assert result.returncode == 0, result.stderr
    imgs, paths = image_tree(tmp_path)
    result = embedrt_cli("embed", out, "--images", imgs, tmp_path / "list.txt", "--output", tmp_path / "v.jsonl")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in (tmp_path / "v.jsonl").read_text().splitlines()]
    assert [r["path"] for r in rows] == [str(p) for p in paths]
    vectors = np.array([r["embedding"] for r in rows])
    np.testing.assert_allclose(vectors, embedrt.ImageEmbedder(out).embed(paths), atol=1e-6)
    raw = resnet18.embed(paths)  # same architecture and seed, without --normalize
    np.testing.assert_allclose(vectors, raw / np.linalg.norm(raw, axis=1, keepdims=True), atol=1e-5)


def test_embed_images_to_npy_keeps_the_argument_order(resnet18_dir, resnet18, tmp_path):
    _, paths = image_tree(tmp_path)
    order = [paths[2], paths[0], paths[3]]
    result = embedrt_cli("embed", resnet18_dir, "--images", *order, "--output", tmp_path / "v.npy")
    assert result.returncode == 0, result.stderr
    np.testing.assert_allclose(np.load(tmp_path / "v.npy"), resnet18.embed(order), atol=1e-6)


def test_a_bad_image_exits_2_naming_it_and_writes_nothing(resnet18_dir, tmp_path):
    _, paths = image_tree(tmp_path)
    broken = tmp_path / "broken.png"
    broken.write_bytes(paths[0].read_bytes()[:3000])
    result = embedrt_cli("embed", resnet18_dir, "--images", paths[0], broken, "--output", tmp_path / "v.npy")
    assert result.returncode == 2
    assert f"images[1] {broken}: truncated or corrupt" in result.stderr
    assert not (tmp_path / "v.npy").exists()


def test_on_error_skip_writes_the_good_images_and_reports_the_bad(resnet18_dir, tmp_path):
    _, paths = image_tree(tmp_path)
    missing = tmp_path / "missing.jpg"
    result = embedrt_cli("embed", resnet18_dir, "--images", paths[0], missing, paths[1], "--on-error", "skip", "--output", tmp_path / "v.jsonl")
    assert result.returncode == 0, result.stderr
    assert f"skipped images[1] {missing}: no such file" in result.stderr
    side = [json.loads(line) for line in (tmp_path / "v.jsonl.skipped.jsonl").read_text().splitlines()]
    assert [(r["row"], r["path"]) for r in side] == [(1, str(missing))] and "no such file" in side[0]["reason"]
    assert [json.loads(line)["path"] for line in (tmp_path / "v.jsonl").read_text().splitlines()] == [str(paths[0]), str(paths[1])]


def test_many_images_show_a_progress_bar(resnet18_dir, tmp_path):
    rng = np.random.default_rng(0)
    for i in range(40):
        write(tmp_path / f"{i:02d}.png", rng.integers(0, 256, (40, 60, 3), dtype=np.uint8))
    result = embedrt_cli("embed", resnet18_dir, "--images", tmp_path, "--output", tmp_path / "v.npy")
    assert result.returncode == 0, result.stderr
    assert "40/40" in result.stderr and "image" in result.stderr
    assert np.load(tmp_path / "v.npy").shape == (40, 512)


def test_export_image_without_weights_or_random_init_exits_2(tmp_path):
    result = embedrt_cli("export", "image", "resnet50", "--out", tmp_path / "out")
    assert result.returncode == 2 and "--random-init" in result.stderr
    assert not (tmp_path / "out").exists()


def test_images_with_a_text_export_exit_2(minilm_dir, tmp_path):
    _, paths = image_tree(tmp_path)
    result = embedrt_cli("embed", minilm_dir, "--images", paths[0])
    assert result.returncode == 2 and "needs an image export" in result.stderr


def test_embed_a_directory_to_parquet_with_each_path_beside_its_vector(resnet18_dir, resnet18, tmp_path):
    import pyarrow.parquet as pq

    imgs, paths = image_tree(tmp_path)
    result = embedrt_cli("embed", resnet18_dir, "--images", imgs, "--output", tmp_path / "v.parquet", "--chunk-rows", 2)
    assert result.returncode == 0, result.stderr
    table = pq.read_table(tmp_path / "v.parquet")
    assert table.column_names == ["path", "embedding"]
    assert table.column("path").to_pylist() == [str(p) for p in paths[:3]]
    vectors = table.column("embedding").combine_chunks().flatten().to_numpy().reshape(3, -1)
    np.testing.assert_allclose(vectors, resnet18.embed(paths[:3]), atol=1e-6)
