"""Render a Markdown leaderboard and its figures from ``results.json`` files, and nothing else: the same results
give the same bytes. Nothing in a results file is trusted: each is checked on load (:mod:`ganzoo.bench.records`),
every string from it is written as inert text (``text`` and ``code`` of :mod:`ganzoo.bench.sections`), every link
percent-encoded (:func:`url`), and a heading's id or a figure's name keeps only letters, digits and hyphens of it
(:func:`slug`).

The page opens with the headline (:mod:`ganzoo.bench.headline`); then a section per profile and dataset: a caption
with what its rows share, a table of at most :data:`MAX_COLUMNS` columns, one image of every row's samples side by
side, FID against seconds of training where evaluations are timed, and behind a ``<details>`` the provenance and
every seed's pictures. The figures go into a folder beside the page (:data:`FIGURES`)."""

from __future__ import annotations

import itertools
import math
import os
import re
import statistics
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

from ..metric_keys import BY_KEY, CLASSES_COVERED, FID, KID_MEAN, MODES, PRECISION, RECALL
from ..outputs import atomic_file, check_output
from ..sweep.spec import DEFAULTS_DIR, FAILED, STOPPED, SWEEP_FILE, TUNED_DIR
from .records import RESULTS_FILE, TRAIN_SECONDS, ResultsFile, Trial, load_sweep, read_results
from .sections import (
    COLLAPSE_SHARE,
    TABLE_KEYS,
    Section,
    SweepSection,
    code,
    finished,
    hardware,
    mean,
    seconds_to_fid,
    text,
    timed,
)

#: The most columns a section's table has.
MAX_COLUMNS = 8
#: The folder of a page's figures, beside it (``leaderboard.md``: ``leaderboard-figures/``).
FIGURES = "{stem}-figures"

def url(link: str) -> str:
    """A relative link percent-encoded for a Markdown link target (no scheme, space or bracket survives)."""
    return urllib.parse.quote(link, safe="/+")


def slug(value: str) -> str:
    """``value`` as a heading id or a file name: lower-case ASCII letters, digits and hyphens, at most 60."""
    return re.sub(r"[^a-z0-9]+", "-", value.lower()).strip("-")[:60].strip("-") or "section"


def mean_std(values: list[float], decimals: int) -> str:
    """``mean ± std`` of the finite ``values`` at ``decimals`` places: the one value alone, or ``–`` for none."""
    values = [v for v in values if math.isfinite(v)]
    if not values:
        return "–"
    shown = f"{statistics.fmean(values):.{decimals}f}"
    return shown if len(values) == 1 else f"{shown} ± {statistics.stdev(values):.{decimals}f}"


def spread(values: list[float], decimals: int) -> str:
    """:func:`mean_std` for a table cell: the spread in small type, on the mean's line."""
    mean, _, std = mean_std(values, decimals).partition(" ± ")
    return f"{mean}&nbsp;<small>±&nbsp;{std}</small>" if std else mean


def budget(trials: list[Trial]) -> str:
    b = trials[0].protocol.budget
    return f"{b.seconds:g} s" if b.seconds else f"{b.steps:,} steps"


def _columns(section: Section) -> list[tuple[str, Callable[[list[Trial]], str]]]:
    """A section's metric columns (:data:`TABLE_KEYS` its trials scored, or its own keys), the seconds to its FID
    target and the seconds of training: :data:`MAX_COLUMNS` with the variant's."""
    scored = section.scored
    keys = [k for k in TABLE_KEYS if k in scored] if scored else [FID, KID_MEAN, PRECISION]
    drop = ({CLASSES_COVERED} if MODES in keys else set()) | (set(TABLE_KEYS[-2:]) if FID in keys else set())
    keys = [k for k in keys if k not in drop] or sorted(scored)
    target = section.target if all(timed(trials) for _, trials in section.rows) else None
    columns: list[tuple[str, Callable[[list[Trial]], str]]] = []  # a title and a row's cell
    for key in keys[:MAX_COLUMNS - 2 - bool(target)]:
        info = BY_KEY.get(key)
        if key == PRECISION:
            columns.append(("Precision / recall ↑", lambda ts: "&nbsp;/&nbsp;".join(
                "–" if (m := mean(ts, k)) is None else f"{m:.3f}" for k in (PRECISION, RECALL))))
        else:
            title = f"{info.title} {'↓' if info.lower_is_better else '↑'}" if info else text(key)
            columns.append((title, lambda ts, key=key, d=info.decimals if info else 3: spread(
                [t.final.values[key] for t in finished(ts) if key in t.final.values], d)))
    if target:
        columns.append((f"Train s to FID ≤ {target:g}", lambda ts: _time_to_quality(finished(ts), target)))
    return [*columns, ("Train s", lambda ts: spread([t.train_seconds for t in finished(ts)], 0))]


