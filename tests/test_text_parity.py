"""The real bundled model: embedrt against sentence-transformers, and the export's own parity record."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import numpy as np

from embedrt.sample_text import sample_sentences

SPECIAL = [
    "", " ", "\t\n", "x", "Hello world!", "naïve café — Straße", "東京は日本の首都です。", "北京欢迎你", "🚀🔥😀👍🏽",
    "Привет мир", "مرحبا بالعالم", "A" * 50, "word " * 400, "  leading and trailing spaces  ",
]


def varied_texts() -> list[str]:
    return SPECIAL + sample_sentences(200, min_words=1, max_words=300, seed=1)


def test_embed_matches_sentence_transformers_on_214_varied_texts(minilm, sentence_transformer):
    texts = varied_texts()
    ours = minilm.embed(texts)
    reference = sentence_transformer.encode(texts, normalize_embeddings=True, batch_size=32)
    cosine = (ours.astype(np.float64) * reference).sum(axis=1) / (
        np.linalg.norm(ours, axis=1) * np.linalg.norm(reference, axis=1)
    )
    assert ours.shape == (len(texts), 384) and ours.dtype == np.float32
    assert cosine.min() >= 0.99999, f"min cosine {cosine.min()} at text {cosine.argmin()}"


def test_embed_tokens_match_sentence_transformers_token_embeddings(minilm, sentence_transformer):
    texts = ["short", "a somewhat longer sentence with more word pieces in it", "word " * 300]
    ours = minilm.embed_tokens(texts)
    reference = sentence_transformer.encode(texts, output_value="token_embeddings")
    for mine, theirs in zip(ours, reference):
        assert mine.shape == tuple(theirs.shape)
        np.testing.assert_allclose(mine, theirs.numpy(), atol=1e-4)
    assert ours[2].shape == (256, 384)  # truncated at the manifest's 256, not tokenizer.json's 128


def test_results_come_back_in_the_callers_order_whatever_the_batching(minilm):
    texts = sample_sentences(60, min_words=1, max_words=120, seed=3)
    vectors = minilm.embed(texts)
    permutation = np.random.default_rng(0).permutation(len(texts))
    shuffled = minilm.embed([texts[i] for i in permutation])
    np.testing.assert_allclose(shuffled, vectors[permutation], atol=1e-5)
    one_by_one = np.stack([minilm.embed([t])[0] for t in texts[:8]])
    np.testing.assert_allclose(one_by_one, vectors[:8], atol=1e-5)


def test_a_tiny_token_budget_gives_the_same_vectors(minilm_dir, minilm):
    import embedrt

    texts = sample_sentences(20, seed=4)
    small = embedrt.TextEmbedder(minilm_dir, max_batch_tokens=64, max_batch_size=3)
    np.testing.assert_allclose(small.embed(texts), minilm.embed(texts), atol=1e-5)


def test_manifest_records_the_measured_parity_and_settings(minilm_dir):
    manifest = json.loads((minilm_dir / "embedrt.json").read_text())
    assert manifest["parity"]["passed"] is True
    assert manifest["parity"]["min_cosine"] >= 0.99999
    assert manifest["text"]["max_length"] == 256  # from sentence_bert_config.json
    assert manifest["pooling"] == "mean" and manifest["normalize"] is True
    assert [o["name"] for o in manifest["outputs"]] == ["token_embeddings", "sentence_embedding"]
    assert len(manifest["source"]["fingerprint"]) == 64


def test_concurrent_calls_from_threads_return_the_same_vectors(minilm):
    texts = sample_sentences(40, seed=5)
    expected = minilm.embed(texts)
    results, errors = {}, []

    def work(k: int) -> None:
        try:
            results[k] = minilm.embed(texts[k:] + texts[:k])
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for k, got in results.items():
        np.testing.assert_allclose(got, np.roll(expected, -k, axis=0), atol=1e-5)


def test_the_runtime_embeds_without_importing_torch(minilm_dir):
    code = (
        "import sys, embedrt\n"
        f"v = embedrt.load({str(minilm_dir)!r}).embed(['hello'])\n"
        "assert v.shape == (1, 384)\n"
        "print('torch' in sys.modules, 'transformers' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"
