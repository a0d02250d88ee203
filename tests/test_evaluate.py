"""`embedrt evaluate`: labelled-data formats, quality on the real model, parity with PyTorch, an fp32-vs-int8 comparison."""

from __future__ import annotations

import json

import numpy as np
import pytest

from embedrt.cli import main
from embedrt.errors import InputError
from embedrt.evaluation.datasets import LabelledItems, RetrievalSet, StsPairs, read_dataset
from embedrt.evaluation.metrics import cosine_matrix, retrieval_scores, spearman
from embedrt.evaluation.parity import engine_parity, source_parity
from embedrt.evaluation.quality import evaluate_retrieval, evaluate_sts

EXAMPLE = "examples/labelled_sentences.csv"

STS_ROWS = [
    ("A man is playing a guitar.", "A man plays the guitar.", 5.0),
    ("A woman is slicing an onion.", "Someone is cutting an onion.", 4.6),
    ("The cat sleeps on the sofa.", "A cat is napping on the couch.", 4.4),
    ("A child is riding a bike.", "A kid rides a bicycle in the park.", 3.8),
    ("The stock market fell sharply today.", "Shares dropped on the exchange.", 3.5),
    ("A man is playing a guitar.", "A man is playing a piano.", 2.4),
    ("The cat sleeps on the sofa.", "The dog barks at the mailman.", 1.0),
    ("A woman is slicing an onion.", "The rocket launched into orbit.", 0.0),
    ("The stock market fell sharply today.", "She painted the fence green.", 0.0),
]

RETRIEVAL_ROWS = [
    ("how do I bake bread", "Knead the dough, let it rise, then bake it in a hot oven."),
    ("how do I bake bread", "Bread needs flour, water, yeast and salt."),
    ("who won the football match", "The home team won the match two goals to one."),
    ("will it rain tomorrow", "The forecast says heavy rain is expected tomorrow."),
]


def _write_csv(path, header, rows):
    import csv

    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def int8_dir(minilm_int8_dir):
    """The bundled model's int8 export (the shared session fixture): what `evaluate --compare` is for."""
    return minilm_int8_dir


# -- formats -----------------------------------------------------------------------------------------
def test_the_task_is_chosen_from_the_columns(tmp_path):
    sts = _write_csv(tmp_path / "sts.csv", ["text1", "text2", "score"], STS_ROWS[:2])
    assert read_dataset(sts) == ("sts", StsPairs([r[0] for r in STS_ROWS[:2]], [r[1] for r in STS_ROWS[:2]], [5.0, 4.6]))
    task, data = read_dataset(EXAMPLE)
    assert task == "classification" and isinstance(data, LabelledItems) and len(data.texts) == 24 and len(set(data.labels)) == 4
    jsonl = tmp_path / "r.jsonl"
    jsonl.write_text("\n".join(json.dumps({"query": q, "document": d}) for q, d in RETRIEVAL_ROWS) + "\n", encoding="utf-8")
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("An unrelated note about taxes.\n\nThe home team won the match two goals to one.\n", encoding="utf-8")
    task, data = read_dataset(jsonl, corpus=corpus)
    assert task == "retrieval" and isinstance(data, RetrievalSet)
    assert data.queries == ["how do I bake bread", "who won the football match", "will it rain tomorrow"]
    assert len(data.documents) == 5  # 4 from the pairs, 1 new from the corpus (the repeated one is not added twice)
    assert data.relevant == [{0, 1}, {2}, {3}]
    texts = tmp_path / "texts.txt"
    texts.write_text("one\n\ntwo\n", encoding="utf-8")
    assert read_dataset(texts)[0] == "parity" and read_dataset(texts)[1].texts == ["one", "two"]


@pytest.mark.parametrize(
    "content, name, message",
    [
        ("", "empty.csv", "the file is empty"),
        ("text1,text2\nA,B\n", "sts.csv", "match no task"),
        ("text1,text2,score\nA,B,high\n", "sts.csv", "score 'high', not a number"),
        ("text,label\nA,x\nB,\n", "cls.csv", r"row 3: no 'label' value"),
        ("text,label\n", "cls.csv", "a header but no rows"),
        ('{"text": "a", "label": "x"}\nnot json\n', "cls.jsonl", r"cls.jsonl:2: not valid JSON"),
        ("a\tb\n", "t.xlsx", "use a .csv, .tsv or .jsonl file"),
    ],
)
def test_bad_labelled_files_are_refused_naming_the_file_and_the_problem(tmp_path, content, name, message):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=message):
        read_dataset(path, task="sts" if name == "t.xlsx" else None)


def test_a_task_the_columns_do_not_fit_is_refused(tmp_path):
    with pytest.raises(InputError, match="no 'query' column"):
        read_dataset(EXAMPLE, task="retrieval")
    with pytest.raises(InputError, match="--corpus adds documents to a retrieval task only"):
        read_dataset(EXAMPLE, corpus=EXAMPLE)


# -- quality on the real model -----------------------------------------------------------------------
def test_sts_spearman_is_that_of_the_models_own_cosines(minilm, tmp_path):
    data = read_dataset(_write_csv(tmp_path / "sts.csv", ["text1", "text2", "score"], STS_ROWS))[1]
    result = evaluate_sts(minilm.embed, data)
    a, b = minilm.embed(data.text1), minilm.embed(data.text2)
    assert result["spearman"] == pytest.approx(spearman((a * b).sum(axis=1), data.scores), abs=1e-9)
    assert result["spearman"] > 0.8  # paraphrases above related above unrelated


