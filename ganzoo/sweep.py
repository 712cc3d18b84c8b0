"""Hyperparameter sweeps on Ray Tune: a search per variant row under one equal step budget, then the tuned
configurations and the paper defaults benchmarked side by side.

A profile's ``sweep:`` section (:class:`SweepSpec`) names the search space (training config keys, dotted for
nested ones: ``lr_g``, ``betas``, ``extensions.ema.decay``), how many configurations to try per row and the
scheduler. :func:`sweep` runs, for every row of the profile, a Tune experiment whose trials each train the
row with one sampled configuration for the row's budget, evaluated every ``eval_every`` steps by the bench's
own evaluator (:func:`ganzoo.bench.make_evaluator`) and reported to Tune at each evaluation with a checkpoint;
ASHA stops the worst trials at those evaluations. It writes

- ``OUT/sweep.json``: every trial of every row (its configuration, each evaluation's scores, how it ended)
  and the best configuration per row, chosen among the trials that trained the whole budget;
- ``OUT/tuned.yaml``: the profile with each row's best configuration in its ``variant_overrides``;
- ``OUT/paper-defaults/results.json`` and ``OUT/tuned/results.json``: the bench of the profile as it is
  and of ``tuned.yaml``, same seeds and budget, for the leaderboard's "tuned" and "paper defaults" sections.

Everything is resumable: a row whose search finished is not searched again, an interrupted Tune experiment
is restored (``Tuner.restore``, unfinished and errored trials resumed from their last checkpoint), and the
two benches skip the trials they already hold. Ray is imported only when a sweep runs (``ganzoo[ray]``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import pluggy
import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator
from tqdm.auto import tqdm

from . import rundir
from .errors import ConfigError, UsageError
from .training.callbacks import Evaluation
from .training.loop import Callback, RunState
from .training.run import run_config

SWEEP_FILE = "sweep.json"
TUNED_PROFILE = "tuned.yaml"
TUNED_DIR = "tuned"
DEFAULTS_DIR = "paper-defaults"
SWEEP_FORMAT = 1
#: How a sweep trial ended: trained the whole budget, stopped early by the scheduler, or raised.
COMPLETED, STOPPED, FAILED = "completed", "stopped", "failed"
#: The sampling distributions of a search-space entry: ``{loguniform: [low, high]}`` and so on.
DISTRIBUTIONS = ("loguniform", "uniform", "choice", "randint")


class SweepSpec(BaseModel):
    """A profile's ``sweep:`` section: what to search, how many configurations, how to schedule them."""

    model_config = ConfigDict(extra="forbid")

    space: dict[str, dict[str, Any]] = Field(
        min_length=1, description="Training config key (dotted for nested keys) -> one distribution: "
                                  "{loguniform: [low, high]}, {uniform: [low, high]}, {choice: [a, b, ...]} or "
                                  "{randint: [low, high]} (high excluded).")
    variant_space: dict[str, dict[str, dict[str, Any]]] = Field(
        default_factory=dict, description="Per row or variant: entries added to (or replacing those of) space.")
    samples: int = Field(8, gt=0, description="Configurations tried per row.")
    scheduler: Literal["asha", "fifo"] = Field("asha", description="asha: stop the worst trials at each "
                                                                   "evaluation; fifo: train every trial fully.")
    metric: str = Field("fid", description="The bench metric that ranks configurations (its direction is known).")
    grace_period: int = Field(1, gt=0, description="Evaluations every trial gets before ASHA may stop it.")
    reduction_factor: float = Field(2, gt=1, description="ASHA keeps 1/reduction_factor of the trials per rung.")
    search_seed: int = Field(0, ge=0, description="Seed of the configuration sampler.")
    trial_seed: int = Field(0, ge=0, description="Training seed of every trial (the benches afterwards use the "
                                                 "profile's seeds).")

    @field_validator("space", "variant_space")
    @classmethod
    def _distributions(cls, value: dict[str, Any], info: Any) -> dict[str, Any]:
        spaces = value.values() if info.field_name == "variant_space" else [value]
        for space in spaces:
            for key, dist in space.items():
                if not isinstance(dist, dict) or len(dist) != 1 or next(iter(dist)) not in DISTRIBUTIONS:
                    raise ValueError(f"{key}: give one distribution, e.g. {{loguniform: [1.0e-5, 1.0e-3]}}; "
                                     f"known: {', '.join(DISTRIBUTIONS)}")
                (kind, args), = dist.items()
                if kind != "choice" and (not isinstance(args, list) or len(args) != 2 or not args[0] < args[1]):
                    raise ValueError(f"{key}: {kind} takes [low, high] with low < high, got {args!r}")
                if kind == "loguniform" and args[0] <= 0:
                    raise ValueError(f"{key}: loguniform needs a positive low end, got {args[0]!r}")
                if kind == "choice" and (not isinstance(args, list) or not args):
                    raise ValueError(f"{key}: choice takes a non-empty list of values")
        return value

    def row_space(self, row: str, variant: str) -> dict[str, dict[str, Any]]:
        """The space of one row: ``space`` with the row's (else its variant's) ``variant_space`` entries."""
        return {**self.space, **self.variant_space.get(row, self.variant_space.get(variant, {}))}


