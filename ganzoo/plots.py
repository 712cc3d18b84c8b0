"""Loss curves, metric-versus-step plots and scatter plots of 2-D samples (matplotlib, no display needed)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from matplotlib import ticker
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .metric_keys import BY_KEY, METRICS
from .sweep.spec import COMPLETED, FAILED, STOPPED

# Figures, not pyplot: no backend is chosen, so the user's stays.


def plot_losses(log_path: Path, out: Path, title: str = "") -> Path:
    """Plot discriminator and generator losses from a run's ``log.jsonl``."""
    rows = [json.loads(line) for line in Path(log_path).read_text().splitlines() if line.strip()]
    fig = Figure(figsize=(6, 3.2), dpi=100)
    ax = fig.subplots()
    steps = [r["step"] for r in rows]
    ax.plot(steps, [r["d_loss"] for r in rows], label="D loss", linewidth=1)
    ax.plot(steps, [r["g_loss"] for r in rows], label="G loss", linewidth=1)
    ax.set(xlabel="generator step", title=title or "losses")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out)
    return out


def plot_metrics(history: list[dict[str, Any]], out: Path, title: str = "") -> Path:
    """Plot each plotted metric of :data:`~ganzoo.metric_keys.METRICS` in ``history`` by step, three panels a row."""
    shown = [m for m in METRICS if m.plotted and any(m.key in h for h in history)]
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
            _log_axis(ax)
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


def _log_axis(ax: Axes) -> None:
    """A log-scale y axis labelled 1, 2, 5, 10, 20... as plain numbers."""
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
    ax.yaxis.set_minor_formatter(ticker.NullFormatter())


