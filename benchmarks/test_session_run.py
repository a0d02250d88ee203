"""Stage 2: one ONNX Runtime session run of the bundled model, pooled in the graph, at typical shapes."""

import numpy as np
import pytest


@pytest.mark.parametrize("batch, length", [(1, 16), (1, 128), (32, 64), (8, 256)])
def test_session_run(benchmark, embedder, batch, length):
    names = embedder.backend.input_names
    feed = {name: np.ones((batch, length), dtype=np.int64) for name in names}
    if "token_type_ids" in feed:
        feed["token_type_ids"][:] = 0
    out = benchmark(embedder.backend.run, feed, ["sentence_embedding"])
    assert out["sentence_embedding"].shape == (batch, embedder.dim)


def test_embed_256_mixed_sentences_end_to_end(benchmark, embedder, sentences):
    vectors = benchmark.pedantic(embedder.embed, args=(sentences,), rounds=3, warmup_rounds=1)
    assert vectors.shape == (256, embedder.dim)
