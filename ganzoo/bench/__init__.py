"""The benchmark: :mod:`~ganzoo.bench.profile` (profiles and the hashed Protocol), :mod:`~ganzoo.bench.records`
(results files), :mod:`~ganzoo.bench.plan`, :mod:`~ganzoo.bench.trial`, :mod:`~ganzoo.bench.executors`,
:mod:`~ganzoo.bench.harness` (:func:`ganzoo.bench` itself), :mod:`~ganzoo.bench.reproduction` and
:mod:`~ganzoo.bench.leaderboard`, each importing only those before it."""

from __future__ import annotations

from .harness import bench
from .profile import BenchProfile, Budget, load_profile
from .records import load_results

__all__ = ["BenchProfile", "Budget", "bench", "load_profile", "load_results"]
