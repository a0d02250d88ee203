"""Long texts: chunked embedding as token windows, their aggregation, and a 100,000-word document in bounded memory."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import embedrt
from embedrt.errors import InputError
from embedrt.runtime.text.chunking import WindowTokenizer, window_ranges
from embedrt.sample_text import sample_document


@pytest.fixture(scope="module")
def long_doc() -> str:
    return sample_document(1500, seed=3)


def test_window_ranges_cut_at_word_starts_and_overlap_by_the_stride():
    #               0  1  2  3  4  5  6  7  8  9  10    tokens; True where a word starts
    starts = np.array([1, 0, 0, 1, 0, 1, 1, 0, 0, 0, 1], dtype=bool)
    # content 4: [0,4) would cut word 3-4, so it ends at 3; next start min(0+3, 3)=3 (a word start)
    # [3,7) ends at 7, inside word 6-9 -> back to 6; next start min(3+3, 6)=6
    # [6,10) ends inside word 6-9, no word start after 6 within it -> the long word is split at 10
    # next start 9 snaps back to 6? no: only word starts after 6 count, so it stays 9; [9,11) reaches the end
    assert window_ranges(starts, content=4, stride=3) == [(0, 3), (3, 6), (6, 10), (9, 11)]


def test_window_ranges_cover_a_text_shorter_than_one_window_with_one_range():
    assert window_ranges(np.ones(3, dtype=bool), content=10, stride=5) == [(0, 3)]
    assert window_ranges(np.zeros(0, dtype=bool), content=10, stride=5) == [(0, 0)]


def test_chunked_document_vector_is_the_token_weighted_mean_of_its_windows_embedded_one_by_one(minilm, long_doc):
    vectors, windows = minilm.embed([long_doc], long_text="chunk", return_windows=True)
    w = windows[0]
    assert len(w.spans) > 5
    assert (w.token_counts <= minilm.max_length).all()
    one_by_one = np.concatenate([minilm.embed([long_doc[a:b]]) for a, b in w.spans])
    np.testing.assert_allclose(w.vectors, one_by_one, atol=2e-5)
    # Re-tokenising each window's text gives back its token count: no word piece was cut from its word.
    assert [len(minilm.tokenizer.encode(long_doc[a:b]).ids) for a, b in w.spans] == list(w.token_counts)
    mean = (one_by_one.astype(np.float64) * w.token_counts[:, None]).sum(axis=0) / w.token_counts.sum()
    expected = mean / np.linalg.norm(mean)  # the model's own vectors are normalised (manifest.normalize)
    assert minilm.manifest.normalize
    np.testing.assert_allclose(vectors[0], expected, atol=2e-5)
    assert vectors[0] @ expected > 0.99999


@pytest.mark.parametrize("family", ["minilm-unicode", "roberta-bytelevel"])
def test_window_spans_are_character_offsets_that_give_back_each_windows_tokens(family, minilm, tiny_roberta_dir):
    if family == "minilm-unicode":
        embedder = minilm
        doc = " ".join(["naïve café résumé 東京は日本の首都です 🚀🔥 Ünïcödé façade"] * 150)
    else:
        embedder = embedrt.TextEmbedder(tiny_roberta_dir)
        doc = sample_document(1200, seed=5)
    vectors, windows = embedder.embed([doc], long_text="chunk", return_windows=True)
    w = windows[0]
    assert len(w.spans) > 3 and w.spans[-1, 1] == len(doc)
    mean = (w.vectors.astype(np.float64) * w.token_counts[:, None]).sum(axis=0) / w.token_counts.sum()
    if family == "roberta-bytelevel":  # a plain HF dir: mean pooling, vectors not normalised, and neither is their mean
        assert not embedder.manifest.normalize
        np.testing.assert_allclose(vectors[0], mean, rtol=1e-5, atol=1e-6)
    # A byte-level BPE token carries the space before its word ("Ġword"), outside the reported span.
    with_space = family == "roberta-bytelevel"
    texts = [doc[a - 1 if with_space and a > 0 and doc[a - 1] == " " else a : b] for a, b in w.spans]
    assert [len(embedder.tokenizer.encode(t).ids) for t in texts] == list(w.token_counts)
    np.testing.assert_allclose(w.vectors, np.concatenate([embedder.embed([t]) for t in texts]), atol=2e-5)


def test_chunked_windows_overlap_cover_the_whole_document_and_start_between_words(minilm, long_doc):
    _, windows = minilm.embed([long_doc], long_text="chunk", return_windows=True)
    spans = windows[0].spans
    assert spans[0, 0] == 0 and spans[-1, 1] == len(long_doc.rstrip())
    assert (spans[1:, 0] < spans[:-1, 1]).all()  # every window overlaps the one before
    # BERT's pre-tokenizer splits at whitespace and at punctuation: a window starts at one of those, never mid-word
    assert all(not (long_doc[a - 1].isalnum() and long_doc[a].isalnum()) for a in spans[1:, 0])


def test_window_and_stride_set_the_number_and_size_of_windows(minilm, long_doc):
    _, default = minilm.embed([long_doc], long_text="chunk", return_windows=True)
    _, small = minilm.embed([long_doc], long_text="chunk", window=64, stride=31, return_windows=True)
    assert small[0].token_counts.max() <= 64
    tokens = len(WindowTokenizer(minilm.tokenizer).content_tokens(long_doc)[0])
    # one window per stride of content, give or take the word-boundary snapping
    assert abs(len(small[0].spans) - tokens / 31) < 0.2 * tokens / 31
    assert len(small[0].spans) > 3 * len(default[0].spans)


def test_short_texts_get_the_same_vectors_in_chunk_and_truncate_mode(minilm):
    texts = ["A short sentence.", "", "naïve café — 東京", "Another one, a little longer than the first."]
    np.testing.assert_array_equal(minilm.embed(texts, long_text="chunk"), minilm.embed(texts))


def test_chunk_mode_mixes_long_and_short_texts_in_the_callers_order(minilm, long_doc):
    texts = ["first short text", long_doc, "third", long_doc[: len(long_doc) // 2]]
    mixed = minilm.embed(texts, long_text="chunk")
    alone = np.concatenate([minilm.embed([t], long_text="chunk") for t in texts])
    np.testing.assert_allclose(mixed, alone, atol=2e-5)
    assert not np.allclose(mixed[1], minilm.embed([long_doc])[0], atol=1e-3)  # truncation would only see the start


def test_truncate_mode_keeps_counting_and_refusing_long_texts(minilm, long_doc):
    before = minilm.truncated_total
    _, windows = minilm.embed([long_doc, "short"], return_windows=True)
    assert minilm.truncated_total == before + 1
    assert len(windows[0].spans) == 1 and windows[0].token_counts[0] == minilm.max_length
    assert windows[0].spans[0, 1] < len(long_doc)
    with pytest.raises(InputError, match=r"texts\[0\] is longer"):
        minilm.embed([long_doc], truncate=False)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"long_text": "split"}, "long_text='split' is not one of truncate, chunk"),
        ({"long_text": "chunk", "window": 2}, "window=2"),
        ({"long_text": "chunk", "window": 1000}, "window=1000"),
        ({"long_text": "chunk", "window": 64, "stride": 63}, "stride=63"),
        ({"long_text": "chunk", "stride": 0}, "stride=0"),
        ({"window": 64}, "window and stride apply to long_text='chunk' only"),
    ],
)
def test_bad_long_text_options_are_refused_naming_the_option(minilm, options, message):
    with pytest.raises(InputError, match=message.replace("[", r"\[")):
        minilm.embed(["some text " * 300], **options)


def test_cli_embed_long_text_chunk_writes_the_chunked_vectors(minilm, minilm_dir, long_doc, tmp_path):
    from embedrt.cli import main

    (tmp_path / "doc.txt").write_text(long_doc.replace("\n", " ") + "\nshort line\n", encoding="utf-8")
    out = tmp_path / "v.npy"
    assert main(["embed", str(minilm_dir), "--input", str(tmp_path / "doc.txt"), "--long-text", "chunk", "--output", str(out)]) == 0
    expected = minilm.embed([long_doc.replace("\n", " "), "short line"], long_text="chunk")
    np.testing.assert_allclose(np.load(out), expected, atol=1e-6)
    assert main(["embed", str(minilm_dir), "x", "--window", "64"]) == 2


_MEMORY_SCRIPT = textwrap.dedent(
    """
    import json, resource, sys, time
    import numpy as np
    import embedrt
    from embedrt.sample_text import sample_document

    def rss_mb():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    embedder = embedrt.TextEmbedder(sys.argv[1])
    embedder.embed([sample_document(12000, seed=1)], long_text="chunk")  # fills whole batches: ORT's arena at full size
    report = {"rss_warm_mb": rss_mb()}
    for words in (10000, 100000):
        doc = sample_document(words)
        start = time.perf_counter()
        vectors, windows = embedder.embed([doc], long_text="chunk", return_windows=True)
        report[f"seconds_{words}"] = time.perf_counter() - start
        report[f"rss_after_{words}_mb"] = rss_mb()
        report[f"windows_{words}"] = len(windows[0].spans)
        report[f"norm_{words}"] = float(np.linalg.norm(vectors[0]))
        report[f"covered_{words}"] = int(windows[0].spans[-1, 1]) == len(doc)
    print(json.dumps(report))
    """
)


@pytest.fixture(scope="module")
def tiny_bert_dir(tmp_path_factory, minilm_source):
    """A 2-layer random BERT (hidden 64, max length 128) with the bundled WordPiece tokenizer: fast enough for 100k words."""
    from random_models import random_bert

    from embedrt.export import export_text

    root = tmp_path_factory.mktemp("tiny")
    source = random_bert(root / "source", minilm_source, pooling="mean", normalize=True)
    return export_text(source, root / "export")


def test_chunking_gives_the_same_vectors_when_the_runtime_pools_instead_of_the_graph(tiny_bert_dir, tmp_path):
    from embedrt.export import export_text
    from embedrt.manifest import read_manifest

    unpooled = export_text(read_manifest(tiny_bert_dir).source["path"], tmp_path / "unpooled", pool_in_graph=False)
    doc = sample_document(3000, seed=7)
    texts = [doc, "a short one", doc[:2000]]
    in_graph = embedrt.TextEmbedder(tiny_bert_dir).embed(texts, long_text="chunk")
    in_numpy = embedrt.TextEmbedder(unpooled).embed(texts, long_text="chunk")
    np.testing.assert_allclose(in_numpy, in_graph, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(in_numpy, axis=1), 1.0, atol=1e-6)


@pytest.fixture(scope="module")
def tiny_roberta_dir(tmp_path_factory):
    """A 2-layer random RoBERTa with a byte-level BPE tokenizer (<s> ... </s>, max length 128)."""
    from random_models import random_roberta

    from embedrt.export import export_text

    root = tmp_path_factory.mktemp("tiny-roberta")
    return export_text(random_roberta(root / "source"), root / "export")


def test_a_100000_word_document_embeds_in_bounded_memory(tiny_bert_dir):
    run = subprocess.run([sys.executable, "-c", _MEMORY_SCRIPT, str(tiny_bert_dir)], capture_output=True, text=True, check=True)
    report = json.loads(run.stdout.strip().splitlines()[-1])
    # 10x the words: about 10x the windows, and peak memory grows by no more than a few tens of MB
    # (the whole document's tokenizer encoding alone would be ~60 MB, its token outputs ~90 MB).
    assert 8 < report["windows_100000"] / report["windows_10000"] < 12  # token density varies along the prose
    assert report["rss_after_100000_mb"] - report["rss_after_10000_mb"] < 40, report
    assert report["covered_100000"] and abs(report["norm_100000"] - 1) < 1e-5
    print(json.dumps(report))
