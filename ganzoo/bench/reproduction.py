"""Re-run a committed benchmark and say, per row and metric, whether the new figures match the committed ones:
**identical** (every re-run seed bit for bit: expected on the same machine type), **within spread** (the re-run
mean in the 95% prediction interval of the committed seeds, ``mean ± t(0.975, n-1) · std · sqrt(1/m + 1/n)``:
expected elsewhere) or **outside spread**. A row reproduces when its FID (else its first metric) is identical or
within spread and every trial finished; a row with nothing to compare is ``not compared`` and fails."""

from __future__ import annotations

import math
import os
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import FORMER_DEFAULTS, merge
from ..errors import UsageError
from ..metric_keys import FID, METRICS
from ..registry import get_registry
from .harness import bench
from .plan import EXTENSION_JOINER, plan_trials
from .profile import BenchProfile
from .records import Trial, TrialRecord, read_results

#: The prediction interval's coverage: a re-run from another machine falls outside it 5% of the time by chance.
CONFIDENCE = 0.95
IDENTICAL = "identical"
WITHIN = "within spread"
OUTSIDE = "outside spread"
MISSING = "missing"
#: A committed row with no finished trial scoring a compared metric.
NOT_COMPARED = "not compared"
#: Metrics compared: every leaderboard column.
COMPARED = tuple(m.key for m in METRICS if m.column)


@dataclass(frozen=True)
class Comparison:
    """One row's one metric: committed and re-run values by seed, the committed spread and the verdict."""
    variant: str
    metric: str
    committed: dict[int, float]  # seed -> value, every committed seed
    new: dict[int, float]  # seed -> value, the re-run seeds
    low: float  # the prediction interval for the re-run mean
    high: float
    verdict: str

    @property
    def committed_mean(self) -> float:
        return statistics.fmean(self.committed.values())

    @property
    def committed_std(self) -> float:
        return statistics.stdev(self.committed.values()) if len(self.committed) > 1 else 0.0

    @property
    def new_mean(self) -> float:
        return statistics.fmean(self.new.values()) if self.new else math.nan


@dataclass
class Reproduction:
    """What :func:`reproduce` found: a comparison per row and metric, and the rows that did not reproduce."""
    results: Path  # the committed results file
    out: Path  # the re-run's bench directory
    seeds: list[int]
    comparisons: list[Comparison] = field(default_factory=list)
    failed_trials: list[str] = field(default_factory=list)  # "row seed N: reason"
    committed_machine: list[str] = field(default_factory=list)  # machine types the committed trials ran on
    machine: list[str] = field(default_factory=list)  # and the re-run's
    expected_rows: list[str] = field(default_factory=list)  # the committed rows asked for, compared or not

    @property
    def same_machine_type(self) -> bool:
        """The re-run used the committed trials' machine type: its figures should then be identical."""
        return bool(self.machine) and set(self.machine) == set(self.committed_machine)

    @property
    def rows(self) -> dict[str, str]:
        """Row -> the verdict on its FID (else its first metric), ``missing`` when a re-run trial did not finish,
        ``not compared`` for a row without a committed score."""
        verdicts: dict[str, str] = dict.fromkeys(self.expected_rows, NOT_COMPARED)
        compared: set[str] = set()
        for c in self.comparisons:  # FID where a row has it, else its first compared metric
            if c.metric == FID or c.variant not in compared:
                verdicts[c.variant] = c.verdict
                compared.add(c.variant)
        for line in self.failed_trials:
            verdicts[line.split(" seed ")[0]] = MISSING
        return verdicts

    @property
    def reproduced(self) -> bool:
        """Something was compared and every row is identical or within spread."""
        verdicts = self.rows
        return bool(verdicts) and all(v in (IDENTICAL, WITHIN) for v in verdicts.values())


def machine_type(trial: TrialRecord) -> str:
    """What a trial's figures depend on besides config and seed (CPU, threads, GPU, torch), as one line."""
    hw = trial.get("hardware", {})
    torch_version = trial.get("protocol", {}).get("versions", {}).get("torch")
    return (f"{hw.get('gpu') or hw.get('cpu')}, {hw.get('cpu_capability', 'instruction set not recorded')}, "
            f"{hw.get('threads')} threads, torch {torch_version}")