def _seeds(n: int) -> str:
    return f"{n} seed{'' if n == 1 else 's'}"


def _time_to_quality(trials: list[Trial], target: float) -> str:
    reached = [s for s in (seconds_to_fid(t, target) for t in trials) if s is not None]
    cell = spread(reached, 0) if reached else "not reached"
    return cell if len(reached) in (0, len(trials)) else f"{cell} <small>({len(reached)} of {len(trials)})</small>"


def _link(target: Path, out_dir: Path) -> str:
    return os.path.relpath(target.resolve(), out_dir)


INTRO = ["# Leaderboard", "", "<!-- Generated by `ganzoo leaderboard` from the results files each section links. "
         "Do not edit by hand. -->", ""]
#: The page's last section: how to read it.
DEFINITIONS = [
    "## Definitions { #definitions }",
    "",
    "Each table row is one variant (`dcgan+ema` is dcgan trained with the `ema` extension), its figures the mean",
    "over its seeds with their standard deviation in small type, best first. FID, KID and precision/recall use the",
    "features of the feature extractor named in the section's details. *Classes* counts the digit classes covered",
    "by at least 1% of the samples; *Class agreement* (class-conditional variants) is the share of samples the",
    "classifier reads as the class they were drawn for. Datasets with known modes (Stacked MNIST, the 2-D Gaussian",
    "mixtures) count the *Modes* covered, the *Mode KL* of the mode histogram from uniform and, for the mixtures,",
    "the *High-quality share* of samples near a mode; non-image sections are scored by those alone.",
    "",
    f"A trial is *collapsed* (⚠) where it covers at most {COLLAPSE_SHARE:.0%} of the classes its dataset's plugin",
    "registers (`num_classes`; the modes, for a dataset with modes). *Train s* is the seconds of training on the",
    "hardware named in the section's caption; where a profile names",
    "an FID target, *Train s to FID ≤ X* is the seconds before the first evaluation at or below it, as coarse as",
    "the evaluation interval. Inception score, class KL, the untrained generator's scores, wall time and",
    "throughput are in each section's results file.",
    "",
    "A sweep (`ganzoo sweep`) shows every configuration it tried, the best one marked ★, then the benches of its",
    "paper defaults and of its tuned configuration. `ganzoo bench --reproduce RESULTS` re-runs a section's results",
    "file and says, per row and metric, whether the new figures are identical (the same machine type) or within",
    "the seed spread shown here. See [benchmark methodology](benchmarks.md) for the protocol.",
]


def _sources(results: list[str | Path]) -> Iterator[tuple[Path, dict[str, Any] | ResultsFile]]:
    """Each results file of ``results`` checked; a sweep directory as its ``sweep.json``, then its two benches."""
    for path in map(Path, results):
        benches = [path]
        if path.is_dir() and (path / SWEEP_FILE).is_file():  # a sweep: its trial table, then its benches
            yield path / SWEEP_FILE, load_sweep(path)
            benches = [path / sub for sub in (DEFAULTS_DIR, TUNED_DIR) if (path / sub / RESULTS_FILE).is_file()]
        yield from ((found.path, found) for found in map(read_results, benches))


def _unique(heading: str, anchor: str, used: set[str]) -> tuple[str, str]:
    """``heading`` and its id ``anchor``, numbered where either is on the page already."""
    numbered = ((f"{heading} ({n})", f"{anchor}-{n}") for n in itertools.count(2))
    heading, anchor = next(pair for pair in itertools.chain([(heading, anchor)], numbered) if not used & set(pair))
    used.update((heading, anchor))
    return heading, anchor