def nest(params: dict[str, Any]) -> dict[str, Any]:
    """Dotted keys to nested dictionaries: ``{"extensions.ema.decay": 0.99}`` -> ``{"extensions": {"ema":
    {"decay": 0.99}}}``."""
    from .config import set_path

    nested: dict[str, Any] = {}
    for key, value in params.items():
        set_path(nested, key.split("."), value)
    return nested


def _tune_space(space: dict[str, dict[str, Any]]) -> dict[str, Any]:
    from ray import tune

    made = {}
    for key, dist in space.items():
        (kind, args), = dist.items()
        made[key] = tune.choice(args) if kind == "choice" else getattr(tune, kind)(*args)
    return made


def _spec_hash(profile: Any, row: str) -> str:
    """What makes a row's search the same search: the protocol and the sweep, not the seeds of the benches nor
    where trials run."""
    data = profile.model_dump(mode="json", exclude={"name", "description", "seeds", "variants", "fid_target",
                                                    "cpus_per_trial", "gpus_per_trial"})
    return hashlib.sha256(json.dumps({"row": row, "profile": data}, sort_keys=True).encode()).hexdigest()[:16]


def _tune_trial(params: dict[str, Any], *, setup: dict[str, Any]) -> None:
    """One Tune trial (runs in a Ray worker): train the row with ``params`` for the budget, reporting each
    evaluation's scores and a checkpoint; restored from Tune's checkpoint when the trial is resumed."""
    import torch
    from ray import tune

    from .bench import make_evaluator
    from .checkpoint import latest_checkpoint, load_checkpoint
    from .config import merge, validate_config
    from .registry import get_registry

    torch.set_num_threads(setup["threads"])
    profile, entry = setup["profile"], setup["entry"]
    registry = get_registry()
    trial_dir = Path(setup["runs"]) / tune.get_context().get_trial_id()
    # the row's config as the bench resolves it, with this trial's values of the searched keys
    cfg = validate_config(merge(entry["config"], nest(params)), f"sweep trial of row {setup['row']!r}")
    cfg = cfg.model_copy(update={"out": str(trial_dir), "seed": setup["seed"]})
    state = None
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            state = load_checkpoint(latest_checkpoint(Path(folder)))
    evaluator = make_evaluator(setup["real"], profile, setup["seed"], setup["cache_dir"],
                               registry.datasets.get(profile.dataset).item.metrics)
    run_config(cfg, state, progress=False, callbacks=[Evaluation(evaluator, entry["eval_every"], at_start=False),
                                                      TuneReport()])


