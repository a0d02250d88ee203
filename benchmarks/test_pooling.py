"""Stage 3: numpy pooling and normalisation (used when a graph was exported without pooling)."""

import numpy as np
import pytest

from embedrt.runtime.text.pooling import l2_normalize, pool


@pytest.fixture(scope="module")
def hidden():
    rng = np.random.default_rng(0)
    tokens = rng.standard_normal((32, 128, 384), dtype=np.float32)
    mask = (np.arange(128)[None, :] < rng.integers(8, 128, size=32)[:, None]).astype(np.int64)
    return tokens, mask


@pytest.mark.parametrize("mode", ["mean", "cls", "max"])
def test_pool_32x128x384(benchmark, hidden, mode):
    out = benchmark(pool, *hidden, mode)
    assert out.shape == (32, 384)


def test_l2_normalize_1024x384(benchmark):
    vectors = np.random.default_rng(0).standard_normal((1024, 384), dtype=np.float32)
    out = benchmark(l2_normalize, vectors)
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