def build(results: list[str | Path], out: str | Path) -> tuple[str, dict[Path, Callable[[Path], Path]]]:
    """The page for ``results`` (files or bench directories), with links relative to ``out``, and its figures:
    each file's path and how to draw it (into the path given)."""
    from ..pretrained import list_pretrained
    from .headline import ANCHOR, headline
    bundled = {p["config_hash"]: p["source"] for p in list_pretrained()}  # generators that ship with ganzoo
    out = Path(out)
    out_dir, folder = out.resolve().parent, FIGURES.format(stem=out.stem)
    used = {ANCHOR, "definitions"}
    body: list[str] = []
    sections: list[Section] = []
    sweeps: list[SweepSection] = []
    figures: dict[Path, Callable[[Path], Path]] = {}
    for path, data in _sources(results):
        link = _link(path, out_dir)  # a path the user named, yet written as inert as a results file's strings
        if not isinstance(data, ResultsFile):  # a sweep's trial table
            name, dataset = data["profile"]["name"], data["profile"]["dataset"]
            sweeps.append(SweepSection(data, link, *_unique(f"{text(dataset)} — sweep {code(name)}",
                                                             slug(f"sweep-{name}-{dataset}"), used)))
            body += sweep_section(sweeps[-1], out.parent / folder, folder, figures)
            continue
        parts: dict[tuple[str, str], dict[str, list[Trial]]] = {}  # (profile, dataset) -> row -> its trials
        for t in data.trials:
            parts.setdefault((t.protocol.profile, t.protocol.dataset), {}).setdefault(t.variant, []).append(t)
        for (profile, dataset), rows in sorted(parts.items()):
            budgets = {budget(trials) for trials in rows.values()}
            heading = f"{text(dataset)} — {code(profile)}" + (f", {budgets.pop()}" if len(budgets) == 1 else "")
            sections.append(Section(path, link, profile, dataset, list(rows.items()), data.profile.fid_target,
                                    *_unique(heading, slug(f"{profile}-{dataset}"), used)))
            body += _section(sections[-1], out_dir, out.parent / folder, folder, figures, bundled)
    page = [*INTRO, *headline(sections, sweeps), *body, *DEFINITIONS]
    return "\n".join(page).rstrip() + "\n", figures


def render(results: list[str | Path], out: str | Path) -> str:
    """The Markdown page for ``results`` (files or bench directories), with links relative to ``out``."""
    return build(results, out)[0]


def _section(section: Section, out_dir: Path, folder: Path, rel: str, figures: dict[Path, Callable[[Path], Path]],
             bundled: dict[str, str]) -> list[str]:
    """A section: heading, caption, table (best first, with the ``bundled`` generators' sampling commands by config
    hash), its figures (into ``figures``, in ``folder``: ``rel`` from the page), the provenance in a ``<details>``."""
    from ..plots import plot_comparison, plot_time_to_quality
    rows, primary = section.rows, section.primary  # (read before sorting: a list being sorted looks empty)
    sign = 1 if BY_KEY[primary].lower_is_better else -1
    # by the mean final value of the section's first metric, best first; unfinished rows last
    rows.sort(key=lambda row: (math.inf if (m := mean(row[1], primary)) is None else sign * m, row[0]))
    columns = _columns(section)
    budgets, seeds = {budget(trials) for _, trials in rows}, sorted({len(trials) for _, trials in rows})
    lines = [f"## {section.heading} {{ #{section.anchor} }}", "", _caption(section, budgets, seeds), "",
             "| Variant | " + " | ".join(c[0] for c in columns) + " |", "|---|" + "---:|" * len(columns)]
    panels = []
    for variant, trials in rows:
        collapsed = section.collapsed(trials)
        notes = ([budget(trials)] if len(budgets) > 1 else []) + ([_seeds(len(trials))] if len(seeds) > 1 else [])
        notes += ([f"⚠ collapsed in {len(collapsed)} of {len(trials)} seeds"] if collapsed else []) + _status(trials)
        notes += [f"<code>ganzoo sample {text(bundled[t.config_hash])}</code> (seed {t.seed}, no training)"
                  for t in trials if t.config_hash in bundled]
        lines.append(f"| {text(variant)}" + (f"<br><small>{'; '.join(notes)}</small>" if notes else "") + " | "
                     + " | ".join(cell(trials) for _, cell in columns) + " |")
        shown = next((t for t in sorted(trials, key=lambda t: t.seed) if "samples" in t.artifacts
                      and (section.path.parent / t.artifacts["samples"]).is_file()), None)
        if shown:  # the row's lowest seed with a sample grid, under its figure on the section's question
            key = MODES if MODES in section.scored else section.primary
            value = shown.final.values.get(key) if shown.final else None
            figure = "" if value is None else f" · {BY_KEY[key].title} {value:.{0 if value.is_integer() else 2}f}"
            note = f"seed {shown.seed}{figure}" + (" · collapsed" if shown in collapsed else "")
            panels.append((variant, note, section.path.parent / shown.artifacts["samples"]))
    lines.append("")
    if panels:
        name = f"{section.anchor}.png"
        figures[folder / name] = partial(plot_comparison, panels)
        lines += [f"![The samples of every row side by side, from the seed named under each]({url(f'{rel}/{name}')})"
                  "{ loading=lazy }", ""]
    curves = [_curve(variant, trials) for variant, trials in rows if timed(trials)]
    if FID in section.scored and len(curves) == len(rows) > 1:
        name = f"{section.anchor}-time.png"
        figures[folder / name] = partial(plot_time_to_quality, curves, target=section.target)
        lines += [f"![FID against seconds of training, each row's mean over its seeds, shaded between its seeds' "
                  f"lowest and highest]({url(f'{rel}/{name}')}){{ loading=lazy }}", ""]
    elif FID in section.scored and len(rows) > 1:
        lines += ["*No FID-against-time figure: " + ("only some" if curves else "none") + " of these rows' results "
                  "record the seconds trained before each evaluation.*", ""]
    return lines + _details(section, out_dir)


