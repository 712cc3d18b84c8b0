"""Render a Markdown leaderboard from ``results.json`` files, and nothing else: the same results give the same
bytes. Nothing in a results file is trusted: each is checked on load (:mod:`ganzoo.bench.records`), every string
from it is written as inert text (:func:`text`, :func:`code`) and every link percent-encoded (:func:`url`)."""

from __future__ import annotations

import html
import math
import os
import statistics
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..metric_keys import BY_KEY, FID, IMAGE_METRIC_KEYS, METRICS
from ..outputs import atomic_file, check_output
from ..sweep.spec import DEFAULTS_DIR, SWEEP_FILE, TUNED_DIR
from .records import EVAL_SECONDS, RESULTS_FILE, TRAIN_SECONDS, ResultsFile, Trial, load_sweep, read_results

#: A table column: (metric key, column title, lower is better, decimals).
Column = tuple[str, str, bool, int]
# every leaderboard metric of ganzoo.metric_keys; a section shows those its trials scored
COLUMNS: list[Column] = [
    (m.key, f"{m.title} {'↓' if m.lower_is_better else '↑'}", m.lower_is_better, m.decimals)
    for m in METRICS if m.column
]


#: Characters that start Markdown structure mid-line, and the backslash: escaped by :func:`text` (``_`` is kept).
MARKDOWN_SPECIALS = "\\`*{}[]#|"
_ESCAPE = str.maketrans({c: "\\" + c for c in MARKDOWN_SPECIALS})


def _one_line(value: object) -> str:
    return "".join(c if c.isprintable() else " " for c in str(value))


def text(value: object) -> str:
    """``value`` as inert Markdown on one line: HTML entities, :data:`MARKDOWN_SPECIALS` escaped."""
    return html.escape(_one_line(value), quote=False).translate(_ESCAPE)


def code(value: object) -> str:
    """``value`` as an inline code span, or as :func:`text` where a backtick or a pipe would end it."""
    line = _one_line(value)
    return text(line) if "`" in line or "|" in line or not line.strip() else f"`{line}`"


def url(link: str) -> str:
    """A relative link percent-encoded for a Markdown link target (no scheme, space or bracket survives)."""
    return urllib.parse.quote(link, safe="/+")


def mean_std(values: list[float], decimals: int) -> str:
    """``mean ± std`` of the finite ``values`` at ``decimals`` places: the one value alone, or ``–`` for none."""
    values = [v for v in values if math.isfinite(v)]
    if not values:
        return "–"
    mean = statistics.fmean(values)
    if len(values) == 1:
        return f"{mean:.{decimals}f}"
    return f"{mean:.{decimals}f} ± {statistics.stdev(values):.{decimals}f}"


def _group(trials: list[Trial]) -> dict[tuple[str, str, str], list[Trial]]:
    groups: dict[tuple[str, str, str], list[Trial]] = {}
    for t in trials:
        key = (t.protocol.profile, t.protocol.dataset, t.variant)
        groups.setdefault(key, []).append(t)
    return groups


def section_columns(trials: list[Trial]) -> list[Column]:
    """A section's metric columns: those of :data:`COLUMNS` its trials scored, then their other keys."""
    scored = {key for t in trials for key in (t.final.values if t.final else {})}
    if not scored:  # nothing finished: the image metrics' columns, empty
        return [c for c in COLUMNS if c[0] in IMAGE_METRIC_KEYS]
    known = {m.key for m in METRICS}
    return [c for c in COLUMNS if c[0] in scored] + [(k, text(k), False, 3) for k in sorted(scored - known)]


def _ranker(primary: Column) -> Callable[[tuple[str, list[Trial]]], tuple[float, str]]:
    key, _, lower, _ = primary

    def rank(row: tuple[str, list[Trial]]) -> tuple[float, str]:
        """Rows by the mean final value of the section's first metric, best first; unfinished rows last."""
        values = [t.final.values[key] for t in row[1] if t.status == "ok" and t.final and key in t.final.values]
        if not values:
            return (float("inf"), row[0])
        mean = statistics.fmean(values)
        return (mean if lower else -mean, row[0])

    return rank


def seconds_to_fid(trial: Trial, target: float) -> float | None:
    """Seconds of training before the first evaluation after step 0 with FID at most ``target`` (else ``None``)."""
    for h in trial.history:
        if h.step > 0 and h.values.get(FID, float("inf")) <= target and TRAIN_SECONDS in h.values:
            return h.values[TRAIN_SECONDS]
    return None