def prediction_interval(values: list[float], m: int) -> tuple[float, float]:
    """The ``CONFIDENCE`` prediction interval for the mean of ``m`` new draws from the committed ``values``."""
    from scipy.stats import t
    values = [v for v in values if math.isfinite(v)]
    if not values:
        return math.nan, math.nan
    mean, n = statistics.fmean(values), len(values)
    if n < 2:
        return mean, mean
    half = float(t.ppf(0.5 + CONFIDENCE / 2, n - 1)) * statistics.stdev(values) * math.sqrt(1 / m + 1 / n)
    return mean - half, mean + half


def row_label(trial: TrialRecord, datasets: int = 1) -> str:
    """A trial's row as reports name it, prefixed by its dataset where ``datasets`` > 1 (``ring-8/vanilla``)."""
    return f"{_dataset(trial)}/{trial['variant']}" if datasets > 1 else trial["variant"]


def _dataset(trial: TrialRecord) -> str | None:
    return trial.get("protocol", {}).get("dataset")


def compare(committed: list[TrialRecord], new: list[TrialRecord], datasets: int | None = None) -> list[Comparison]:
    """Compare two lists of trial records row by row (:func:`row_label`) and metric by metric."""
    comparisons = []
    datasets = datasets or len({_dataset(t) for t in committed})
    for row in dict.fromkeys(row_label(t, datasets) for t in committed):
        old = [t for t in committed if row_label(t, datasets) == row and t["status"] == "ok"]
        rerun = [t for t in new if row_label(t, datasets) == row and t["status"] == "ok"]
        for metric in COMPARED:
            before = {t["seed"]: t["final"][metric] for t in old if metric in t["final"]}
            after = {t["seed"]: t["final"][metric] for t in rerun if metric in t["final"]}
            if not before:
                continue
            low, high = prediction_interval(list(before.values()), len(after)) if after else (math.nan, math.nan)
            identical = all(seed in before and before[seed] == value for seed, value in after.items())
            verdict = (MISSING if not after else IDENTICAL if identical
                       else WITHIN if low <= statistics.fmean(after.values()) <= high else OUTSIDE)
            comparisons.append(Comparison(row, metric, before, after, low, high, verdict))
    return comparisons


def pin_former_defaults(profile: BenchProfile, committed: list[TrialRecord]) -> BenchProfile:
    """``profile`` with each :data:`~ganzoo.config.FORMER_DEFAULTS` key that a row would now resolve otherwise than
    its ``committed`` trials ran pinned, for that row, to their value (in ``variant_overrides``)."""
    registry = get_registry()
    pins: dict[str, dict[str, dict[str, Any]]] = {}  # dataset -> row -> keys
    for entry in plan_trials(profile, Path("."), registry):
        dataset = entry.profile.dataset
        recorded = [t["protocol"]["config"] for t in committed
                    if t["variant"] == entry.row and _dataset(t) in (dataset, None)]
        for key, former in FORMER_DEFAULTS.items():
            values = [c.get(key, former) for c in recorded]
            if values and all(v == values[0] for v in values) and getattr(entry.config, key) != values[0]:
                pins.setdefault(dataset, {}).setdefault(entry.row, {})[key] = values[0]
    if not pins:
        return profile
    def pinned(part: BenchProfile) -> dict[str, Any]:
        overrides = {name: dict(options) for name, options in part.variant_overrides.items()}
        for row, keys in pins.get(part.dataset, {}).items():
            # a variant's options may sit under an alias (wgan for wgan-gp): the row's own entry takes them over
            same = [name for name in overrides if EXTENSION_JOINER not in name and name in registry.variants
                    and registry.variants.get(name).item.name == row]
            overrides[row] = merge(overrides.get(row, overrides[same[0]] if same else {}), keys)
        return overrides
    if not profile.datasets:
        return profile.model_copy(update={"variant_overrides": pinned(profile)})
    datasets = dict(profile.datasets)
    for part in profile.parts():
        if part.dataset in pins:
            datasets[part.dataset] = {**datasets[part.dataset], "variant_overrides": pinned(part)}
    return profile.model_copy(update={"datasets": datasets})