def _caption(section: Section, budgets: set[str], seeds: list[int]) -> str:
    """What a section's rows share: budget, seeds, hardware, how many samples each evaluation compares."""
    proto = section.rows[0][1][0].protocol
    unit = "images" if proto.feature_extractor else "samples"  # non-image data: points, vectors
    machines = sorted({hardware(t) for _, trials in section.rows for t in trials if t.hardware})
    return " · ".join([
        f"{next(iter(budgets))} of training per trial" + (" (a time budget)" if proto.budget.seconds else "")
        if len(budgets) == 1 else "Each row's budget under its name",
        _seeds(seeds[0]) + " per row" if len(seeds) == 1 else "each row's seeds under its name",
        text("; ".join(machines) or "hardware not recorded"),
        f"{proto.num_fake:,} generated {unit} per evaluation against {proto.num_real:,} real "
        f"({text(proto.real_split)} split)"]) + "."


def _details(section: Section, out_dir: Path) -> list[str]:
    """A section's provenance and links to every seed's samples and plots, behind a ``<details>``."""
    proto = section.rows[0][1][0].protocol
    fx = proto.feature_extractor
    fx_text = (f"Feature extractor {code(fx.name)} (weights sha256 {code(fx.sha256[:16] + '…')}). " if fx else
               "The samples are not images: no feature extractor. ")
    lines = ['<details markdown="1">', "<summary>Provenance, and every seed's samples, metrics and losses</summary>",
             "", f"Results: [{code(section.link)}]({url(section.link)}). {fx_text}torch {text(proto.versions.torch)}, "
             f"torch-fidelity {text(proto.versions.torch_fidelity)}, ganzoo {text(proto.versions.ganzoo)}.", ""]
    for variant, trials in section.rows:
        kinds = [f"{what}, seed " + " ".join(
                 f"[{t.seed}]({url(_link(section.path.parent / t.artifacts[key], out_dir))})"
                 for t in trials if key in t.artifacts)
                 for key, what in (("samples", "samples"), ("metrics_plot", "metrics"), ("loss_plot", "losses"))
                 if any(key in t.artifacts for t in trials)]
        lines.append(f"- {text(variant)}" + (f": {' · '.join(kinds)}" if kinds else ""))
    return [*lines, "", "</details>", ""]


def _curve(variant: str, trials: list[Trial]) -> tuple[str, list[float], list[float], list[float], list[float]]:
    """A row's FID against seconds of training: per evaluation step, the means over seeds, the lowest and highest."""
    steps: dict[int, list[tuple[float, float]]] = {}
    for t in finished(trials):
        for h in t.history:
            if math.isfinite(h.values.get(FID, math.nan)) and math.isfinite(h.values[TRAIN_SECONDS]):
                steps.setdefault(h.step, []).append((h.values[TRAIN_SECONDS], h.values[FID]))
    points = [steps[s] for s in sorted(steps)]
    return (variant, [statistics.fmean(x for x, _ in p) for p in points], [statistics.fmean(y for _, y in p)
            for p in points], [min(y for _, y in p) for p in points], [max(y for _, y in p) for p in points])


def _status(trials: list[Trial]) -> list[str]:
    """A note per unfinished trial: where it diverged, else its status and the first line of its reason."""
    return [f"diverged at step {t.diverged_at} (seed {t.seed})" if t.status == "diverged"
            else f"{text(t.status)} (seed {t.seed}): "
            + text((str(t.reason).strip().splitlines() or ["no reason recorded"])[0])
            for t in trials if t.status != "ok"]