def evaluation_seconds(trial: Trial) -> float | None:
    """Seconds all evaluations of ``trial`` took (``None`` for a history without per-evaluation timings)."""
    timed = [h.values[EVAL_SECONDS] for h in trial.history if EVAL_SECONDS in h.values]
    return sum(timed) if timed and len(timed) == len(trial.history) else None


def _time_to_quality(trials: list[Trial], target: float) -> str:
    reached = [s for s in (seconds_to_fid(t, target) for t in trials) if s is not None]
    cell = mean_std(reached, 0) + " s" if reached else "not reached"
    return cell if len(reached) in (0, len(trials)) else f"{cell} ({len(reached)} of {len(trials)} seeds)"


def _link(target: Path, out_dir: Path) -> str:
    return os.path.relpath(target.resolve(), out_dir)


#: The page's introduction, above its sections.
INTRO = [
    "# Leaderboard",
    "",
    "<!-- Generated by `ganzoo leaderboard` from the results files listed below. Do not edit by hand. -->",
    "",
    "Final scores after each variant's budget (mean ± std over seeds where there are several), best FID first.",
    "FID, KID and",
    "precision/recall use the features of the feature extractor named under each table; IS uses its logits;",
    "*Classes* counts the digit classes covered by at least 1% of the samples and *Class KL* is the KL",
    "divergence of the predicted-class histogram from uniform (0 is balanced, 2.303 is a single class).",
    "*Class agreement* (class-conditional variants only) is the share of samples the same classifier assigns",
    "to the class they were generated for. A row such as `dcgan+ema` is the variant trained with those",
    "extensions added. Datasets with known modes (Stacked MNIST, the 2-D Gaussian mixtures) add their own",
    "metrics: *Modes* covered, *Mode KL* (of the mode histogram from uniform) and, for the mixtures, the",
    "*High-quality share* of samples near a mode; non-image sections are scored by those alone.",
    "*Untrained FID* scores the same generator before its first step. *Train time* is the seconds of",
    "training, *Wall time* the whole trial with its evaluations, on the hardware named in the row.",
    "*Eval time* (results that record it) is the seconds all of a trial's evaluations took, with their share",
    "of its training time. Where a profile names an FID target, *Train s to FID ≤ X* is the seconds of",
    "training before the first evaluation at or below it (so it is as coarse as the evaluation interval).",
    "A sweep (`ganzoo sweep`) shows every configuration it tried, the best one marked ★, and then the",
    "benches of its paper defaults and of its tuned configuration under the same budget and seeds.",
    "`ganzoo bench --reproduce RESULTS` re-runs a section's results file and says, per row and metric, whether",
    "the new figures are identical (the same machine type) or within the seed spread shown here. See",
    "[benchmark methodology](benchmarks.md) for the protocol.",
    "",
]


def _sources(results: list[str | Path]) -> list[tuple[Path, dict[str, Any] | ResultsFile]]:
    """Each results file of ``results`` checked; a sweep directory as its ``sweep.json``, then its two benches."""
    sources: list[tuple[Path, dict[str, Any] | ResultsFile]] = []
    for item in results:
        path = Path(item)
        if path.is_dir() and (path / SWEEP_FILE).is_file():  # a sweep: its trial table, then its benches
            sources.append((path / SWEEP_FILE, load_sweep(path / SWEEP_FILE)))
            sources += [(path / sub / RESULTS_FILE, read_results(path / sub)) for sub in (DEFAULTS_DIR, TUNED_DIR)
                        if (path / sub / RESULTS_FILE).is_file()]
            continue
        path = path / RESULTS_FILE if path.is_dir() else path
        sources.append((path, read_results(path)))
    return sources


def render(results: list[str | Path], out: str | Path) -> str:
    """The Markdown page for ``results`` (files or bench directories), with links relative to ``out``."""
    out_dir = Path(out).resolve().parent
    lines = list(INTRO)
    for path, data in _sources(results):
        link = _link(path, out_dir)  # a path the user named, yet written as inert as a results file's strings
        if not isinstance(data, ResultsFile):  # a sweep's trial table
            lines += sweep_table(data, link)
            continue
        groups = _group(data.trials)
        for profile, dataset in sorted({(k[0], k[1]) for k in groups}):
            rows = [(k[2], v) for k, v in groups.items() if (k[0], k[1]) == (profile, dataset)]
            lines += _section(profile, dataset, rows, link, data.profile.fid_target)
            for variant, trials in rows:
                lines += _pictures(variant, trials, path, out_dir)
    return "\n".join(lines).rstrip() + "\n"


