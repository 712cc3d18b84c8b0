"""The benchmark harness: train variants under one budget, score them with torch-fidelity, write results.

``bench(["vanilla", "dcgan", "wgan"])`` trains every (variant, seed) trial on the same dataset with the
profile's budget (generator steps, per row if the profile says so, and/or seconds of training), evaluates
every ``eval_every`` steps (or ``eval_every_seconds``), at step 0 (the untrained generator) and at the end,
and writes ``results.json``
with one record per trial, each pinning its protocol. Trials already recorded in ``results.json`` with the
same config are skipped, so an interrupted bench re-runs only what did not finish.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import torch
import yaml
from tqdm.auto import tqdm

from .. import rundir
from ..errors import UsageError
from ..meta import EXECUTORS
from ..ray_cluster import parse_address
from ..registry import Registry, get_registry
from .executors import Executor, LocalExecutor, RayExecutor, Trials
from .plan import PlannedTrial, load_reference, plan_trials, refuse_in_process_plugins, refuse_training_over
from .profile import BenchProfile, load_profile, portable_profile
from .records import RERUN_STATUSES, RESULTS_FILE, TrialRecord, load_results, write_results
from .trial import run_trial


def bench(variants: list[str] | None = None, *, profile: str | Path | BenchProfile | None = None,
          out: str | Path = "runs/bench", seeds: int | None = None, steps: int | None = None,
          seconds: float | None = None, feature_extractor: str | None = None,
          feature_extractor_weights: str | Path | None = None, cache_dir: str | Path | None = None, jobs: int = 1,
          threads: int | None = None, executor: Literal["local", "ray"] = "local", address: str | None = None,
          overwrite: bool = False, progress: bool = True) -> dict[str, Any]:
    """Run a benchmark and return the contents of its ``results.json``.

    ``profile`` is a bundled profile name (``default``, the default, runs offline on mnist-5k in minutes on a
    CPU), a YAML file or a :class:`BenchProfile`; the keyword arguments override it (``steps`` replaces every
    row's budget). Trials already in
    ``out/results.json`` with the same config are kept and not re-run. ``jobs > 1`` runs trials in that many
    processes at once (each with ``cpu_count // jobs`` threads); wall-clock budgets then share the machine.
    ``threads`` sets each trial's CPU threads on the local executor in place of the profile's ``threads`` and
    that default, without entering any trial's config hash (the profile's ``threads`` does).
    ``executor="ray"`` runs each trial as a Ray task instead, on the cluster at ``address`` (default: the one
    ``RAY_ADDRESS`` names, else a Ray instance started on this machine), with the profile's
    ``cpus_per_trial`` and ``gpus_per_trial``; ``out`` must then be on storage every node shares
    (docs/distributed.md). Ray is the optional extra ``ganzoo[ray]``.
    The returned dictionary holds this bench's trials, in plan order; ``results.json`` also keeps the finished
    trials of earlier benches into ``out`` at rows and seeds this one does not plan. A planned row and seed that
    holds a finished trial of other settings or another budget is refused unless ``overwrite=True``, which trains
    over it and leaves ``results.json`` with this bench's trials alone; re-running the same bench into its
    ``out`` (trials already done are kept) needs no flag. Plugins are those of the process-wide plugin manager.

    Example::

        results = ganzoo.bench(["vanilla", "dcgan", "wgan"], out="runs/bench")
        print([(t["variant"], t["final"]["fid"]) for t in results["trials"]])
    """
    prof = resolve_profile(profile, variants=variants, seeds=seeds, steps=steps, seconds=seconds,
                           feature_extractor=feature_extractor, feature_extractor_weights=feature_extractor_weights)
    runner = make_executor(executor, jobs=jobs, threads=threads, address=address, profile=prof)
    # a Ray worker resolves a relative path against its own working directory, not the shared storage
    out = Path(out).resolve() if executor == "ray" else Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with rundir.run_lock(out):  # one bench at a time writes into out
        registry = get_registry()
        plan, previous = _checked_plan(prof, out, registry, runner, overwrite=overwrite)
        reals = references(registry, plan, progress=progress)
        book = _Book(out, prof, plan, previous, overwrite=overwrite, progress=progress)
        cache = Path(cache_dir).expanduser() if cache_dir is not None else None
        runner.run(Trials(book.todo, reals, out, cache, progress), run_trial, book)
        book.close()
        (out / "profile.yaml").write_text(yaml.safe_dump(portable_profile(prof), sort_keys=False))
    written = load_results(out)
    return {**written, "trials": written["trials"][:len(plan)]}  # this bench's trials, in plan order


def resolve_profile(profile: str | Path | BenchProfile | None, *, variants: list[str] | None, seeds: int | None,
                    steps: int | None, seconds: float | None, feature_extractor: str | None,
                    feature_extractor_weights: str | Path | None) -> BenchProfile:
    """The profile a bench runs: ``profile`` (a name, a file or a :class:`BenchProfile`) with the non-``None``
    arguments applied, to every dataset of its ``datasets`` too (``steps`` replaces every row's budget)."""
    changes = {"variants": variants, "seeds": seeds, "steps": steps, "seconds": seconds,
               "feature_extractor": feature_extractor,
               "feature_extractor_weights": str(feature_extractor_weights) if feature_extractor_weights else None}
    prof = (profile.model_copy(update={k: v for k, v in changes.items() if v is not None})
            if isinstance(profile, BenchProfile) else load_profile(profile, **changes))
    if steps is not None:  # an explicit step budget is every row's
        prof = prof.model_copy(update={"budgets": {}})
    if prof.datasets:  # what is asked for explicitly holds for every dataset, whatever its own changes say
        explicit = {k: v for k, v in prof.model_dump(mode="json").items()
                    if changes.get(k) is not None or (k == "budgets" and steps is not None)}
        prof = prof.model_copy(update={"datasets": {name: {**part, **{k: v for k, v in explicit.items() if k in part}}
                                                    for name, part in prof.datasets.items()}})
    return prof


def make_executor(executor: str, *, jobs: int, threads: int | None, address: str | None,
                  profile: BenchProfile) -> Executor:
    """The executor a bench's options ask for, checked: the local one with ``jobs`` processes and each trial's
    threads resolved once (``threads``, else the profile's, else the machine's), or Ray at ``address``."""
    if jobs < 1:
        raise UsageError(f"jobs must be at least 1, not {jobs}")
    if executor not in EXECUTORS:
        raise UsageError(f"unknown executor {executor!r}; choose one of {', '.join(EXECUTORS)}")
    if address is not None and executor != "ray":
        raise UsageError("an address names a Ray cluster: give it with executor='ray' (--executor ray)")
    if address is not None:  # a malformed address is refused before anything loads
        parse_address(address)
    if threads is not None and threads < 1:
        raise UsageError(f"threads must be at least 1, not {threads}")
    if threads is not None and executor == "ray":
        raise UsageError("threads is for the local executor; on Ray the profile's threads (else cpus_per_trial) "
                         "sets a trial's threads")
    if jobs > 1 and executor == "ray":
        raise UsageError("jobs is for the local executor; on Ray the cluster's CPUs and cpus_per_trial decide how "
                         "many trials run at once")
    if executor == "ray":
        return RayExecutor(address)
    return LocalExecutor(jobs, threads or profile.execution.threads)


def _checked_plan(prof: BenchProfile, out: Path, registry: Registry, runner: Executor, *,
                  overwrite: bool) -> tuple[list[PlannedTrial], list[TrialRecord]]:
    """Every trial of ``prof``, resolved before anything trains (a typo in a variant name fails here) and checked
    to be runnable by ``runner`` and into ``out``; and the trials ``out/results.json`` already holds."""
    from .. import metrics  # heavy (torch-fidelity): only once a bench runs

    for part in prof.parts():  # fail early, clearly
        metrics.extractor_info(part.feature_extractor, part.feature_extractor_weights)
    plan = plan_trials(prof, out, registry)
    if isinstance(runner, RayExecutor):
        refuse_in_process_plugins(plan, registry, "Ray")
    elif isinstance(runner, LocalExecutor) and runner.jobs > 1:
        refuse_in_process_plugins(plan, registry, f"{runner.jobs} worker processes")
    previous = load_results(out)["trials"] if (out / RESULTS_FILE).is_file() else []
    if not overwrite:
        refuse_training_over(out, previous, plan)
    return plan, previous


def references(registry: Registry, plan: list[PlannedTrial], *, progress: bool) -> dict[int, torch.Tensor]:
    """The reference data of each part of the profile that ``plan`` covers, by the part's ``id``, loaded once."""
    reals: dict[int, torch.Tensor] = {}
    for entry in plan:
        if id(entry.profile) not in reals:
            reals[id(entry.profile)] = load_reference(registry, entry, progress=progress)
    return reals


class _Book:
    """A bench's ``results.json`` as its trials finish (a :class:`~ganzoo.bench.executors.Reporter`): this
    bench's trials in plan order, then the finished trials of other benches at rows and seeds this one does not
    plan (their run directories are not touched), unless ``overwrite`` asks for this bench's trials alone."""

    def __init__(self, out: Path, profile: BenchProfile, plan: list[PlannedTrial], previous: list[TrialRecord], *,
                 overwrite: bool, progress: bool) -> None:
        self.out, self.profile = out, profile
        self.records = {(t["variant"], t["seed"], t["config_hash"]): t for t in previous
                        if t["status"] not in RERUN_STATUSES}
        self.order = [entry.key for entry in plan]
        places = {(entry.row, entry.seed) for entry in plan}
        self.others = [] if overwrite else [t for t in previous if t["status"] not in RERUN_STATUSES
                                            and (t["variant"], t["seed"]) not in places]
        self.todo = [entry for entry in plan if entry.key not in self.records]
        self.bar = tqdm(total=len(plan), initial=len(plan) - len(self.todo), desc="bench", unit="trial",
                        disable=not progress, dynamic_ncols=True)

    def start(self, entry: PlannedTrial) -> None:
        self.bar.set_description(f"bench {entry.row} seed {entry.seed}")

    def finished(self, entry: PlannedTrial, record: TrialRecord) -> None:
        self.records[entry.key] = record
        self.write()
        self.bar.update(1)

    def write(self) -> None:
        write_results(self.out, self.profile, [self.records[k] for k in self.order if k in self.records] + self.others)

    def close(self) -> None:
        self.bar.close()
        self.write()
