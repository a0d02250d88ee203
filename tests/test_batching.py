"""The token-budget batcher: every input once, the budget kept, longest first."""

from __future__ import annotations

import numpy as np
import pytest

from embedrt.errors import EmbedrtError
from embedrt.runtime.batching import BATCH_OVERHEAD, batch_costs, plan_batches, restore_order


def test_every_input_appears_exactly_once_and_the_budget_holds():
    lengths = np.random.default_rng(0).integers(1, 300, size=1000)
    batches = plan_batches(lengths, max_batch_tokens=2048, max_batch_size=64)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(1000))
    for batch in batches:
        assert len(batch) <= 64
        assert len(batch) == 1 or len(batch) * lengths[batch].max() <= 2048


def test_batches_are_length_sorted_so_padding_is_small():
    lengths = np.random.default_rng(1).integers(1, 300, size=500)
    batches = plan_batches(lengths, max_batch_tokens=4096, max_batch_size=128)
    padded = sum(len(b) * lengths[b].max() for b in batches)
    assert padded / lengths.sum() < 1.2  # unsorted fixed-size batches of these lengths pad ~2x
    firsts = [lengths[b[0]] for b in batches]
    assert firsts == sorted(firsts, reverse=True)


def test_an_input_longer_than_the_budget_gets_a_batch_of_its_own():
    batches = plan_batches([10, 5000, 10], max_batch_tokens=100, max_batch_size=8)
    assert [b.tolist() for b in batches] == [[1], [0, 2]]


def test_unpadded_backends_are_charged_the_sum_of_lengths():
    lengths = [100, 10, 10, 10]
    assert len(plan_batches(lengths, max_batch_tokens=130, max_batch_size=8, padded=False)) == 1
    assert [b.tolist() for b in plan_batches(lengths, max_batch_tokens=130, max_batch_size=8, padded=True)] == [[0], [1, 2, 3]]


def test_one_long_input_is_not_padded_into_a_batch_of_short_ones():
    lengths = [100, 10, 10, 10, 10, 10, 10, 10]  # 8 x 100 fits the budget, but 7 x 90 padded tokens cost more than a run
    batches = plan_batches(lengths, max_batch_tokens=800, max_batch_size=8)
    assert [b.tolist() for b in batches] == [[0], [1, 2, 3, 4, 5, 6, 7]]


def test_inputs_of_one_length_fill_the_budget():
    batches = plan_batches([32] * 100, max_batch_tokens=768, max_batch_size=256)
    assert [len(b) for b in batches] == [24, 24, 24, 24, 4]


@pytest.mark.parametrize("seed", range(20))
def test_the_cut_is_the_cheapest_of_all_cuts(seed):
    """Against every way of cutting the sorted inputs (2^(n-1) of them): the padded cost plus a run's overhead is least."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 120, size=9)
    budget, size = 400, 6
    overhead = budget * BATCH_OVERHEAD

    def cost(batches):
        return sum(len(b) * max(b) + overhead for b in batches)

    ordered = sorted(lengths.tolist(), reverse=True)
    best = float("inf")
    for mask in range(2 ** (len(ordered) - 1)):
        batches, current = [], [ordered[0]]
        for k, length in enumerate(ordered[1:]):
            if mask >> k & 1:
                batches.append(current)
                current = []
            current.append(length)
        batches.append(current)
        if all(len(b) == 1 or (len(b) <= size and len(b) * max(b) <= budget) for b in batches):
            best = min(best, cost(batches))
    planned = plan_batches(lengths, max_batch_tokens=budget, max_batch_size=size)
    assert cost([lengths[b].tolist() for b in planned]) == pytest.approx(best)


def test_batch_costs_count_padding_or_the_sum_of_lengths():
    lengths = [10, 3, 7, 7, 2]
    batches = [np.array([0, 2]), np.array([3, 1, 4])]
    assert batch_costs(lengths, batches) == [2 * 10, 3 * 7]
    assert batch_costs(lengths, batches, padded=False) == [17, 12]


def test_restore_order_puts_rows_back_where_the_caller_had_them():
    lengths = [3, 9, 1, 7]
    batches = plan_batches(lengths, max_batch_tokens=16, max_batch_size=2)
    results = [np.asarray(lengths)[b][:, None] * 1.0 for b in batches]
    assert restore_order(batches, results, 4)[:, 0].tolist() == [3, 9, 1, 7]


def test_a_budget_below_one_is_refused():
    with pytest.raises(EmbedrtError, match="max_batch_tokens"):
        plan_batches([1], max_batch_tokens=0, max_batch_size=1)
