"""Loss curves and metric-versus-step plots (matplotlib, no display needed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import ticker  # noqa: E402

# metric key -> (title, lower is better)
PLOTTED_METRICS: dict[str, tuple[str, bool]] = {
    "fid": ("FID", True),
    "kid_mean": ("KID", True),
    "is_mean": ("IS (MNIST score)", False),
    "precision": ("Precision", False),
    "recall": ("Recall", False),
    "classes_covered": ("Digit classes covered", False),
}

LOG_SCALE = {"fid"}


def plot_losses(log_path: Path, out: Path, title: str = "") -> Path:
    """Plot discriminator and generator losses from a run's ``log.jsonl``."""
    rows = [json.loads(line) for line in Path(log_path).read_text().splitlines() if line.strip()]
    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=100)
    steps = [r["step"] for r in rows]
    ax.plot(steps, [r["d_loss"] for r in rows], label="D loss", linewidth=1)
    ax.plot(steps, [r["g_loss"] for r in rows], label="G loss", linewidth=1)
    ax.set_xlabel("generator step")
    ax.set_title(title or "losses")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out


def plot_metrics(history: list[dict[str, Any]], out: Path, title: str = "") -> Path:
    """Plot each metric of :data:`PLOTTED_METRICS` against the generator step."""
    fig, axes = plt.subplots(2, 3, figsize=(9, 5), dpi=100)
    steps = [h["step"] for h in history]
    for ax, (key, (name, lower)) in zip(axes.flat, PLOTTED_METRICS.items(), strict=True):
        values = [h.get(key, float("nan")) for h in history]
        ax.plot(steps, values, marker="o", markersize=3)
        if key in LOG_SCALE and all(v > 0 for v in values):  # an untrained FID of ~500 would flatten the rest
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
    plt.close(fig)
    return out
