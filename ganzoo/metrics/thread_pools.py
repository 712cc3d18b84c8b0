"""Fixed thread pools for every figure ganzoo records.

A float sum split over more threads is added in another order, so a matrix product on BLAS's pool (KID's
polynomial kernel, FID's matrix square root) or on torch's (feature extraction, nearest neighbours for
precision/recall) can differ in the last digits with the pool's size. Pool sizes differ by caller: a bench
worker trains with ``cores // jobs`` threads, a Ray worker with its ``cpus_per_trial``, a notebook with all
cores. :func:`scoring_threads` pins both pools to :data:`SCORING_THREADS` while a score is computed, so a figure
is the same whoever computes it, on the same machine type.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from threadpoolctl import threadpool_limits

#: Threads of torch's intra-op pool and of every BLAS/OpenMP pool while a metric is computed. One: the only
#: count every caller can give (a Ray task may hold a single CPU), and the cost is small next to training.
SCORING_THREADS = 1


@contextmanager
def scoring_threads(threads: int = SCORING_THREADS) -> Iterator[None]:
    """Run the block with torch's intra-op pool and the BLAS/OpenMP pools (NumPy's, SciPy's, torch's own) at
    ``threads`` threads; the sizes before are put back after it, also when it raises. Re-entrant."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        torch.set_num_threads(before)
