"""The benchmark: profiles, plans, trials, executors, the harness, reproduction and the leaderboard.

:func:`ganzoo.bench` (:func:`ganzoo.bench.harness.bench`) runs one. The modules, each importing only those
above it:

- :mod:`~ganzoo.bench.profile`: :class:`BenchProfile` (a YAML profile) and its typed parts: the hashed
  :class:`~ganzoo.bench.profile.Protocol`, the :class:`~ganzoo.bench.profile.Execution`;
- :mod:`~ganzoo.bench.records`: ``results.json`` and ``sweep.json``, their schema, read and written;
- :mod:`~ganzoo.bench.plan`: every trial of a profile, resolved and identified before anything trains;
- :mod:`~ganzoo.bench.trial`: one trial (:func:`~ganzoo.bench.trial.run_trial`);
- :mod:`~ganzoo.bench.executors`: where trials run (this machine, a ``--jobs`` pool, Ray);
- :mod:`~ganzoo.bench.harness`: :func:`~ganzoo.bench.harness.bench` itself;
- :mod:`~ganzoo.bench.reproduction` and :mod:`~ganzoo.bench.leaderboard`: reading results again.

``import ganzoo`` keeps ``ganzoo.bench`` the function; ``from ganzoo.bench import BenchProfile, load_profile``
gives the profile's names.
"""

from __future__ import annotations

from .harness import bench
from .profile import BenchProfile, Budget, load_profile
from .records import load_results

__all__ = ["BenchProfile", "Budget", "bench", "load_profile", "load_results"]
