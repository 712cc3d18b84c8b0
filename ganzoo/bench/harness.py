"""The benchmark harness: train variants under one budget, score them with torch-fidelity, write ``results.json``
(a record per trial pinning its protocol); trials already recorded with the same config are skipped."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

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
    """Run a benchmark and return its ``results.json`` with this bench's trials, in plan order. ``profile`` is a bundled
    profile name (default ``default``: offline, minutes on a CPU), a YAML file or a :class:`BenchProfile`; the keyword
    arguments override it (``steps`` replaces every row's budget). Trials already in ``out/results.json`` with the same
    config are kept. ``jobs > 1`` runs trials in that many processes; ``threads`` sets each trial's CPU threads there
    without entering its hash (the profile's does). ``executor="ray"`` runs each trial as a Ray task on the cluster at
    ``address`` (default ``RAY_ADDRESS``, else a local instance), ``out`` on storage every node shares. Finished trials
    of other settings at a planned row and seed are refused unless ``overwrite=True``, which trains over them and keeps
    this bench's trials alone. Example::

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
        # the reference data of each part of the profile that plan covers, by the part's id, loaded once
        firsts = {id(entry.profile): entry for entry in reversed(plan)}  # each part's first entry, last part first
        reals = {key: load_reference(registry, entry, progress=progress) for key, entry in reversed(firsts.items())}
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
    """``profile`` with the non-``None`` arguments applied, to each of its ``datasets`` too."""
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
    """The executor a bench's options ask for, checked: local (``jobs``, ``threads``) or Ray at ``address``."""
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
    return RayExecutor(address) if executor == "ray" else LocalExecutor(jobs, threads or profile.threads)


def _checked_plan(prof: BenchProfile, out: Path, registry: Registry, runner: Executor, *,
                  overwrite: bool) -> tuple[list[PlannedTrial], list[TrialRecord]]:
    """Every trial of ``prof``, resolved and checked before anything trains, and the finished trials ``out`` holds."""
    from .. import metrics  # heavy (torch-fidelity): only once a bench runs
    for part in prof.parts():  # fail early, clearly
        metrics.extractor_info(part.feature_extractor, part.feature_extractor_weights)
    plan = plan_trials(prof, out, registry)
    if isinstance(runner, RayExecutor):
        refuse_in_process_plugins(plan, registry, "Ray")
    elif isinstance(runner, LocalExecutor) and runner.jobs > 1:
        refuse_in_process_plugins(plan, registry, f"{runner.jobs} worker processes")
    previous = load_results(out)["trials"] if (out / RESULTS_FILE).is_file() else []
    previous = [t for t in previous if t["status"] not in RERUN_STATUSES]  # the others train again
    if not overwrite:
        refuse_training_over(out, previous, plan)
    return plan, previous


class _Book:
    """A bench's ``results.json`` as its trials finish, then other benches' trials it keeps."""
    def __init__(self, out: Path, profile: BenchProfile, plan: list[PlannedTrial], previous: list[TrialRecord], *,
                 overwrite: bool, progress: bool) -> None:
        self.out, self.profile = out, profile
        self.records = {(t["variant"], t["seed"], t["config_hash"]): t for t in previous}
        self.order = [entry.key for entry in plan]
        places = {(entry.row, entry.seed) for entry in plan}
        self.others = [] if overwrite else [t for t in previous if (t["variant"], t["seed"]) not in places]
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