class TuneReport(Callback):
    """Reports each evaluation of a sweep trial to Tune, with a checkpoint to resume the trial from."""

    def on_evaluation(self, run: RunState, scores: dict[str, float]) -> None:
        from ray import tune

        from .bench import TRAIN_SECONDS

        with tempfile.TemporaryDirectory() as folder:
            run.trainer.save_checkpoint(Path(folder))
            tune.report({**scores, "step": run.step, TRAIN_SECONDS: round(run.train_seconds, 3)},
                        checkpoint=tune.Checkpoint.from_directory(folder))


def _trial_table(result_grid: Any, metric: str, lower: bool, max_evaluations: int) -> tuple[list[dict], Any]:
    """Every trial as a row of the table, and the best one of those that trained the whole budget."""
    from .bench import METRIC_DIRECTIONS, TRAIN_SECONDS

    trials, best = [], None
    for result in sorted(result_grid, key=lambda r: Path(r.path).name):  # Tune's order changes on restore
        frame = result.metrics_dataframe
        history = []
        if frame is not None and len(frame):
            keep = [c for c in frame.columns if c in ("step", TRAIN_SECONDS) or c in METRIC_DIRECTIONS]
            history = [{k: (int(v) if k == "step" else float(v)) for k, v in row.items()
                        if not (isinstance(v, float) and math.isnan(v))}
                       for row in frame[keep].to_dict("records")]
        evaluations = len(history)
        if result.error is not None:
            status, reason = FAILED, f"{type(result.error).__name__}: {str(result.error).strip().splitlines()[-1]}"
        elif evaluations >= max_evaluations:
            status, reason = COMPLETED, None
        else:
            status, reason = STOPPED, f"stopped by the scheduler after {evaluations} of {max_evaluations} evaluations"
        final = history[-1].get(metric) if history else None
        trial = {"trial_id": result.metrics.get("trial_id") if result.metrics else Path(result.path).name,
                 "params": result.config, "status": status, "reason": reason, "evaluations": history,
                 "final": final}
        trials.append(trial)
        if status == COMPLETED and final is not None and math.isfinite(final):
            if best is None or (final < best["final"] if lower else final > best["final"]):
                best = trial
    return trials, best


def sweep(
    profile: str | Path | Any,
    *,
    out: str | Path = "runs/sweep",
    variants: list[str] | None = None,
    samples: int | None = None,
    seeds: int | None = None,
    address: str | None = None,
    compare: bool = True,
    progress: bool = True,
    pm: pluggy.PluginManager | None = None,
) -> dict[str, Any]:
    """Search each row's hyperparameters on Ray Tune, then bench the tuned rows beside the paper defaults.

    ``profile`` is a bundled profile name, a YAML file or a :class:`~ganzoo.bench.BenchProfile` with a
    ``sweep`` section; ``variants``, ``samples`` (configurations per row) and ``seeds`` (of the two benches)
    override it. Runs on the Ray cluster at ``address`` (default ``RAY_ADDRESS``, else a local Ray instance),
    each trial with the profile's ``cpus_per_trial``/``gpus_per_trial``. ``compare=False`` stops after the
    search. Returns the contents of ``OUT/sweep.json``.

    Example::

        table = ganzoo.sweep("dcgan-sweep", out="runs/sweep", samples=8)
        print(table["rows"]["dcgan"]["best"])
    """
    from .bench import METRIC_DIRECTIONS, BenchProfile, load_profile

    prof = profile if isinstance(profile, BenchProfile) else load_profile(profile)
    if variants is not None:
        prof = prof.model_copy(update={"variants": variants})
    if seeds is not None:
        prof = prof.model_copy(update={"seeds": seeds})
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
    lower = METRIC_DIRECTIONS[spec.metric]
    out = Path(out).resolve()  # Tune wants an absolute storage path
    out.mkdir(parents=True, exist_ok=True)
    with rundir.run_lock(out), _quiet_tune():  # one sweep at a time writes into out
        return _sweep(prof, spec, lower, out, address, compare, progress, pm)


