"""The leaderboard's headline: a row per variant with its best committed figure per question, the best of each
column in bold and each cell linking to the section it comes from, then one sentence per variant, generated from
those figures, saying where it wins and where it fails. Nothing in it is typed in."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..metric_keys import BY_KEY, CLASS_AGREEMENT, FID, MODES
from .sections import Section, SweepSection, finished, hardware, mean, seconds_to_fid, text, timed

#: The questions of bench sections, a column each: a metric, and whether it gets a column per dataset (else one, on
#: the dataset and budget most variants were scored at); a new question is one more entry. Sweeps that train every
#: configuration to the end add a column of their own (how often a variant trains, :func:`_stability_columns`).
QUESTIONS = ((FID, False), (CLASS_AGREEMENT, True), (MODES, True))
ANCHOR = "which-variant-to-use"
#: The key of a stability column (a share of a sweep's configurations, not a metric of metric_keys).
STABILITY = "stability"


@dataclass
class Column:
    key: str  # the metric (a target's column: FID)
    title: str  # the header cell
    words: str  # a figure of it in a sentence, with {} for the value
    where: str  # what it compares, in a sentence
    dataset: str
    lower: bool
    decimals: int
    unit: str = ""
    target: float = 0.0  # the FID target of a column of seconds
    machine: str = ""  # the hardware they were measured on
    cells: dict[str, tuple[float, str, bool]] = field(default_factory=dict)  # variant: value, section, collapsed
    missing: dict[str, str] = field(default_factory=dict)  # variant: the section where it never reached the target

    def best(self, variant: str, worst: bool = False) -> bool:
        """Whether ``variant``'s figure is the column's best (``worst``: its worst) among two (three) at least."""
        pick = max if self.lower == worst else min
        return (variant in self.cells and len(self.cells) >= (3 if worst else 2)
                and self.show(self.cells[variant][0]) == self.show(pick(v for v, *_ in self.cells.values())))

    def show(self, value: float) -> str:
        return f"{value:.{self.decimals}f}"

    def cell(self, variant: str) -> str:
        if variant not in self.cells:
            return f"[not reached](#{self.missing[variant]})" if variant in self.missing else "–"
        value, anchor, collapsed = self.cells[variant]
        shown = f"{self.show(value)}{self.unit}"
        return f"[{f'**{shown}**' if self.best(variant) else shown}](#{anchor})" + ("&nbsp;⚠" if collapsed else "")

    def figure(self, variant: str) -> str:
        """``variant``'s figure in words, linking to its section."""
        value, anchor, _ = self.cells[variant]
        return f"[{self.words.format(self.show(value) + self.unit)}](#{anchor}) ({self.where})"


def _metric_columns(sections: list[Section]) -> list[Column]:
    columns = []
    for key, per_dataset in QUESTIONS:
        info = BY_KEY[key]
        found: dict[tuple[str, int, float], dict[str, list[tuple[float, Section, bool]]]] = {}
        for s in sections:
            for variant, trials in s.rows:
                b = trials[0].protocol.budget
                if (value := mean(trials, key)) is not None:
                    found.setdefault((s.dataset, b.steps, b.seconds or 0), {}).setdefault(variant, []).append(
                        (value, s, bool(s.collapsed(trials))))
        for dataset in sorted({k[0] for k in found}) if per_dataset else [None]:
            options = {k: v for k, v in found.items() if dataset in (None, k[0])}
            if not options:
                continue
            # the budget the most variants were scored at (ties: the larger)
            where, rows = max(options.items(), key=lambda kv: (len(kv[1]), kv[0][2], kv[0][1]))
            label = f"{where[2]:g} s" if where[2] else f"{where[1]:,} steps"
            column = Column(key, f"{info.title} {'↓' if info.lower_is_better else '↑'}<br><small>{text(where[0])}, "
                            f"{label}</small>", f"{info.title} {{}}", f"{text(where[0])}, {label}", where[0],
                            info.lower_is_better, info.decimals)
            for variant, values in rows.items():
                value, s, collapsed = min(values, key=lambda v: v[0] if info.lower_is_better else -v[0])
                column.cells[variant] = (value, s.anchor, collapsed)
            columns.append(column)
    return columns


