"""Figures do not depend on the caller's thread counts (issue: hardening, second round): every score is computed
on fixed torch and BLAS pools, so a bench worker, a Ray task and a notebook record the same numbers."""

from __future__ import annotations

from pathlib import Path

import torch
from ganzoo_plugins.datasets import digit_metrics
from threadpoolctl import threadpool_info, threadpool_limits

import ganzoo
from ganzoo.evaluation import score_samples
from ganzoo.metrics.thread_pools import SCORING_THREADS, scoring_threads


def caller_threads(n: int) -> threadpool_limits:
    """What a caller with ``n`` threads runs under (set here directly, not through the code under test): torch's
    pool at ``n`` from now on, every BLAS/OpenMP pool at ``n`` inside the returned context."""
    torch.set_num_threads(n)
    return threadpool_limits(limits=n)


def _images(n: int, seed: int) -> torch.Tensor:
    real = ganzoo.load_dataset("mnist-5k", "test").images[:n]
    noise = torch.randint(-40, 41, real.shape, generator=torch.Generator().manual_seed(seed))
    return (real.int() + noise).clamp(0, 255).byte()


def test_kid_fid_and_precision_are_the_same_with_one_and_with_two_threads(tmp_path: Path) -> None:
    fake, real = _images(600, 1), ganzoo.load_dataset("mnist-5k", "train").images[:600]
    scores = []
    for threads in (1, 2):
        with caller_threads(threads):
            scores.append(score_samples(fake, real, cache_dir=tmp_path / f"cache-{threads}",  # features anew
                                        dataset_metrics=digit_metrics))
            assert torch.get_num_threads() == threads  # the caller's pools are put back
    assert scores[0] == scores[1]  # exactly: FID, KID, IS, precision, recall, MNIST's classes


def test_every_figure_is_computed_on_the_fixed_pools(tmp_path: Path) -> None:
    seen: list[tuple[int, set[int]]] = []

    def dataset_metrics(samples: torch.Tensor) -> dict[str, float]:  # what a dataset plugin's metric sees
        seen.append((torch.get_num_threads(), {pool["num_threads"] for pool in threadpool_info()}))
        return {"probe": 0.0}

    fake, real = _images(50, 2), _images(50, 3)
    with caller_threads(2):
        scores = score_samples(fake, real, cache_dir=tmp_path, dataset_metrics=dataset_metrics)
        assert torch.get_num_threads() == 2
    assert scores["probe"] == 0.0 and "kid_mean" in scores
    assert seen == [(SCORING_THREADS, {SCORING_THREADS})]


def test_scoring_threads_puts_the_pools_back_when_the_block_raises() -> None:
    with caller_threads(2):
        try:
            with scoring_threads():
                assert torch.get_num_threads() == SCORING_THREADS
                raise RuntimeError("boom")
        except RuntimeError:
            pass
        assert torch.get_num_threads() == 2
        assert {pool["num_threads"] for pool in threadpool_info()} == {2}