# Tune's own console reporting and its checkpoint-frequency advice would bury the progress bar and the table;
# a value the user set stays.
_TUNE_QUIET = {"RAY_AIR_NEW_OUTPUT": "0", "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0"}


@contextlib.contextmanager
def _quiet_tune() -> Iterator[None]:
    """Set :data:`_TUNE_QUIET` in the environment for the length of a sweep, then put it back as it was."""
    added = [name for name in _TUNE_QUIET if name not in os.environ]
    os.environ.update({name: _TUNE_QUIET[name] for name in added})
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


def _sweep(prof: Any, spec: SweepSpec, lower: bool, out: Path, address: str | None, compare: bool, progress: bool,
           pm: pluggy.PluginManager | None) -> dict[str, Any]:
    from .bench import bench, hardware, load_reference, plan_trials, portable_profile, refuse_in_process_plugins
    from .config import TrainConfig
    from .ray_cluster import check_resources, connect, trial_resources, trial_threads
    from .registry import get_registry

    registry = get_registry(pm)
    one_seed = prof.model_copy(update={"seeds": 1})
    rows = {}
    plan = plan_trials(one_seed, out / "runs", registry)
    refuse_in_process_plugins(plan, registry, pm, "Ray Tune")
    for entry in plan:  # each row's config and budget as a bench's
        steps, eval_every = entry.config.steps, entry.eval_every
        if not eval_every or steps // eval_every < 1:
            raise ConfigError(f"profile {prof.name!r}: row {entry.row!r} needs eval_every (at most its {steps} "
                              "steps) for a sweep: trials are ranked and stopped at evaluations")
        for key in spec.row_space(entry.row, entry.config.variant):
            if key.split(".")[0] not in TrainConfig.model_fields:
                raise ConfigError(f"profile {prof.name!r}, sweep space of row {entry.row!r}: {key!r} is not a "
                                  "training config key (docs/configuration.md); nested keys are dotted, e.g. "
                                  "extensions.ema.decay")
        rows[entry.row] = {"variant": entry.config.variant, "config": entry.config.model_dump(mode="json"),
                           "steps": steps, "eval_every": eval_every}

    from .results_file import load_sweep

    table = load_sweep(out / SWEEP_FILE) if (out / SWEEP_FILE).is_file() else {}  # validated: a resumed sweep
    done = table.get("rows", {})
    real = None
    ray = connect(address)
    cpus, gpus = trial_resources(prof)
    check_resources(ray, cpus, gpus, prof.device)
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
    from ray.tune.search.basic_variant import BasicVariantGenerator

    bar = tqdm(total=len(rows), desc="sweep", unit="row", disable=not progress, dynamic_ncols=True)
    results: dict[str, Any] = {}
    for row, entry in rows.items():
        spec_hash = _spec_hash(prof, row)
        if row in done and done[row].get("spec_hash") == spec_hash:
            results[row] = done[row]
            bar.update(1)
            continue
        if real is None:
            real = load_reference(registry, plan[0], progress=progress)
        bar.set_description(f"sweep {row}")
        max_evaluations = entry["steps"] // entry["eval_every"] + (1 if entry["steps"] % entry["eval_every"] else 0)
        setup = {"profile": prof, "row": row, "entry": entry, "real": real, "seed": spec.trial_seed,
                 "threads": trial_threads(prof), "cache_dir": None, "runs": str(out / "runs" / row)}
        trainable = tune.with_resources(tune.with_parameters(_tune_trial, setup=setup), {"cpu": cpus, "gpu": gpus})
        experiment = out / "tune" / f"{row}-{spec_hash}"  # a changed search starts afresh
        if tune.Tuner.can_restore(str(experiment)):
            tuner = tune.Tuner.restore(str(experiment), trainable=trainable, resume_errored=True)
        else:
            scheduler = (ASHAScheduler(time_attr="training_iteration", max_t=max_evaluations,
                                       grace_period=min(spec.grace_period, max_evaluations),
                                       reduction_factor=spec.reduction_factor)
                         if spec.scheduler == "asha" else FIFOScheduler())
            tuner = tune.Tuner(
                trainable, param_space=_tune_space(spec.row_space(row, entry["variant"])),
                tune_config=tune.TuneConfig(metric=spec.metric, mode="min" if lower else "max", scheduler=scheduler,
                                            num_samples=spec.samples,
                                            search_alg=BasicVariantGenerator(random_state=spec.search_seed)),
                run_config=tune.RunConfig(name=experiment.name, storage_path=str(out / "tune"), verbose=0,
                                          checkpoint_config=tune.CheckpointConfig(num_to_keep=2)))
        started = time.perf_counter()
        trials, best = _trial_table(tuner.fit(), spec.metric, lower, max_evaluations)
        results[row] = {"spec_hash": spec_hash, "variant": entry["variant"], "steps": entry["steps"],
                        "eval_every": entry["eval_every"], "metric": spec.metric,
                        # of this attempt (a restored search counts from its restart)
                        "wall_seconds": round(time.perf_counter() - started, 1),
                        "cluster": {"cpus": ray.cluster_resources().get("CPU", 0),
                                    "gpus": ray.cluster_resources().get("GPU", 0), "cpus_per_trial": cpus,
                                    "gpus_per_trial": gpus, "driver": hardware()},
                        "best": None if best is None else {"params": best["params"], "final": best["final"],
                                                           "trial_id": best["trial_id"]},
                        "trials": trials}
        _write(out, prof, {**done, **results})
        bar.update(1)
    bar.close()
    data = _write(out, prof, {**done, **results})

    tuned = tuned_profile(prof, data["rows"], registry)
    (out / TUNED_PROFILE).write_text(yaml.safe_dump(portable_profile(tuned), sort_keys=False))
    if compare:
        defaults = prof.model_copy(update={"name": f"{prof.name} (paper defaults)", "sweep": None})
        # the sweep's own benches follow its current search: a changed one replaces what they held
        bench(profile=defaults, out=out / DEFAULTS_DIR, executor="ray", address=address, overwrite=True,
              progress=progress, pm=pm)
        bench(profile=tuned, out=out / TUNED_DIR, executor="ray", address=address, overwrite=True, progress=progress,
              pm=pm)
    return data


