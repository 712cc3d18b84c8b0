"""Where a bench's trials run, behind one interface: :class:`LocalExecutor` (this process, or ``--jobs`` worker
processes) and :class:`RayExecutor` (each trial a Ray task); a trial whose worker died is recorded ``lost``."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

from ..ray_cluster import check_resources, connect
from .plan import PlannedTrial
from .records import TrialRecord
from .trial import lost_record

#: Seconds between a ``--jobs`` worker's checks that the bench process that started it still lives.
PARENT_CHECK_SECONDS = 0.5

#: Runs one trial: ``run_trial(entry, out, real, progress=..., cache_dir=...)``.
TrialRunner = Callable[..., TrialRecord]


@dataclass(frozen=True)
class Trials:
    """The trials still to do, the reference data of each profile part (by ``id``), and where they write."""
    todo: list[PlannedTrial]
    reals: dict[int, torch.Tensor]
    out: Path
    cache_dir: Path | None
    progress: bool

    def real(self, entry: PlannedTrial) -> torch.Tensor:
        """The reference data ``entry`` is scored against."""
        return self.reals[id(entry.profile)]


class Reporter(Protocol):
    """What an executor tells as trials run (the bench's progress bar and results file)."""
    def start(self, entry: PlannedTrial) -> None:
        """``entry`` starts training here (the serial local executor only)."""

    def finished(self, entry: PlannedTrial, record: TrialRecord) -> None:
        """``entry`` ended with ``record`` (failed and lost trials too)."""


class Executor(Protocol):
    """Runs ``trials`` with ``run_trial``, telling ``report`` as each one ends (in the order they end)."""
    def run(self, trials: Trials, run_trial: TrialRunner, report: Reporter) -> None:
        """Run every trial of ``trials``; return once each one is reported."""


@dataclass(frozen=True)
class LocalExecutor:
    """Trials in this process (``jobs`` 1) or a pool of ``jobs`` processes, each with ``threads`` threads."""
    jobs: int = 1
    threads: int | None = None

    def run(self, trials: Trials, run_trial: TrialRunner, report: Reporter) -> None:
        if self.jobs > 1:
            return self._pool(trials, run_trial, report)
        threads_before = torch.get_num_threads()
        torch.set_num_threads(self.threads or threads_before)
        try:
            for entry in trials.todo:
                report.start(entry)
                report.finished(entry, run_trial(entry, trials.out, trials.real(entry), progress=trials.progress,
                                                 cache_dir=trials.cache_dir))
        finally:
            torch.set_num_threads(threads_before)

    def _pool(self, trials: Trials, run_trial: TrialRunner, report: Reporter) -> None:
        # each worker builds its own plugin manager from the entry points
        threads = self.threads or max(1, (os.cpu_count() or 1) // self.jobs)
        with ProcessPoolExecutor(self.jobs, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker,
                                 initargs=(threads, os.getpid())) as pool:
            futures = {pool.submit(run_trial, entry, trials.out, trials.real(entry), progress=False,
                                   cache_dir=trials.cache_dir): entry for entry in trials.todo}
            for future in as_completed(futures):
                entry = futures[future]
                try:
                    record = future.result()
                except Exception as exc:  # run_trial never raises: its process died
                    record = lost_record(entry, trials.real(entry), f"{type(exc).__name__}: {exc}")
                report.finished(entry, record)


def _init_worker(threads: int, parent: int) -> None:
    """Set up a ``--jobs`` worker: ``threads`` threads, and death with the bench process ``parent``."""
    torch.set_num_threads(threads)
    if sys.platform.startswith("linux"):
        import ctypes
        with contextlib.suppress(OSError, AttributeError):  # else the watcher still stops it
            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG: on the parent's death
    def orphaned() -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5 * PARENT_CHECK_SECONDS)  # a handler someone installed for SIGTERM had its chance
        os._exit(1)
    if os.getppid() != parent:  # the bench died before this worker got here
        orphaned()
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_SECONDS)
        orphaned()
    threading.Thread(target=watch, name="ganzoo-bench-parent-watch", daemon=True).start()


def _run_remote_trial(run_trial: TrialRunner, threads: int, real: torch.Tensor, entry: PlannedTrial, out: Path,
                      cache_dir: Path | None) -> TrialRecord:
    """One bench trial on a Ray worker (``real`` an argument of its own: Ray hands over the tensor, not a ref)."""
    torch.set_num_threads(threads)
    return run_trial(entry, out, real, progress=False, cache_dir=cache_dir)


@dataclass(frozen=True)
class RayExecutor:
    """Trials as Ray tasks on the cluster at ``address``, each with its profile's resources."""
    address: str | None = None

    def run(self, trials: Trials, run_trial: TrialRunner, report: Reporter) -> None:
        if not trials.todo:
            return
        ray = connect(self.address)
        for entry in trials.todo:
            check_resources(ray, *entry.profile.ray_resources, entry.profile.device)
        remote = ray.remote(max_retries=0)(_run_remote_trial)
        shared = {key: ray.put(real) for key, real in trials.reals.items()}  # once per dataset, not once per trial
        pending: dict[Any, PlannedTrial] = {}
        for entry in trials.todo:
            cpus, gpus = entry.profile.ray_resources
            ref = remote.options(num_cpus=cpus, num_gpus=gpus, name=f"ganzoo {entry.row} seed {entry.seed}").remote(
                run_trial, entry.profile.ray_threads, shared[id(entry.profile)], entry, trials.out, trials.cache_dir)
            pending[ref] = entry
        warned = False
        while pending:
            (ref,), _ = ray.wait(list(pending), num_returns=1)
            entry = pending.pop(ref)
            try:
                record = ray.get(ref)
            except Exception as exc:  # a dead worker or node, an unpicklable result: the bench goes on
                cause = getattr(exc, "cause", None) or exc  # a task's own exception, unwrapped
                record = lost_record(entry, trials.real(entry), f"{type(cause).__name__}: {cause}")
            if not warned and record.get("status") == "ok" and not Path(entry.config.out).is_dir():
                warnings.warn(f"trial {entry.row} seed {entry.seed} ran on a node whose run directory "
                              f"{entry.config.out!r} this machine does not see: put the bench directory on storage "
                              "every node shares to keep grids, plots and checkpoints (results.json is complete)",
                              stacklevel=2)
                warned = True
            report.finished(entry, record)
