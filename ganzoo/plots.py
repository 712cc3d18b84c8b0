"""Loss curves, metric-versus-step plots and scatter plots of 2-D samples (matplotlib, no display needed)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from matplotlib import ticker
from matplotlib.figure import Figure

from .metric_keys import METRICS, MetricInfo

# Figures, not pyplot: no backend is chosen, so the user's stays.
#: The metrics shown, one panel each (only those an evaluation history holds are drawn).
PLOTTED_METRICS: tuple[MetricInfo, ...] = tuple(m for m in METRICS if m.plotted)


def plot_losses(log_path: Path, out: Path, title: str = "") -> Path:
    """Plot discriminator and generator losses from a run's ``log.jsonl``."""
    rows = [json.loads(line) for line in Path(log_path).read_text().splitlines() if line.strip()]
    fig = Figure(figsize=(6, 3.2), dpi=100)
    ax = fig.subplots()
    steps = [r["step"] for r in rows]
    ax.plot(steps, [r["d_loss"] for r in rows], label="D loss", linewidth=1)
    ax.plot(steps, [r["g_loss"] for r in rows], label="G loss", linewidth=1)
    ax.set_xlabel("generator step")
    ax.set_title(title or "losses")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out)
    return out


def plot_metrics(history: list[dict[str, Any]], out: Path, title: str = "") -> Path:
    """Plot each metric of :data:`PLOTTED_METRICS` that ``history`` holds against the step, three panels a row."""
    shown = [m for m in PLOTTED_METRICS if any(m.key in h for h in history)]
    rows = max(1, math.ceil(len(shown) / 3))
    fig = Figure(figsize=(9, 2.5 * rows), dpi=100)
    axes = fig.subplots(rows, 3, squeeze=False)
    steps = [h["step"] for h in history]
    for ax in axes.flat[len(shown):]:
        ax.set_visible(False)
    for ax, metric in zip(axes.flat, shown, strict=False):
        name, lower = metric.title, metric.lower_is_better
        values = [h.get(metric.key, float("nan")) for h in history]
        ax.plot(steps, values, marker="o", markersize=3)
        if metric.log_scale and all(v > 0 for v in values):  # an untrained FID of ~500 would flatten the rest
            ax.set_yscale("log")
            ax.yaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
            ax.yaxis.set_minor_formatter(ticker.NullFormatter())
            name += ", log scale"
        ax.set_title(f"{name} ({'lower' if lower else 'higher'} is better)", fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out)
    return out


def plot_points(real: torch.Tensor | None, fake: torch.Tensor, out: Path, title: str = "") -> Path:
    """A scatter plot of generated points over real ones (if any): the sample grid of non-image data."""
    fake = fake.detach().flatten(1).float().cpu()
    fig = Figure(figsize=(4.2, 4.2), dpi=100)
    ax = fig.subplots()
    if real is not None:
        real = real.flatten(1).float().cpu()
        ax.scatter(real[:, 0], real[:, 1] if real.shape[1] > 1 else real[:, 0] * 0, s=4, alpha=0.35,
                   color="tab:blue", label="real", linewidths=0)
    ax.scatter(fake[:, 0], fake[:, 1] if fake.shape[1] > 1 else fake[:, 0] * 0, s=4, alpha=0.5,
               color="tab:orange", label="generated", linewidths=0)
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_title(title or "samples")
    ax.legend(loc="upper right", markerscale=3, fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    return Path(out)


def plot_sweep(rows: dict[str, dict[str, Any]], out: Path, target: float | None = None, title: str = "") -> Path:
    """The final metric of every configuration of a sweep (``sweep.json``'s ``rows``), one column per row, on a log
    scale: completed trials as dots, those a scheduler stopped as grey circles at their last score, failed
    (diverged) ones as red crosses at the top; ``target`` (if any) as a dashed line, with each row's count of
    completed configurations at or below it."""
    fig = Figure(figsize=(1.1 * max(4, len(rows)) + 1.5, 3.8), dpi=100)
    ax = fig.subplots()
    metric = next(iter(rows.values()))["metric"] if rows else ""
    top = max((t["final"] for row in rows.values() for t in row["trials"] if _finite(t.get("final"))), default=1.0) * 2
    for x, row in enumerate(rows.values()):
        trials = row["trials"]
        points: dict[str, list[tuple[float, float]]] = {"completed": [], "stopped": [], "failed": []}
        for i, t in enumerate(trials):
            kind = t["status"] if _finite(t.get("final")) and t["status"] != "failed" else "failed"
            points[kind].append((x + (i - (len(trials) - 1) / 2) * 0.5 / len(trials), t["final"] if kind != "failed"
                                 else top))
        for kind, style in (("completed", {"color": "tab:blue"}), ("stopped", {"facecolors": "none", "color": "grey"}),
                            ("failed", {"marker": "x", "color": "tab:red"})):
            if points[kind]:
                ax.scatter(*zip(*points[kind], strict=True), s=26, zorder=3, **style)
        if target is not None:
            reached = sum(v <= target for _, v in points["completed"])
            ax.annotate(f"{reached}/{len(trials)}", (x, top), textcoords="offset points", xytext=(0, -22),
                        ha="center", fontsize=8, color="tab:green")
    if target is not None:
        ax.axhline(target, linestyle="--", color="tab:green", linewidth=1, label=f"{metric} ≤ {target:g}")
        ax.legend(loc="lower right", fontsize=8)
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
    ax.set_xticks(range(len(rows)), [str(name) for name in rows], rotation=30, ha="right", fontsize=8)
    ax.set_xlim(-0.6, len(rows) - 0.4)
    ax.set_ylabel(f"final {metric} (× failed)", fontsize=8)
    ax.set_title(title or "every configuration's final score", fontsize=9)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(out)
    return Path(out)


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)
