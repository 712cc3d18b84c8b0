"""Hyperparameter sweeps on Ray Tune: per variant row of a profile with a ``sweep:`` section, a Tune experiment
under the row's step budget (trials report each evaluation with a checkpoint; ASHA stops the worst), then the
tuned configurations and the paper defaults benchmarked side by side. Writes ``OUT/sweep.json``,
``OUT/tuned.yaml``, ``OUT/paper-defaults/`` and ``OUT/tuned/``; everything resumes."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from tqdm.auto import tqdm

from .. import rundir
from ..bench.harness import bench
from ..bench.plan import EXTENSION_JOINER, PlannedTrial, load_reference, plan_trials, refuse_in_process_plugins
from ..bench.profile import BenchProfile, Budget, Protocol, load_profile, portable_profile
from ..bench.records import TRAIN_SECONDS, load_sweep, write_sweep
from ..bench.trial import METRIC_DIRECTIONS, hardware, make_evaluator
from ..checkpoint import latest_checkpoint, load_checkpoint
from ..config import TrainConfig, merge, validate_config
from ..errors import ConfigError, UsageError
from ..metric_keys import FID
from ..plots import plot_sweep
from ..ray_cluster import check_resources, connect
from ..registry import Registry, get_registry
from ..training.callbacks import Evaluation
from ..training.loop import Callback, RunState
from ..training.run import run_config
from .spec import (
    COMPLETED,
    DEFAULTS_DIR,
    FAILED,
    STOPPED,
    SWEEP_FILE,
    SWEEP_PLOT,
    TUNED_DIR,
    TUNED_PROFILE,
    SweepSpec,
    nest,
)

# Tune's console reporting and checkpoint advice would bury the progress bar; a value the user set stays.
_TUNE_QUIET = {"RAY_AIR_NEW_OUTPUT": "0", "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0"}


class Search(Protocol):
    """What makes a row's search the same search (:func:`spec_hash`), ``threads`` even when unset."""
    budgets: dict[str, Budget]
    sweep: SweepSpec | None
    datasets: dict[str, dict[str, Any]]


