"""Stage 1 of text: the fast tokenizer as the runtime sets it up (no padding, truncation at max_length)."""

import pytest


def test_tokenize_256_mixed_sentences(benchmark, embedder, sentences):
    encoded = benchmark(embedder.tokenize, sentences)
    assert len(encoded.ids) == 256


def test_tokenize_one_query(benchmark, embedder):
    encoded = benchmark(embedder.tokenize, ["how do I read a file line by line in python"])
    assert len(encoded.ids) == 1


@pytest.mark.parametrize("tokens", [128, 256])
def test_tokenize_documents(benchmark, embedder, minilm_export, tokens):
    from embedrt.bench.workloads import texts_of_tokens

    docs = texts_of_tokens(minilm_export / "tokenizer.json", 32, tokens)
    encoded = benchmark(embedder.tokenize, docs)
    assert int(encoded.lengths.max()) == tokens
