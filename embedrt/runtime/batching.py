"""The token-budget batcher: where the size of each batch is decided.

Inputs are sorted by length (longest first) and cut into batches whose padded cost,
batch size x longest length, stays under `max_batch_tokens`, as text-embeddings-inference
does. Unsorted batches of mixed-length text waste about 3x the compute on padding. Where
to cut is chosen for the least padding plus a fixed cost per engine run, not by filling
each batch to the budget: a few mixed inputs (one request, one round of a server's queue)
then pad far less.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np

from embedrt.errors import EmbedrtError

# Token budget per batch by device. On a CPU small batches keep activations in cache. all-MiniLM-L6-v2 on
# 2,000 mixed sentences here, texts/s (fp32 / int8): 256 tokens 96 / 173, 512-1024 about 105 / 180,
# 2048 98 / 175, 4096 - / 151, 16384 about 60 / -. A GPU wants large batches: on an H200 (issue 25's profile), 2,000
# mixed sentences ran in 70 / 199 ms at TEI's 16,384 and 60 / 194 ms at 65,536 (all-MiniLM-L6-v2 / bge-base fp16);
# 65,536 tokens of bge-base's 3,072-wide fp16 activations take 400 MB.
DEFAULT_MAX_BATCH_TOKENS = {"cpu": 768, "cuda": 65536, "tensorrt": 65536}
# The fixed cost of one engine run as a share of a full batch's: what splitting a batch to save padding costs.
# all-MiniLM-L6-v2 fp32 here (Xeon, 2 threads): a run takes 1.5 ms + 60 us a padded token, 1.5 ms = 26 tokens of 768.
BATCH_OVERHEAD = 1 / 32


def plan_batches(lengths: Sequence[int], *, max_batch_tokens: int, max_batch_size: int, padded: bool = True) -> list[np.ndarray]:
    """Indices into `lengths`, one array per batch, longest inputs first.

    With `padded`, a batch costs len(batch) * its longest input; otherwise the sum of its lengths. Among the
    cuts of the length-sorted inputs into batches within both limits, the one of least total cost is taken,
    each batch also charged a fixed BATCH_OVERHEAD of the budget: a batch is not filled to the budget when
    the padding that costs is more than a batch of its own (it matters most for few inputs, such as one
    round of a server's queue). A single input longer than the budget still gets a batch of its own.
    """
    if max_batch_tokens < 1 or max_batch_size < 1:
        raise EmbedrtError(f"max_batch_tokens ({max_batch_tokens}) and max_batch_size ({max_batch_size}) must be >= 1.")
    lengths = np.asarray(lengths, dtype=np.int64)
    order = np.argsort(-lengths, kind="stable")
    cuts = _least_cost_cuts(lengths[order], max_batch_tokens, max_batch_size, padded)
    return [order[start:end] for start, end in zip(cuts[:-1], cuts[1:])]


def _least_cost_cuts(longest_first: np.ndarray, budget: int, max_size: int, padded: bool) -> list[int]:
    """Batch boundaries over inputs sorted longest first: dynamic programming over where each batch starts."""
    n = len(longest_first)
    overhead = budget * BATCH_OVERHEAD
    summed = np.concatenate(([0], np.cumsum(longest_first)))
    best = np.zeros(n + 1)  # best[j]: least cost of the first j inputs
    start_of = np.zeros(n + 1, dtype=np.int64)  # where the last batch of that best cut starts
    lo = 0  # the earliest start within both limits; it never moves back as j grows
    for j in range(1, n + 1):
        lo = max(lo, j - max_size)
        starts = np.arange(lo, j)
        batch = (j - starts) * longest_first[lo:j] if padded else summed[j] - summed[lo:j]  # the cost of batch [start, j)
        over = int(np.count_nonzero(batch[:-1] > budget))  # costs fall as the start moves up: the over-budget ones lead
        lo, batch = lo + over, batch[over:]
        costs = best[lo:j] + batch + overhead
        k = len(costs) - 1 - int(np.argmin(costs[::-1]))  # on a tie the shorter last batch: full batches come first
        best[j], start_of[j] = costs[k], lo + k
    cuts = [n]
    while cuts[-1] > 0:
        cuts.append(int(start_of[cuts[-1]]))
    return cuts[::-1]


def batch_costs(lengths: Sequence[int] | np.ndarray, batches: Sequence[np.ndarray], *, padded: bool = True) -> list[int]:
    """Each batch's cost as plan_batches counts it: its size x its longest input, or (unpadded) the sum of its lengths."""
    lengths = np.asarray(lengths)
    return [int(len(idx) * lengths[idx].max()) if padded else int(lengths[idx].sum()) for idx in batches]


def restore_order(batches: Sequence[np.ndarray], results: Sequence[np.ndarray], n: int) -> np.ndarray:
    """Stack per-batch results (rows in batch order) back into the caller's order."""
    if n == 0:
        raise EmbedrtError("restore_order needs at least one input; handle the empty case before batching.")
    first = results[0]
    out = np.empty((n,) + first.shape[1:], dtype=first.dtype)
    for idx, res in zip(batches, results):
        out[idx] = res
    return out


def iter_chunks(items: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