def reproduce(results: str | Path, *, out: str | Path | None = None, seeds: int | None = None,
              variants: list[str] | None = None, feature_extractor_weights: str | Path | None = None, jobs: int = 1,
              progress: bool = True) -> Reproduction:
    """Re-run the benchmark stored in ``results`` (a ``results.json`` or its directory) and compare.
    ``seeds`` re-runs the first N committed seeds, ``variants`` those rows, with the profile's ``threads`` (else
    the recorded ones where the cores allow). ``feature_extractor_weights`` says where the weights file is here.
    The re-run goes to ``out`` (default ``runs/reproduce/<profile>``) and continues there if interrupted. Example::

        report = ganzoo.reproduce("benchmarks/results/default", seeds=1)
        print(report.reproduced, report.rows)
    """
    loaded = read_results(results)
    path, profile, committed = loaded.path, loaded.profile, loaded.trials
    rows = list(dict.fromkeys(t.variant for t in committed))
    unknown = [v for v in variants or () if v not in rows]
    if unknown:
        raise UsageError(f"{str(path)!r} has no row {', '.join(map(repr, unknown))}; its rows: {', '.join(rows)}")
    rows = [r for r in rows if r in variants] if variants else rows
    most = max(part.seeds for part in profile.parts())
    if seeds is not None and not 1 <= seeds <= most:
        raise UsageError(f"{str(path)!r} has seeds 0..{most - 1}; --seeds must be 1 to {most}")
    run_seeds = seeds or most
    out = Path(out) if out is not None else Path("runs/reproduce") / profile.name
    if out.resolve() == path.parent.resolve():
        raise UsageError(f"the re-run would overwrite the committed results in {str(out)!r}; give another --out")
    mine = [t for t in committed if t.variant in rows]
    if not any(key in t.final.values for t in mine if t.status == "ok" and t.final for key in COMPARED):
        raise UsageError(f"nothing to compare: no finished trial of {str(path)!r} (rows {', '.join(rows)}) recorded "
                         f"a final score ({', '.join(COMPARED)}); a reproduction needs committed figures")
    datasets = len({t.protocol.dataset for t in committed})
    records = [r for r in loaded.data["trials"] if r["variant"] in rows]  # as written: compared with the re-run's
    rerun_profile = pin_former_defaults(_rerun_profile(profile, committed, rows, run_seeds, feature_extractor_weights),
                                        records)
    # a profile without threads re-runs with the recorded ones, where the cores allow
    counts = {t.hardware.threads if t.hardware else None for t in mine}
    recorded = counts.pop() if len(counts) == 1 and profile.threads is None else None
    threads = recorded if recorded is not None and recorded * jobs <= (os.cpu_count() or 1) else None
    rerun = bench(profile=rerun_profile, out=out, jobs=jobs, threads=threads, progress=progress)["trials"]
    return Reproduction(path, out, list(range(run_seeds)), compare(records, rerun, datasets),
                        [f"{row_label(t, datasets)} seed {t['seed']}: {t['status']}, {t['reason']}"
                         for t in rerun if t["status"] != "ok"], sorted({machine_type(t) for t in records}),
                        sorted({machine_type(t) for t in rerun if t.get("hardware")}),
                        list(dict.fromkeys(row_label(t, datasets) for t in records)))


def _rerun_profile(profile: BenchProfile, committed: list[Trial], rows: list[str], run_seeds: int,
                   weights: str | Path | None) -> BenchProfile:
    """The committed ``profile`` restricted to ``rows`` and ``run_seeds`` (at most a dataset's own), weights here."""
    update: dict[str, Any] = {"variants": rows, "seeds": run_seeds}
    if weights is not None:
        update["feature_extractor_weights"] = Path(weights).expanduser()
    if profile.datasets:  # each dataset re-runs the rows it has of those asked for, with its own seeds
        part_seeds = {part.dataset: part.seeds for part in profile.parts()}
        present = {(t.variant, t.protocol.dataset) for t in committed}
        parts = {name: {**changes, "seeds": min(run_seeds, part_seeds[name]),
                        "variants": [r for r in rows if (r, name) in present]}
                 for name, changes in profile.datasets.items()}
        for changes in parts.values():  # where the weights file is here, for a dataset naming its own too
            if weights is not None and "feature_extractor_weights" in changes:
                changes["feature_extractor_weights"] = str(Path(weights).expanduser())
        update["datasets"] = {name: changes for name, changes in parts.items() if changes["variants"]}
    return profile.model_copy(update=update)
