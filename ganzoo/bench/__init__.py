"""The benchmark: profile, records, plan, trial, executors, harness (:func:`ganzoo.bench`), reproduction and
leaderboard, each module importing only those before it."""

from __future__ import annotations

from .harness import bench
from .profile import BenchProfile, Budget, load_profile
from .records import load_results

__all__ = ["BenchProfile", "Budget", "bench", "load_profile", "load_results"]
