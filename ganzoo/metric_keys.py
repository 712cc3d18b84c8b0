"""The metrics a bench evaluation reports: each key defined once, with its title, direction and format, read by
the bench, the leaderboard and the plots. Importing this module imports nothing heavy."""

from __future__ import annotations

from dataclasses import dataclass

FID = "fid"
KID_MEAN = "kid_mean"
KID_STD = "kid_std"
IS_MEAN = "is_mean"
IS_STD = "is_std"
PRECISION = "precision"
RECALL = "recall"
#: MNIST's own metrics: digit classes the bundled classifier reads in >= 1% of samples.
CLASSES_COVERED = "classes_covered"
#: MNIST's own metrics: KL divergence (natural log) of the read digits' histogram from uniform; 0 when balanced.
CLASS_KL = "class_kl"
#: MNIST's own metrics, conditional runs only: the share of samples read as the class they were drawn for.
CLASS_AGREEMENT = "class_agreement"
#: Conditional runs only: the lowest class agreement of any one class.
CLASS_AGREEMENT_MIN = "class_agreement_min"
#: Datasets with known modes: how many of the modes the generated samples cover.
MODES = "modes"
#: The share of generated samples close to some mode (a 2-D mixture: within 3 standard deviations of a centre).
HIGH_QUALITY = "high_quality"
#: KL divergence (natural log) of the generated samples' mode histogram from uniform: 0 when balanced.
MODE_KL = "mode_kl"


@dataclass(frozen=True)
class MetricInfo:
    """How one metric is read and shown."""
    key: str
    title: str  # a column title and a plot title
    lower_is_better: bool
    decimals: int
    column: bool = True  # a leaderboard column
    plotted: bool = True  # a panel of the metrics-versus-step plot
    log_scale: bool = False


METRICS: tuple[MetricInfo, ...] = (
    MetricInfo(FID, "FID", True, 2, log_scale=True),
    MetricInfo(KID_MEAN, "KID", True, 4),
    MetricInfo(KID_STD, "KID std", True, 4, column=False, plotted=False),
    MetricInfo(IS_MEAN, "IS", False, 2),
    MetricInfo(IS_STD, "IS std", False, 2, column=False, plotted=False),
    MetricInfo(PRECISION, "Precision", False, 3),
    MetricInfo(RECALL, "Recall", False, 3),
    MetricInfo(CLASSES_COVERED, "Classes", False, 1),
    MetricInfo(CLASS_KL, "Class KL", True, 3, plotted=False),
    MetricInfo(CLASS_AGREEMENT, "Class agreement", False, 3),
    MetricInfo(CLASS_AGREEMENT_MIN, "Worst class agreement", False, 3, column=False, plotted=False),
    MetricInfo(MODES, "Modes", False, 1),
    MetricInfo(HIGH_QUALITY, "High-quality share", False, 3),
    MetricInfo(MODE_KL, "Mode KL", True, 3),
)
BY_KEY: dict[str, MetricInfo] = {m.key: m for m in METRICS}
#: What :func:`ganzoo.metrics.score_images` returns for every image set, whatever its dataset.
IMAGE_METRIC_KEYS = (FID, KID_MEAN, KID_STD, IS_MEAN, IS_STD, PRECISION, RECALL)