def sweep_section(sweep: SweepSection, folder: Path, rel: str, figures: dict[Path, Callable[[Path], Path]]
                  ) -> list[str]:
    """A sweep: how its configurations were drawn and trained, per row the share reaching the target and their final
    scores' spread (a figure into ``figures``, in ``folder``: ``rel`` from the page), each one in a ``<details>``."""
    from ..plots import plot_sweep
    data, profile = sweep.data, sweep.data["profile"]
    spec, metric = profile["sweep"], BY_KEY[profile["sweep"]["metric"]]
    scheduler = ("FIFO: every configuration trains the whole budget" if sweep.unbiased else
                 f"`{spec['scheduler']}` (grace period {spec['grace_period']} evaluation, reduction factor "
                 f"{spec['reduction_factor']:g}: poor configurations stop early)")
    lines = [f"## {sweep.heading} {{ #{sweep.anchor} }}", "",
             f"{spec['samples']} configurations per row, drawn with seed {spec['search_seed']} from one space and "
             f"each trained with seed {spec['trial_seed']}; Ray Tune, scheduler {scheduler}. {metric.title} "
             f"({'lower' if metric.lower_is_better else 'higher'} is better) on {profile['num_fake']:,} generated "
             f"images; median and best over the configurations that trained the whole budget. Results: "
             f"[{code(sweep.link)}]({url(sweep.link)}).", ""]
    target = f"{metric.title} ≤ {sweep.target:g}" if sweep.target is not None else None
    lines += ["| Variant | Steps | " + (f"Reach {target} | " if target else "") + f"Median {metric.title} | "
              f"Best {metric.title} | Stopped · failed |", "|---|---:|" + "---:|" * (4 if target else 3)]
    for row, found in data["rows"].items():
        finals, ended = sweep.finals(row), Counter(t["status"] for t in found["trials"])
        cells = [f"{found['steps']:,}"] + ([f"{sweep.reached(row)} of {len(found['trials'])}"] if target else [])
        cells += [f"{v:.{metric.decimals}f}" if finals else "–" for v in (
            statistics.median(finals or [0]), (min if metric.lower_is_better else max)(finals or [0]))]
        lines.append(f"| {text(row)} | " + " | ".join([*cells, f"{ended[STOPPED]} · {ended[FAILED]}"]) + " |")
    name = f"{sweep.anchor}.png"
    figures[folder / name] = partial(plot_sweep, data["rows"], target=sweep.target,
                                     title=f"{profile['name']}: final {metric.title} of every configuration")
    lines += ["", f"![Every configuration's final {metric.title} per row, failed (diverged) ones as crosses at the "
              f"top]({url(f'{rel}/{name}')}){{ loading=lazy }}", "",
              '<details markdown="1">', "<summary>Every configuration, how it ended and its score</summary>", ""]
    for row, found in data["rows"].items():
        keys = list(dict.fromkeys(k for t in found["trials"] for k in t["params"]))
        best = (found.get("best") or {}).get("trial_id")
        cluster = found.get("cluster")
        took = (f" The search took {found['wall_seconds']:.0f} s of wall time on {cluster['cpus']:g} CPUs "
                f"({cluster['cpus_per_trial']:g} per trial; driver: {text(cluster['driver'].get('cpu') or '?')})."
                if found.get("wall_seconds") is not None and cluster else "")
        lines += [f"**{text(row)}**: {found['steps']} generator steps, evaluated every {found['eval_every']} steps; "
                  f"★ the best of those that trained the whole budget.{took}", "",
                  "| Trial | " + " | ".join(code(k) for k in keys) + f" | Status | Steps | Train s | {metric.title} |",
                  "|---|" + "---:|" * len(keys) + "---|---:|---:|---:|"]
        for t in found["trials"]:
            params = [_param(t["params"].get(k)) for k in keys]
            last = t["evaluations"][-1] if t["evaluations"] else {}
            score = f"{t['final']:.{metric.decimals}f}" if t["final"] is not None else "–"
            trained = f"{last['train_seconds']:.0f}" if "train_seconds" in last else "–"
            lines.append(f"| {text(t['trial_id'])}{' ★' if t['trial_id'] == best else ''} | " + " | ".join(params)
                         + f" | {text(t['status'])} | {last.get('step', 0)} | {trained} | {score} |")
        lines.append("")
    return [*lines, "</details>", ""]


def _param(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, list) and all(v is None or isinstance(v, int | float) for v in value):
        return str(value)  # numbers, as Tune drew them (betas): nothing in it can start Markdown
    return "–" if value is None else text(value)


def write_leaderboard(results: list[str | Path], out: str | Path, overwrite: bool = False) -> Path:
    """Write :func:`build`'s page into ``out`` and its figures into the folder beside it (each file under
    :mod:`ganzoo.outputs`' rule) and return the page's path."""
    out = check_output(out, overwrite, option="-o")
    page, figures = build(results, out)
    for path in figures:
        check_output(path, overwrite, option="-o")
    for path, draw in figures.items():
        with atomic_file(path) as tmp:
            draw(tmp)
    with atomic_file(out) as tmp:
        tmp.write_text(page)
    return out