def tuned_profile(profile: Any, rows: dict[str, Any], registry: Any) -> Any:
    """``profile`` with every row's best configuration merged into its ``variant_overrides`` (rows without
    a completed trial keep their defaults), named ``NAME (tuned)`` and without its sweep section."""
    from .bench import EXTENSION_JOINER
    from .config import merge

    overrides = {name: dict(options) for name, options in profile.variant_overrides.items()}
    for row, found in rows.items():
        if not found.get("best"):
            continue
        key = row
        if EXTENSION_JOINER not in row:  # the variant's options may sit under an alias (wgan for wgan-gp)
            key = next((name for name in overrides if EXTENSION_JOINER not in name
                        and registry.variants.get(name).item.name == row), row)
        overrides[key] = merge(overrides.get(key, {}), nest(found["best"]["params"]))
    return profile.model_copy(update={"name": f"{profile.name} (tuned)", "variant_overrides": overrides,
                                      "sweep": None})


def _write(out: Path, profile: Any, rows: dict[str, Any]) -> dict[str, Any]:
    from .bench import portable_profile
    from .checkpoint import atomic_write_bytes

    data = {"format": SWEEP_FORMAT, "profile": portable_profile(profile), "rows": rows}
    text = json.dumps(data, indent=2) + "\n"
    atomic_write_bytes(out / SWEEP_FILE, lambda f: f.write(text.encode()))
    return data