def _time_columns(sections: list[Section], dataset: str) -> list[Column]:
    """Per FID target a profile names: the seconds of training to reach it, least over the sections of
    ``dataset`` whose evaluations are timed, on the hardware most of their trials ran on."""
    rows = [(s, variant, trials) for s in sections if s.dataset == dataset for variant, trials in s.rows
            if timed(trials)]
    if not rows:
        return []
    machine = Counter(hardware(t) for _, _, trials in rows for t in finished(trials)).most_common(1)[0][0]
    columns = []
    for target in sorted({s.target for s in sections if s.target}):
        column = Column(FID, f"Train s to FID ≤ {target:g}<br><small>{text(dataset)}</small>",
                        f"{{}} to FID ≤ {target:g}", text(dataset), dataset, True, 0, " s", target, machine)
        for s, variant, trials in rows:
            reached = [seconds_to_fid(t, target) for t in finished(trials) if hardware(t) == machine]
            if reached and None in reached:
                column.missing.setdefault(variant, s.anchor)
            elif reached and (variant not in column.cells or statistics.fmean(reached) < column.cells[variant][0]):
                column.cells[variant] = (statistics.fmean(reached), s.anchor, bool(s.collapsed(trials)))
        columns.append(column)
    return columns


def _stability_columns(sweeps: list[SweepSection]) -> list[Column]:
    """Per sweep training every configuration its whole budget, with an FID target: each row's share reaching it."""
    columns = []
    for sweep in (s for s in sweeps if s.unbiased and s.target is not None):
        profile = sweep.data["profile"]
        where = f"{text(profile['dataset'])}, {profile['steps']:,} steps"
        column = Column(STABILITY, f"Configs to FID ≤ {sweep.target:g} ↑<br><small>{where}</small>",
                        f"{{}} of configurations reaching FID ≤ {sweep.target:g}",
                        f"{where}, {profile['sweep']['samples']} drawn per variant", profile["dataset"], False, 0, "%")
        for row, found in sweep.data["rows"].items():
            column.cells[row] = (100 * sweep.reached(row) / len(found["trials"]), sweep.anchor, False)
        columns.append(column)
    return columns


def _join(items: list[str]) -> str:
    return " and ".join(items) if len(items) < 3 else ", ".join(items[:-1]) + " and " + items[-1]


def _sentence(variant: str, columns: list[Column], sections: list[Section]) -> str:
    """Where ``variant`` is best, last, short of a target and collapsed, in words."""
    wins = [c.figure(variant) for c in columns if c.best(variant)]
    last = [c.figure(variant) for c in columns if c.best(variant, worst=True) and not c.best(variant)]
    short = [f"[FID ≤ {c.target:g}](#{c.missing[variant]}) ({c.where})" for c in columns
             if variant in c.missing and variant not in c.cells]
    collapsed = [f"[{s.heading}](#{s.anchor}) ({len(c)} of {len(trials)} seeds)" for s in sections
                 for v, trials in s.rows if v == variant and (c := s.collapsed(trials))]
    fails = [words.format(_join(items)) for words, items in (("is last with {}", last),
             ("never reaches {} within its budget", short), ("collapses in {}", collapsed)) if items]
    return (f"**{text(variant)}** " + (f"wins with {_join(wins)}" if wins else "is best in no column") + "; "
            + (f"it {_join(fails)}." if fails else "it is last in none and never collapses."))


def headline(sections: list[Section], sweeps: Sequence[SweepSection] = ()) -> list[str]:
    """The headline's Markdown for the bench ``sections`` and the ``sweeps`` (none without a variant)."""
    columns = _metric_columns(sections)
    fid = next((c for c in columns if c.key == FID), None)
    columns += (_time_columns(sections, fid.dataset) if fid else []) + _stability_columns(list(sweeps))
    first = columns[0] if columns else None  # variants ranked by it, those without a figure last
    variants = sorted({variant for s in sections for variant, _ in s.rows} | {v for c in columns for v in c.cells},
                      key=lambda v: (
        (False, first.cells[v][0] * (1 if first.lower else -1), v) if first and v in first.cells else (True, 0.0, v)))
    if not variants:
        return []
    return [f"## Which variant to use {{ #{ANCHOR} }}", "",
            "Each variant's best figure per question over the sections below (a mean over seeds); the best of each "
            "column is in bold, each figure links to its section, and ⚠ marks one from a row where some seed "
            "collapsed. A column compares the budget most variants were run at, named under its title.", "",
            "| Variant | " + " | ".join(c.title for c in columns) + " |", "|---|" + "---:|" * len(columns),
            *(f"| {text(v)} | " + " | ".join(c.cell(v) for c in columns) + " |" for v in variants), "",
            *(f"- {_sentence(v, columns, sections)}" for v in variants), "",
            *(f"*Train s to FID ≤ X* is the least, over the sections timed on {text(machine)}, of the mean seconds of "
              "training before the first evaluation at or below X, so as coarse as their evaluation intervals."
              for machine in dict.fromkeys(c.machine for c in columns if c.machine)),
            *(["*Configs to FID ≤ X* is the share of a sweep's configurations (learning rates and betas drawn from one "
               "wide space, each trained its whole budget) that end at or below X: how often a variant trains "
               "untuned."] if any(c.key == STABILITY for c in columns) else []), ""]
