"""One pooling definition: numpy (runtime) == torch (in the graph) == sentence-transformers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sentence_transformers.models import Pooling

from embedrt.export.graph_pooling import pool_tokens
from embedrt.runtime.text.pooling import l2_normalize, pool

RNG = np.random.default_rng(0)
HIDDEN = RNG.normal(size=(4, 7, 16)).astype(np.float32)
MASK = np.array([[1] * 7, [1] * 3 + [0] * 4, [1] + [0] * 6, [1] * 5 + [0] * 2], dtype=np.int64)


@pytest.mark.parametrize("mode", ["mean", "cls", "max"])
def test_numpy_pooling_equals_sentence_transformers_and_the_graph(mode):
    st = Pooling(16, pooling_mode=mode)
    features = {"token_embeddings": torch.from_numpy(HIDDEN), "attention_mask": torch.from_numpy(MASK)}
    expected = st(features)["sentence_embedding"].numpy()
    np.testing.assert_allclose(pool(HIDDEN, MASK, mode), expected, atol=1e-6)
    np.testing.assert_allclose(pool_tokens(torch.from_numpy(HIDDEN), torch.from_numpy(MASK), mode).numpy(), expected, atol=1e-6)


def test_padding_positions_do_not_change_the_mean():
    changed = HIDDEN.copy()
    changed[1, 3:] = 1000.0
    np.testing.assert_allclose(pool(changed, MASK, "mean"), pool(HIDDEN, MASK, "mean"), atol=1e-6)
    np.testing.assert_allclose(pool(changed, MASK, "max"), pool(HIDDEN, MASK, "max"), atol=1e-6)


def test_l2_normalize_gives_unit_rows_and_keeps_a_zero_row_zero():
    vectors = np.array([[3.0, 4.0], [0.0, 0.0]], dtype=np.float32)
    np.testing.assert_allclose(l2_normalize(vectors), [[0.6, 0.8], [0.0, 0.0]])