def plot_points(real: torch.Tensor | None, fake: torch.Tensor, out: Path, title: str = "") -> Path:
    """A scatter plot of generated points over real ones (if any): the sample grid of non-image data."""
    fig = Figure(figsize=(4.2, 4.2), dpi=100)
    ax = fig.subplots()
    layers = ((real, 0.35, "tab:blue", "real"), (fake.detach(), 0.5, "tab:orange", "generated"))
    for points, alpha, color, label in layers:
        if points is not None:
            points = points.flatten(1).float().cpu()
            ax.scatter(points[:, 0], points[:, 1] if points.shape[1] > 1 else points[:, 0] * 0, s=4, alpha=alpha,
                       color=color, label=label, linewidths=0)
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_title(title or "samples")
    ax.legend(loc="upper right", markerscale=3, fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    return Path(out)


def _label(value: str, limit: int = 32) -> str:
    """``value`` as a plot label: one line, at most ``limit`` characters, no ``$`` starting mathtext."""
    line = "".join(c if c.isprintable() else " " for c in value)
    return (line if len(line) <= limit else line[:limit - 1] + "…").replace("$", r"\$")


def save_compact(fig: Figure, out: Path, colors: int = 128) -> Path:
    """Write ``fig`` as a palette PNG of at most ``colors`` colours: few bytes, and no timestamp or version in them."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from PIL import Image
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    image = Image.fromarray(np.asarray(canvas.buffer_rgba())[..., :3])
    image.quantize(colors, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(out, "PNG", optimize=True)
    return Path(out)


def plot_comparison(panels: list[tuple[str, str, Path]], out: Path, panel_px: int = 180) -> Path:
    """The PNG images of ``panels`` (name, note, file: a run's samples.png) side by side at one scale (the largest
    ``panel_px`` wide), four to a row at most, each under its name and note."""
    import numpy as np
    from PIL import Image
    images = []
    for _, _, path in panels:
        try:
            with Image.open(path) as img:
                images.append(np.asarray(img.convert("RGB")))
        except (OSError, ValueError, Image.DecompressionBombError):  # a results folder's file, not trusted
            images.append(None)
    width = max((a.shape[1] for a in images if a is not None), default=1)
    height = max((a.shape[0] for a in images if a is not None), default=1)
    rows = math.ceil(len(panels) / 4)
    cols = math.ceil(len(panels) / rows)
    side, title = panel_px / 100, 0.34  # inches at 100 dpi: a panel's width, the two lines of its label
    tall = side * height / width
    fig = Figure(figsize=(cols * side, rows * (tall + title)), dpi=100)
    axes = fig.subplots(rows, cols, squeeze=False, gridspec_kw={
        "left": 0, "right": 1, "bottom": 0, "top": 1 - title / (rows * (tall + title)), "wspace": 0.04,
        "hspace": title / tall})
    for ax in axes.flat:
        ax.axis("off")
    for ax, (name, note, _), image in zip(axes.flat, panels, images, strict=False):
        if image is None:
            ax.text(0.5, 0.5, "unreadable image", ha="center", va="center", fontsize=8, transform=ax.transAxes)
        else:  # centred in the largest image's frame, pixel for pixel
            left, top = (width - image.shape[1]) / 2, (height - image.shape[0]) / 2
            ax.imshow(image, extent=(left, left + image.shape[1], top + image.shape[0], top),
                      interpolation="antialiased")
            ax.set(xlim=(0, width), ylim=(height, 0))
        ax.set_title(f"{_label(name)}\n{_label(note)}", fontsize=8, pad=2)
    return save_compact(fig, out)


#: One curve of :func:`plot_time_to_quality`: its label, and per evaluation the mean seconds of training before
#: it, the mean FID over seeds and the lowest and highest seed's FID.
Curve = tuple[str, list[float], list[float], list[float], list[float]]


def plot_time_to_quality(curves: list[Curve], out: Path, target: float | None = None) -> Path:
    """FID against seconds of training, one curve per row (the mean over seeds, shaded between the seeds' lowest
    and highest), a dashed line at an FID ``target``."""
    fig = Figure(figsize=(7.2, 2.5), dpi=100)
    ax = fig.subplots()
    for i, (label, seconds, mean, low, high) in enumerate(curves):
        ax.plot(seconds, mean, marker="o", markersize=3, linewidth=1.2, color=f"C{i % 10}", label=_label(label))
        ax.fill_between(seconds, low, high, color=f"C{i % 10}", alpha=0.15, linewidth=0)
    if target:
        ax.axhline(target, color="0.4", linestyle="--", linewidth=0.8, label=f"FID {target:g}")
    if all(v > 0 for c in curves for v in c[3]):
        _log_axis(ax)
    ax.set_xlabel("seconds of training", fontsize=8)
    ax.set_ylabel("FID (lower is better)", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    fig.tight_layout()
    return save_compact(fig, out)


def plot_sweep(rows: dict[str, dict[str, Any]], out: Path, target: float | None = None, title: str = "") -> Path:
    """The final metric of every configuration of a sweep (``sweep.json``'s ``rows``), a column per row, log scale where
    every score is positive: completed trials as dots, stopped ones as grey circles at their last score, failed ones as
    red crosses at the top; ``target`` as a dashed line, each row's completed configurations at or below it counted."""
    fig = Figure(figsize=(1.1 * max(4, len(rows)) + 3.2, 3.8), dpi=100)
    ax = fig.subplots()
    key = next(iter(rows.values()))["metric"] if rows else ""
    metric = BY_KEY[key].title if key in BY_KEY else key
    finals = [t["final"] for row in rows.values() for t in row["trials"] if _finite(t.get("final"))]
    log = all(v > 0 for v in finals + [target or 1.0])  # KID, say, can end below zero: a linear scale then
    low, high = min(finals + [target or 1.0]), max(finals, default=1.0)
    top = high * 2 if log else high + 0.1 * (high - low or 1.0)  # failed configurations are drawn at the top
    for x, row in enumerate(rows.values()):
        trials = row["trials"]
        points: dict[str, list[tuple[float, float]]] = {COMPLETED: [], STOPPED: [], FAILED: []}
        for i, t in enumerate(trials):
            kind = t["status"] if _finite(t.get("final")) and t["status"] != FAILED else FAILED
            points[kind].append((x + (i - (len(trials) - 1) / 2) * 0.5 / len(trials), t["final"] if kind != FAILED
                                 else top))
        for kind, style in ((COMPLETED, {"color": "tab:blue", "label": "trained the whole budget"}),
                            (STOPPED, {"facecolors": "none", "color": "grey", "label": "stopped early (last score)"}),
                            (FAILED, {"marker": "x", "color": "tab:red", "label": "failed (diverged)"})):
            if points[kind]:
                ax.scatter(*zip(*points[kind], strict=True), s=26, zorder=3, **style)
        if target is not None:
            reached = sum(v <= target for _, v in points[COMPLETED])
            ax.text(x, top * 1.4 if log else top + 0.05 * (top - low), f"{reached}/{len(trials)}", ha="center",
                    fontsize=8, color="tab:green")
    if target is not None:
        ax.axhline(target, linestyle="--", color="tab:green", linewidth=1, label=f"{metric} ≤ {target:g}")
    handles = dict(zip(*reversed(ax.get_legend_handles_labels()), strict=True))  # one entry per kind
    ax.legend(handles.values(), handles.keys(), fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    if log:
        _log_axis(ax)
        ax.set_ylim(low / 1.4, top * 2.2)
    ax.set_xticks(range(len(rows)), [_label(str(name)) for name in rows], rotation=30, ha="right", fontsize=8)
    ax.set_xlim(-0.6, len(rows) - 0.4)
    ax.set_ylabel(f"final {metric}", fontsize=8)
    ax.set_title(title or "every configuration's final score", fontsize=9)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return save_compact(fig, out)


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)