def spec_hash(profile: BenchProfile, row: str) -> str:
    """The identity of ``row``'s search under ``profile``: a finished search of the same hash is not run again."""
    search = Search(**profile.model_dump(include=set(Search.model_fields)))
    blob = json.dumps({"row": row, "profile": search.model_dump(mode="json")}, sort_keys=True)  # threads too
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class _Row:
    """One row to search: its planned trial (config and budget as a bench's), what a Tune trial needs."""
    entry: PlannedTrial
    spec: SweepSpec
    real: torch.Tensor
    runs: Path

    @property
    def max_evaluations(self) -> int:
        return -(-self.entry.config.steps // self.entry.eval_every)  # rounded up


def _tune_trial(params: dict[str, Any], *, row: _Row) -> None:
    """One Tune trial (in a Ray worker): train the row with ``params`` from Tune's checkpoint if any, reporting to Tune
    each evaluation at the row's interval after step 0."""
    from ray import tune
    profile = row.entry.profile
    torch.set_num_threads(profile.ray_threads)
    # the row's config as the bench resolves it, with this trial's values of the searched keys
    cfg = validate_config(merge(row.entry.config.model_dump(mode="json"), nest(params)),
                          f"sweep trial of row {row.entry.row!r}")
    cfg = cfg.model_copy(update={"out": str(row.runs / tune.get_context().get_trial_id()), "seed": row.spec.trial_seed})
    state = None
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            state = load_checkpoint(latest_checkpoint(Path(folder)))
    evaluator = make_evaluator(row.real, profile, row.spec.trial_seed, None,
                               get_registry().datasets.get(profile.dataset).item.metrics)
    run_config(cfg, state, progress=False, callbacks=[Evaluation(evaluator, row.entry.eval_every, at_start=False),
                                                      TuneReport()])


class TuneReport(Callback):
    """Reports each evaluation of a sweep trial to Tune, with a checkpoint to resume the trial from."""
    def on_evaluation(self, run: RunState, scores: dict[str, float]) -> None:
        from ray import tune
        with tempfile.TemporaryDirectory() as folder:
            run.trainer.save_checkpoint(Path(folder))
            tune.report({**scores, "step": run.step, TRAIN_SECONDS: round(run.train_seconds, 3)},
                        checkpoint=tune.Checkpoint.from_directory(folder))


def _history(result: Any) -> list[dict[str, Any]]:
    """A Tune trial's reported evaluations: the step, training seconds and bench metrics of each."""
    frame = result.metrics_dataframe
    if frame is None or not len(frame):
        return []
    keep = [c for c in frame.columns if c in ("step", TRAIN_SECONDS) or c in METRIC_DIRECTIONS]
    return [{k: (int(v) if k == "step" else float(v)) for k, v in row.items() if not (isinstance(v, float) and
             math.isnan(v))} for row in frame[keep].to_dict("records")]


def _trial_table(result_grid: Any, metric: str, lower: bool, max_evaluations: int) -> tuple[list[dict], Any]:
    """Every trial as a row of the table, and the best one of those that trained the whole budget."""
    trials = []
    for result in sorted(result_grid, key=lambda r: Path(r.path).name):  # Tune's order changes on restore
        history = _history(result)
        evaluations = len(history)
        if result.error is not None:
            status, reason = FAILED, f"{type(result.error).__name__}: {str(result.error).strip().splitlines()[-1]}"
        elif evaluations >= max_evaluations:
            status, reason = COMPLETED, None
        else:
            status, reason = STOPPED, f"stopped by the scheduler after {evaluations} of {max_evaluations} evaluations"
        trials.append({"trial_id": result.metrics.get("trial_id") if result.metrics else Path(result.path).name,
                       "params": result.config, "status": status, "reason": reason, "evaluations": history,
                       "final": history[-1].get(metric) if history else None})
    ranked = [t for t in trials if t["status"] == COMPLETED and t["final"] is not None and math.isfinite(t["final"])]
    return trials, (min if lower else max)(ranked, key=lambda t: t["final"], default=None)


def sweep(profile: str | Path | BenchProfile, *, out: str | Path = "runs/sweep", variants: list[str] | None = None,
          samples: int | None = None, seeds: int | None = None, address: str | None = None, compare: bool = True,
          progress: bool = True) -> dict[str, Any]:
    """Search each row's hyperparameters on Ray Tune, then bench the tuned rows beside the paper defaults.
    ``profile`` (a name, a YAML file or a :class:`~ganzoo.bench.profile.BenchProfile`) needs a ``sweep`` section;
    ``variants``, ``samples`` and ``seeds`` (of the benches) override it. Runs on the Ray cluster at ``address``
    (default ``RAY_ADDRESS``, else a local instance); ``compare=False`` stops after the search. Returns
    ``OUT/sweep.json``. Example::

        table = ganzoo.sweep("dcgan-sweep", out="runs/sweep", samples=8)
        print(table["rows"]["dcgan"]["best"])
    """
    prof, spec = _sweep_profile(profile, variants=variants, samples=samples, seeds=seeds)
    out = Path(out).resolve()  # Tune wants an absolute storage path
    out.mkdir(parents=True, exist_ok=True)
    with rundir.run_lock(out), _quiet_tune():  # one sweep at a time writes into out
        registry = get_registry()
        plan = _sweep_plan(prof, spec, out, registry)
        done = load_sweep(out / SWEEP_FILE)["rows"] if (out / SWEEP_FILE).is_file() else {}  # a resumed sweep
        ray = connect(address)
        check_resources(ray, *prof.ray_resources, prof.device)
        bar = tqdm(total=len(plan), desc="sweep", unit="row", disable=not progress, dynamic_ncols=True)
        results: dict[str, Any] = {}
        real = None
        for entry in plan:
            key = spec_hash(prof, entry.row)
            if entry.row in done and done[entry.row].get("spec_hash") == key:
                results[entry.row] = done[entry.row]
            else:
                real = load_reference(registry, plan[0], progress=progress) if real is None else real
                bar.set_description(f"sweep {entry.row}")
                results[entry.row] = _search(ray, _Row(entry, spec, real, out / "runs" / entry.row), key, out)
                write_sweep(out, prof, {**done, **results})
            bar.update(1)
        bar.close()
        data = write_sweep(out, prof, {**done, **results})
        plot_sweep(data["rows"], out / SWEEP_PLOT, prof.fid_target if spec.metric == FID else None,
                   f"{prof.name}: {spec.samples} configurations per row, {spec.metric} at the end of the budget")
        tuned = tuned_profile(prof, data["rows"], registry)
        (out / TUNED_PROFILE).write_text(yaml.safe_dump(portable_profile(tuned), sort_keys=False))
        if compare:  # the sweep's own benches follow its current search: a changed one replaces what they held
            defaults = prof.model_copy(update={"name": f"{prof.name} (paper defaults)", "sweep": None})
            for side, sub in ((defaults, DEFAULTS_DIR), (tuned, TUNED_DIR)):
                bench(profile=side, out=out / sub, executor="ray", address=address, overwrite=True, progress=progress)
        return data


def _sweep_profile(profile: str | Path | BenchProfile, *, variants: list[str] | None, samples: int | None,
                   seeds: int | None) -> tuple[BenchProfile, SweepSpec]:
    """The profile a sweep runs, with the arguments applied, checked to be sweepable, and its sweep section."""
    prof = profile if isinstance(profile, BenchProfile) else load_profile(profile)
    prof = prof.model_copy(update={k: v for k, v in (("variants", variants), ("seeds", seeds)) if v is not None})
    spec = prof.sweep
    if spec is None:
        raise UsageError(f"profile {prof.name!r} has no sweep section; add one (docs/distributed.md#sweeps)")
    if samples is not None:
        spec = spec.model_copy(update={"samples": samples})
        prof = prof.model_copy(update={"sweep": spec})
    if prof.datasets:
        raise UsageError(f"profile {prof.name!r} spans datasets; sweep one dataset at a time")
    if not prof.variants:
        raise UsageError("no row to sweep: give at least one variant")
    if prof.seconds is not None or prof.eval_every_seconds:
        raise ConfigError(f"profile {prof.name!r}: a sweep compares configurations at equal steps; replace seconds "
                          "and eval_every_seconds with steps and eval_every")
    if spec.metric not in METRIC_DIRECTIONS:
        raise ConfigError(f"profile {prof.name!r}, sweep.metric: unknown metric {spec.metric!r}; known: "
                          f"{', '.join(METRIC_DIRECTIONS)}")
    return prof, spec


@contextlib.contextmanager
def _quiet_tune() -> Iterator[None]:
    added = [name for name in _TUNE_QUIET if name not in os.environ]
    os.environ.update({name: _TUNE_QUIET[name] for name in added})
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


def _sweep_plan(prof: BenchProfile, spec: SweepSpec, out: Path, registry: Registry) -> list[PlannedTrial]:
    """Each row once (seed 0), its config and budget as a bench's, checked to be searchable."""
    plan = plan_trials(prof.model_copy(update={"seeds": 1}), out / "runs", registry)
    refuse_in_process_plugins(plan, registry, "Ray Tune")
    for entry in plan:
        steps, eval_every = entry.config.steps, entry.eval_every
        if not eval_every or steps // eval_every < 1:
            raise ConfigError(f"profile {prof.name!r}: row {entry.row!r} needs eval_every (at most its {steps} "
                              "steps) for a sweep: trials are ranked and stopped at evaluations")
        for key in spec.row_space(entry.row, entry.config.variant):
            if key.split(".")[0] not in TrainConfig.model_fields:
                raise ConfigError(f"profile {prof.name!r}, sweep space of row {entry.row!r}: {key!r} is not a "
                                  "training config key (docs/configuration.md); nested keys are dotted, e.g. "
                                  "extensions.ema.decay")
    return plan


def _tuner(row: _Row, key: str, out: Path) -> Any:
    """The Tune experiment of ``row``'s search (``key``: its spec hash), restored where one was interrupted."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
    from ray.tune.search.basic_variant import BasicVariantGenerator
    spec = row.spec
    cpus, gpus = row.entry.profile.ray_resources
    trainable = tune.with_resources(tune.with_parameters(_tune_trial, row=row), {"cpu": cpus, "gpu": gpus})
    experiment = out / "tune" / f"{row.entry.row}-{key}"  # a changed search starts afresh
    if tune.Tuner.can_restore(str(experiment)):
        return tune.Tuner.restore(str(experiment), trainable=trainable, resume_errored=True)
    most = row.max_evaluations
    scheduler = (ASHAScheduler(time_attr="training_iteration", max_t=most, grace_period=min(spec.grace_period, most),
                               reduction_factor=spec.reduction_factor) if spec.scheduler == "asha" else FIFOScheduler())
    space = spec.row_space(row.entry.row, row.entry.config.variant).items()
    pairs = ((key, *next(iter(dist.items()))) for key, dist in space)  # key, distribution, its arguments
    return tune.Tuner(trainable, param_space={key: tune.choice(args) if kind == "choice" else getattr(tune, kind)(*args)
                                              for key, kind, args in pairs},
                      tune_config=tune.TuneConfig(metric=spec.metric, scheduler=scheduler, num_samples=spec.samples,
                                                  mode="min" if METRIC_DIRECTIONS[spec.metric] else "max",
                                                  search_alg=BasicVariantGenerator(random_state=spec.search_seed)),
                      run_config=tune.RunConfig(name=experiment.name, storage_path=str(out / "tune"), verbose=0,
                                                checkpoint_config=tune.CheckpointConfig(num_to_keep=2)))


def _search(ray: Any, row: _Row, key: str, out: Path) -> dict[str, Any]:
    entry, spec = row.entry, row.spec
    cpus, gpus = entry.profile.ray_resources
    tuner = _tuner(row, key, out)
    started = time.perf_counter()
    trials, best = _trial_table(tuner.fit(), spec.metric, METRIC_DIRECTIONS[spec.metric], row.max_evaluations)
    seconds = round(time.perf_counter() - started, 1)  # of this attempt (a restored search counts from its restart)
    return {"spec_hash": key, "variant": entry.config.variant, "steps": entry.config.steps,
            "eval_every": entry.eval_every, "metric": spec.metric, "wall_seconds": seconds,
            "cluster": {"cpus": ray.cluster_resources().get("CPU", 0), "gpus": ray.cluster_resources().get("GPU", 0),
                        "cpus_per_trial": cpus, "gpus_per_trial": gpus, "driver": hardware()},
            "best": None if best is None else {k: best[k] for k in ("params", "final", "trial_id")}, "trials": trials}


def tuned_profile(profile: BenchProfile, rows: dict[str, Any], registry: Registry) -> BenchProfile:
    """``profile`` named ``NAME (tuned)``, with every row's best configuration in its ``variant_overrides``."""
    overrides = {name: dict(options) for name, options in profile.variant_overrides.items()}
    for row, found in rows.items():
        if not found.get("best"):
            continue
        # the variant's options may sit under an alias (wgan for wgan-gp)
        key = row if EXTENSION_JOINER in row else next((name for name in overrides if EXTENSION_JOINER not in name
                                                        and registry.variants.get(name).item.name == row), row)
        overrides[key] = merge(overrides.get(key, {}), nest(found["best"]["params"]))
    return profile.model_copy(update={"name": f"{profile.name} (tuned)", "variant_overrides": overrides, "sweep": None})