def _budget_text(rows: list[tuple[str, list[Trial]]]) -> str:
    budget = rows[0][1][0].protocol.budget
    steps = {t.protocol.budget.steps for _, trials in rows for t in trials}
    if budget.seconds:
        return (f"{budget.seconds:g} s of training per trial (a time budget: other hardware "
                "trains a different number of steps)")
    if len(steps) == 1:
        return f"{budget.steps} generator steps per trial"
    return "generator steps per row (the Steps column)"


def _section(profile: str, dataset: str, rows: list[tuple[str, list[Trial]]], link: str,
             target: float | None) -> list[str]:
    """One profile's and dataset's table: its heading, protocol, and a row per variant, best first."""
    proto = rows[0][1][0].protocol
    fx = proto.feature_extractor
    columns = section_columns([t for _, trials in rows for t in trials])
    unit = "images" if fx else "samples"  # non-image data: points, vectors
    primary = columns[0]  # FID for images; else the dataset's first metric
    every = [t for _, trials in rows for t in trials if t.status == "ok"]
    timed = any(evaluation_seconds(t) is not None for t in every)
    target = target if timed else None
    extra = ([f"Train s to FID ≤ {target:g}"] if target else []) + (["Eval time"] if timed else [])
    lines = [f"## {text(dataset)} — profile {code(profile)}", "",
             f"Results: [{code(link)}]({url(link)}). Budget: {_budget_text(rows)}. Reference: {proto.num_real} real "
             f"{unit} ({text(proto.real_split)} split); {proto.num_fake} generated {unit} per evaluation. "
             + (f"Feature extractor: {code(fx.name)} (weights sha256 {code(fx.sha256[:16] + '…')}). " if fx
                else "Scored by the dataset's own metrics (the samples are not images: no feature extractor). ")
             + f"torch {text(proto.versions.torch)}, torch-fidelity {text(proto.versions.torch_fidelity)}, ganzoo "
             f"{text(proto.versions.ganzoo)}.", "",
             "| Variant | Seeds | " + " | ".join(c[1] for c in columns) + f" | Untrained {primary[1].rstrip(' ↓↑')} "
             "| Steps | Train time | Wall time | " + "".join(f"{e} | " for e in extra) + "img/s | Hardware | Status |",
             "|" + "---|" * (len(columns) + 9 + len(extra))]
    rows.sort(key=_ranker(primary))
    lines += [_row(variant, trials, columns, target, timed) for variant, trials in rows]
    return [*lines, ""]


def _row(variant: str, trials: list[Trial], columns: list[Column], target: float | None, timed: bool) -> str:
    """A variant's line of its section's table: the mean ± std over its finished seeds of each column."""
    ok = [t for t in trials if t.status == "ok" and t.final]
    primary = columns[0]
    cells = [mean_std([t.final.values[key] for t in ok if key in t.final.values], dec) for key, _, _, dec in columns]
    untrained = mean_std([t.untrained.values[primary[0]] for t in trials
                          if t.untrained and primary[0] in t.untrained.values], primary[3])
    steps = mean_std([t.steps for t in ok], 0)
    train = mean_std([t.train_seconds for t in ok], 0)
    wall = mean_std([t.wall_seconds for t in ok if t.wall_seconds is not None], 0)
    extra_cells = []
    if target:
        extra_cells.append(_time_to_quality(ok, target))
    if timed:
        spent = [(evaluation_seconds(t), t.train_seconds) for t in ok]
        spent = [(e, train) for e, train in spent if e is not None]
        share = [e / train for e, train in spent if train]
        extra_cells.append(f"{mean_std([e for e, _ in spent], 0)} s ({statistics.fmean(share):.1%} "
                           "of train)" if share else "–")
    ips = mean_std([t.images_per_second for t in ok], 0)
    hw = trials[0].hardware
    hardware = text((hw and hw.gpu) or f"{(hw and hw.cpu) or '?'}, {(hw and hw.threads) or '?'} threads")
    return (f"| {text(variant)} | {len(trials)} | " + " | ".join(cells)
            + f" | {untrained} | {steps} | {train} s | {wall} s | "
            + "".join(f"{c} | " for c in extra_cells) + f"{ips} | {hardware} | {_status(trials)} |")


