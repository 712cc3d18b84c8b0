"""Fixed thread pools for every figure ganzoo records: a float sum over more threads adds in another order, so
:func:`scoring_threads` pins torch's and BLAS's pools while a score is computed, whoever computes it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from threadpoolctl import threadpool_limits

#: Threads of torch's and every BLAS/OpenMP pool while a metric is computed: the count every caller can give.
SCORING_THREADS = 1


@contextmanager
def scoring_threads(threads: int = SCORING_THREADS) -> Iterator[None]:
    """Run the block with torch's and the BLAS/OpenMP pools at ``threads`` threads, then put them back."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        torch.set_num_threads(before)
