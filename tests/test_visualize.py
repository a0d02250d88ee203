"""`embedrt visualize`: 2-D reductions that keep separated labels apart, PNG/HTML output, and clear errors for bad inputs."""

from __future__ import annotations

import numpy as np
import pytest

from embedrt.cli import main
from embedrt.errors import InputError
from embedrt.visualization.reduction import reduce_to_2d, tsne_perplexity, umap_neighbours

EXAMPLE = "examples/labelled_sentences.csv"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def nearest_centroid_accuracy(coords: np.ndarray, labels) -> float:
    """Share of points whose nearest label centroid (in the 2-D picture) is their own label's."""
    labels = np.asarray(labels)
    names = sorted(set(labels))
    centroids = np.stack([coords[labels == name].mean(axis=0) for name in names])
    nearest = np.argmin(((coords[:, None, :] - centroids[None]) ** 2).sum(axis=2), axis=1)
    return float(np.mean(np.asarray(names)[nearest] == labels))


@pytest.fixture
def clusters(tmp_path):
    """Three well-separated Gaussian clusters in 32-d, as a .npy and a labels file."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 32)) * 5
    vectors = np.concatenate([c + rng.normal(size=(10, 32)) for c in centres]).astype(np.float32)
    labels = [name for name in ("red", "green", "blue") for _ in range(10)]
    np.save(tmp_path / "vectors.npy", vectors)
    (tmp_path / "labels.txt").write_text("\n".join(labels) + "\n", encoding="utf-8")
    return tmp_path / "vectors.npy", tmp_path / "labels.txt", labels


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_precomputed_vectors_with_separated_labels_stay_separated_in_2d(clusters, tmp_path, method):
    vectors, labels_file, labels = clusters
    out, coords_file = tmp_path / f"{method}.png", tmp_path / f"{method}.npy"
    assert main(["visualize", "--input", str(vectors), "--labels", str(labels_file), "--method", method, "--out", str(out), "--coords", str(coords_file)]) == 0
    assert out.read_bytes()[:8] == PNG_MAGIC and out.stat().st_size > 5000
    coords = np.load(coords_file)
    assert coords.shape == (30, 2)
    assert nearest_centroid_accuracy(coords, labels) == 1.0
    from sklearn.metrics import silhouette_score

    assert silhouette_score(coords, labels) > 0.5


@pytest.mark.slow
def test_umap_keeps_separated_labels_apart(clusters):
    vectors, _, labels = clusters
    coords = reduce_to_2d(np.load(vectors), "umap")
    assert coords.shape == (30, 2) and nearest_centroid_accuracy(coords, labels) == 1.0


def test_the_same_input_gives_the_same_picture(clusters):
    vectors = np.load(clusters[0])
    np.testing.assert_array_equal(reduce_to_2d(vectors, "tsne"), reduce_to_2d(vectors, "tsne"))


def test_embedded_sentences_of_four_topics_separate_in_the_tsne_picture(minilm_dir, tmp_path):
    import csv

    out, coords_file = tmp_path / "topics.png", tmp_path / "topics.npy"
    assert main(["visualize", str(minilm_dir), "--input", EXAMPLE, "--method", "tsne", "--out", str(out), "--coords", str(coords_file)]) == 0
    labels = [row["label"] for row in csv.DictReader(open(EXAMPLE, encoding="utf-8"))]
    assert out.read_bytes()[:8] == PNG_MAGIC
    assert nearest_centroid_accuracy(np.load(coords_file), labels) >= 0.9


def test_html_output_has_one_hoverable_point_per_input_with_its_text_escaped(minilm_dir, tmp_path):
    table = tmp_path / "items.jsonl"
    table.write_text('{"text": "fish & chips <b>", "topic": "food"}\n{"text": "pasta", "topic": "food"}\n{"text": "goal!", "topic": "sport"}\n', encoding="utf-8")
    out = tmp_path / "plot.html"
    assert main(["visualize", str(minilm_dir), "--input", str(table), "--labels", "topic", "--method", "pca", "--out", str(out)]) == 0
    page = out.read_text(encoding="utf-8")
    assert page.count("<circle") == 3
    assert "<title>food: fish &amp; chips &lt;b&gt;</title>" in page and "sport" in page


def test_perplexity_and_neighbours_adapt_to_the_number_of_points():
    assert tsne_perplexity(1000) == 30.0 and tsne_perplexity(31) == 10.0 and tsne_perplexity(5) == 2.0
    assert umap_neighbours(1000) == 15 and umap_neighbours(6) == 5


# -- bad inputs --------------------------------------------------------------------------------------
def _run_error(args, capsys) -> str:
    assert main(["visualize", *args]) == 2
    return capsys.readouterr().err


def test_an_empty_input_file_is_refused(minilm_dir, tmp_path, capsys):
    for name in ("empty.csv", "empty.txt"):
        (tmp_path / name).write_text("", encoding="utf-8")
        err = _run_error([str(minilm_dir), "--input", str(tmp_path / name), "--out", str(tmp_path / "p.png")], capsys)
        assert "the file is empty" in err and name in err
    assert not (tmp_path / "p.png").exists()


def test_a_missing_labels_column_is_refused_naming_the_columns(minilm_dir, tmp_path, capsys):
    err = _run_error([str(minilm_dir), "--input", EXAMPLE, "--labels", "topic", "--out", str(tmp_path / "p.png")], capsys)
    assert "--labels topic: not a column of" in err and "found text, label" in err
    err = _run_error([str(minilm_dir), "--input", EXAMPLE, "--column", "sentence", "--out", str(tmp_path / "p.png")], capsys)
    assert "no 'sentence' column" in err


def test_labels_of_another_length_are_refused(clusters, tmp_path, capsys):
    vectors, _, labels = clusters
    short = tmp_path / "short.txt"
    short.write_text("\n".join(labels[:-3]), encoding="utf-8")
    err = _run_error(["--input", str(vectors), "--labels", str(short), "--out", str(tmp_path / "p.png")], capsys)
    assert "27 label(s) for 30 input(s)" in err


def test_an_unknown_method_is_refused(clusters, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["visualize", "--input", str(clusters[0]), "--method", "mds", "--out", str(tmp_path / "p.png")])
    assert "invalid choice: 'mds'" in capsys.readouterr().err
    with pytest.raises(InputError, match="--method 'mds' is not one of tsne, umap, pca"):
        reduce_to_2d(np.load(clusters[0]), "mds")


def test_too_few_points_for_the_method_are_refused(tmp_path, capsys):
    np.save(tmp_path / "four.npy", np.eye(4, 8, dtype=np.float32))
    err = _run_error(["--input", str(tmp_path / "four.npy"), "--method", "tsne", "--out", str(tmp_path / "p.png")], capsys)
    assert "--method tsne needs at least 5 points, got 4" in err
    assert main(["visualize", "--input", str(tmp_path / "four.npy"), "--method", "pca", "--out", str(tmp_path / "p.png")]) == 0


def test_bad_outputs_and_model_arguments_are_refused_before_any_work(clusters, tmp_path, capsys):
    vectors = str(clusters[0])
    assert "use a .png or .html file name" in _run_error(["--input", vectors, "--out", str(tmp_path / "p.svg")], capsys)
    assert "does not exist" in _run_error(["--input", vectors, "--out", str(tmp_path / "no" / "p.png")], capsys)
    assert "leave MODEL out" in _run_error(["default", "--input", vectors, "--out", str(tmp_path / "p.png")], capsys)
    assert "give the MODEL" in _run_error(["--input", EXAMPLE, "--out", str(tmp_path / "p.png")], capsys)
    (tmp_path / "bad.npy").write_bytes(b"not an array")
    assert "not a readable .npy array" in _run_error(["--input", str(tmp_path / "bad.npy"), "--out", str(tmp_path / "p.png")], capsys)


def test_an_image_export_draws_the_images_listed_in_the_image_column(resnet18, resnet18_dir, tmp_path):
    from image_samples import photo, write

    names = ["astronaut", "coffee", "chelsea", "rocket", "camera"]
    (tmp_path / "img").mkdir()
    for name in names:
        write(tmp_path / "img" / f"{name}.png", photo(name))
    table = tmp_path / "images.csv"
    table.write_text("image,label\n" + "".join(f"img/{n}.png,{'cat' if n == 'chelsea' else 'other'}\n" for n in names), encoding="utf-8")
    out, coords_file = tmp_path / "images.html", tmp_path / "coords.npy"
    assert main(["visualize", str(resnet18_dir), "--input", str(table), "--method", "pca", "--out", str(out), "--coords", str(coords_file)]) == 0
    vectors = resnet18.embed([str(tmp_path / "img" / f"{n}.png") for n in names])
    np.testing.assert_allclose(np.load(coords_file), reduce_to_2d(vectors, "pca"), atol=1e-4)
    page = out.read_text(encoding="utf-8")
    assert page.count("<circle") == 5 and "chelsea.png</title>" in page