def _status(trials: list[Trial]) -> str:
    statuses = []
    for t in trials:
        if t.status == "diverged":
            statuses.append(f"diverged at step {t.diverged_at} (seed {t.seed})")
        elif t.status != "ok":
            reason = (str(t.reason).strip().splitlines() or ["no reason recorded"])[0]
            statuses.append(f"{text(t.status)} (seed {t.seed}): {text(reason)}")
    return "; ".join(statuses) or "ok"


def _pictures(variant: str, trials: list[Trial], path: Path, out_dir: Path) -> list[str]:
    """Every seed's sample grid (seed variance shows), then the first trial's plots, under a heading."""
    shown = [(t, "samples", f"samples, seed {t.seed}" if len(trials) > 1 else "samples") for t in trials]
    shown += [(trials[0], key, alt) for key, alt in (("metrics_plot", "metrics vs step"), ("loss_plot", "losses"))]
    pictures = [f"![{text(variant)} {alt}]({url(_link(path.parent / t.artifacts[key], out_dir))})"
                for t, key, alt in shown if key in t.artifacts]
    seeds = "seeds " + ", ".join(str(t.seed) for t in trials) if len(trials) > 1 else f"seed {trials[0].seed}"
    return [f"### {text(variant)} ({seeds})", "", " ".join(pictures), ""] if pictures else []


def sweep_table(data: dict[str, Any], link: str) -> list[str]:
    """The Markdown of a ``sweep.json``: per row, every trial's configuration, how it ended and its score."""
    profile = data["profile"]
    spec = profile["sweep"]
    metric = BY_KEY[spec["metric"]]
    lines = [f"## {text(profile['dataset'])} — sweep {code(profile['name'])}", "",
             f"Results: [{code(link)}]({url(link)}). Ray Tune, scheduler `{spec['scheduler']}` (grace period "
             f"{spec['grace_period']} evaluation, reduction factor {spec['reduction_factor']:g}), "
             f"{spec['samples']} configurations per row drawn with seed {spec['search_seed']}, each trained with "
             f"seed {spec['trial_seed']} and ranked by {metric.title} "
             f"({'lower' if metric.lower_is_better else 'higher'} is better) on {profile['num_fake']} generated "
             "images at each evaluation. The best configuration (★) is the best of those that trained the whole "
             "budget; the sections `(paper defaults)` and `(tuned)` below bench both with the profile's seeds.", ""]
    for row, found in data["rows"].items():
        keys = list(dict.fromkeys(k for t in found["trials"] for k in t["params"]))
        best = (found.get("best") or {}).get("trial_id")
        cluster = found.get("cluster")
        took = (f" The search took {found['wall_seconds']:.0f} s of wall time on {cluster['cpus']:g} CPUs "
                f"({cluster['cpus_per_trial']:g} per trial; driver: {text(cluster['driver'].get('cpu') or '?')})."
                if found.get("wall_seconds") is not None and cluster else "")
        lines += [f"**{text(row)}**: {found['steps']} generator steps, evaluated every {found['eval_every']} "
                  f"steps.{took}", "", "| Trial | " + " | ".join(code(k) for k in keys)
                  + f" | Status | Steps | Train time | {metric.title} |", "|" + "---|" * (len(keys) + 5)]
        for t in found["trials"]:
            params = [_param(t["params"].get(k)) for k in keys]
            last = t["evaluations"][-1] if t["evaluations"] else {}
            score = f"{t['final']:.{metric.decimals}f}" if t["final"] is not None else "–"
            trained = f"{last['train_seconds']:.0f} s" if "train_seconds" in last else "–"
            lines.append(f"| {text(t['trial_id'])}{' ★' if t['trial_id'] == best else ''} | " + " | ".join(params)
                         + f" | {text(t['status'])} | {last.get('step', 0)} | {trained} | {score} |")
        lines.append("")
    return lines


def _param(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, list) and all(v is None or isinstance(v, int | float) for v in value):
        return str(value)  # numbers, as Tune drew them (betas): nothing in it can start Markdown
    return "–" if value is None else text(value)


def write_leaderboard(results: list[str | Path], out: str | Path, overwrite: bool = False) -> Path:
    """Write :func:`render` into ``out`` (under :mod:`ganzoo.outputs`' rule) and return its path."""
    out = check_output(out, overwrite, option="-o")
    page = render(results, out)
    with atomic_file(out) as tmp:
        tmp.write_text(page)
    return out
