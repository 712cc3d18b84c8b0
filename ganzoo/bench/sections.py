"""What the leaderboard's tables and headline share: a section of results (:class:`Section`), the statistics read
from its trials, and :func:`text` / :func:`code`, which write any string from a results file as inert Markdown."""

from __future__ import annotations

import html
import math
import statistics
from dataclasses import dataclass
from pathlib import Path

from .. import metric_keys as mk
from ..metric_keys import CLASSES_COVERED, FID, KID_MEAN, MODES, PRECISION
from ..sweep.spec import COMPLETED
from .records import TRAIN_SECONDS, Trial

#: A finished trial covering at most this share of its dataset's classes (modes) is flagged as collapsed.
COLLAPSE_SHARE = 1 / 3
#: The metrics a section's table can show, in this order: recall shares precision's column, classes give way to
#: modes, and the 2-D mixtures' own metrics to FID's family.
TABLE_KEYS = (FID, KID_MEAN, PRECISION, MODES, CLASSES_COVERED, mk.CLASS_AGREEMENT, mk.HIGH_QUALITY, mk.MODE_KL)
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


def finished(trials: list[Trial]) -> list[Trial]:
    return [t for t in trials if t.status == "ok" and t.final]


def mean(trials: list[Trial], key: str) -> float | None:
    """The mean final ``key`` over the finished ``trials`` (finite values only), or ``None``."""
    found = [t.final.values[key] for t in finished(trials) if math.isfinite(t.final.values.get(key, math.nan))]
    return statistics.fmean(found) if found else None


def hardware(trial: Trial) -> str:
    hw = trial.hardware
    threads = (hw and hw.threads) or "?"
    return (hw and hw.gpu) or f"{(hw and hw.cpu) or '?'}, {threads} thread{'' if threads == 1 else 's'}"


def timed(trials: list[Trial]) -> bool:
    """Whether every finished trial's evaluations (two at least) record the seconds trained before them."""
    done = finished(trials)
    return bool(done) and all(len(t.history) > 1 and all(TRAIN_SECONDS in h.values for h in t.history) for t in done)


def seconds_to_fid(trial: Trial, target: float) -> float | None:
    """Seconds of training before the first evaluation after step 0 with FID at most ``target`` (else ``None``)."""
    return next((h.values[TRAIN_SECONDS] for h in trial.history
                 if h.step > 0 and h.values.get(FID, float("inf")) <= target and TRAIN_SECONDS in h.values), None)


@dataclass
class Section:
    """One profile's and one dataset's trials of a results file: its rows (best first) and where it is shown."""
    path: Path  # the results file
    link: str  # to it, from the page
    profile: str
    dataset: str
    rows: list[tuple[str, list[Trial]]]
    target: float | None  # the profile's FID target
    heading: str = ""
    anchor: str = ""

    @property
    def scored(self) -> set[str]:
        return {key for _, trials in self.rows for t in trials for key in (t.final.values if t.final else {})}

    @property
    def primary(self) -> str:
        """The metric rows are ranked by: the first of :data:`TABLE_KEYS` scored, else FID."""
        return next((k for k in TABLE_KEYS if k in self.scored), FID)

    def collapsed(self, trials: list[Trial]) -> list[Trial]:
        """The finished ``trials`` covering at most :data:`COLLAPSE_SHARE` of the classes (modes) of its dataset."""
        from ..registry import get_registry
        datasets = get_registry().datasets
        size = datasets.get(self.dataset).item.num_classes if self.dataset in datasets else None
        key = MODES if MODES in self.scored else CLASSES_COVERED
        return [t for t in finished(trials) if size and t.final.values.get(key, size) <= COLLAPSE_SHARE * size]


@dataclass
class SweepSection:
    """A ``sweep.json`` on the page: per row, every configuration drawn and how far it got."""
    data: dict  # the sweep file, as records.load_sweep read it
    link: str
    heading: str
    anchor: str

    @property
    def target(self) -> float | None:
        """The profile's FID target where the sweep ranks by FID, else ``None``."""
        return self.data["profile"].get("fid_target") if self.data["profile"]["sweep"]["metric"] == FID else None

    @property
    def unbiased(self) -> bool:
        """Whether every configuration trained the whole budget (FIFO), so a row's share reaching the target is fair."""
        return self.data["profile"]["sweep"]["scheduler"] == "fifo"

    def finals(self, row: str) -> list[float]:
        """The final scores of ``row``'s configurations that trained the whole budget."""
        return [t["final"] for t in self.data["rows"][row]["trials"]
                if t["status"] == COMPLETED and isinstance(t["final"], int | float) and math.isfinite(t["final"])]

    def reached(self, row: str) -> int:
        """How many of ``row``'s configurations end at or below the target."""
        return sum(v <= self.target for v in self.finals(row)) if self.target is not None else 0