def test_retrieval_metrics_are_those_of_cosine_search_with_the_model(minilm, tmp_path):
    data = read_dataset(_write_csv(tmp_path / "r.csv", ["query", "document"], RETRIEVAL_ROWS))[1]
    result = evaluate_retrieval(minilm.embed, data)
    expected = retrieval_scores(cosine_matrix(minilm.embed(data.queries), minilm.embed(data.documents)), data.relevant)
    assert {k: result[k] for k in expected} == pytest.approx(expected)
    assert result["recall@1"] == pytest.approx((0.5 + 1 + 1) / 3)  # bread has 2 relevant documents: top 1 holds one
    assert result["mrr@10"] == 1.0 and result["recall@5"] == 1.0


def test_cli_classification_on_the_example_reports_knn_accuracy(minilm_dir, capsys):
    assert main(["evaluate", str(minilm_dir), "--data", EXAMPLE, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    scores = result[str(minilm_dir)]
    assert result["task"] == "classification" and scores["items"] == 24 and scores["labels"] == 4
    assert scores["knn_accuracy@5"] >= 0.9


# -- parity ------------------------------------------------------------------------------------------
def test_export_against_its_pytorch_source_on_the_users_texts(minilm):
    texts = ["A first text.", "Une phrase en français.", "東京は日本の首都です。", "word " * 400, "", "cats and dogs"]
    report = source_parity(minilm, texts)
    assert report["passed"] and report["precision"] == "fp32" and report["n"] == len(texts)
    assert report["min_cosine"] > 0.99999 and report["max_abs"] < 1e-4
    assert report["neighbour_agreement@5"] == 1.0


def test_cli_parity_reads_a_text_file_and_prints_the_gate(minilm_dir, tmp_path, capsys):
    texts = tmp_path / "mine.txt"
    texts.write_text("first text\nsecond text\nthird one here\n", encoding="utf-8")
    assert main(["evaluate", str(minilm_dir), "--data", str(texts)]) == 0
    out = capsys.readouterr().out
    assert "against pytorch fp32 (source) on 3 inputs (fp32 gate: passed)" in out
    assert "min_cosine" in out and "neighbour_agreement@2" in out


def test_int8_against_fp32_shows_what_the_faster_engine_costs(minilm_dir, int8_dir, capsys):
    assert main(["evaluate", str(minilm_dir), "--data", EXAMPLE, "--compare", str(int8_dir), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    fp32, int8, parity = result[str(minilm_dir)], result[str(int8_dir)], result["parity"]
    assert parity["precision"] == "int8" and parity["n"] == 24
    assert 0.9 < parity["min_cosine"] < 0.99999  # int8 moves the vectors, a little
    assert abs(int8["knn_accuracy@5"] - fp32["knn_accuracy@5"]) <= 2 / 24
    assert main(["evaluate", str(minilm_dir), "--data", EXAMPLE, "--compare", str(int8_dir)]) == 0
    table = capsys.readouterr().out
    assert "change" in table and "int8 gate" in table


def test_engine_parity_refuses_exports_of_different_dimensions(minilm):
    class Other:
        path = "other"
        manifest = minilm.manifest

        @staticmethod
        def embed(texts):
            return np.zeros((len(texts), 8), dtype=np.float32)

    with pytest.raises(Exception, match="384-d vectors and other 8-d"):
        engine_parity(minilm, Other(), ["a", "b"])


def test_embed_takes_the_text_column_of_a_csv_as_the_walk_through_does(minilm, minilm_dir, tmp_path):
    out = tmp_path / "v.npy"
    assert main(["embed", str(minilm_dir), "--input", EXAMPLE, "--output", str(out)]) == 0
    data = read_dataset(EXAMPLE)[1]
    np.testing.assert_allclose(np.load(out), minilm.embed(data.texts), atol=1e-6)


def test_an_image_export_is_scored_on_the_images_of_an_image_column(resnet18, resnet18_dir, tmp_path, capsys):
    from image_samples import photo, write

    from embedrt.evaluation.metrics import knn_accuracy

    names = ["astronaut", "coffee", "chelsea", "rocket", "camera", "cat"]
    labels = ["person", "object", "animal", "object", "person", "animal"]
    (tmp_path / "img").mkdir()
    for name in names:
        write(tmp_path / "img" / f"{name}.png", photo(name))
    table = tmp_path / "images.csv"
    table.write_text("image,label\n" + "".join(f"img/{n}.png,{l}\n" for n, l in zip(names, labels)), encoding="utf-8")
    assert main(["evaluate", str(resnet18_dir), "--data", str(table), "--k", "1", "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)[str(resnet18_dir)]
    vectors = resnet18.embed([str(tmp_path / "img" / f"{n}.png") for n in names])
    assert scores["knn_accuracy@1"] == pytest.approx(knn_accuracy(vectors, labels, k=1))
    assert main(["evaluate", str(resnet18_dir), "--data", str(table), "--task", "sts"]) == 2
    assert "an image export is evaluated on classification or parity" in capsys.readouterr().err
