"""TensorBoard event files in every run directory, read back with tensorboard's own reader."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import ganzoo
from ganzoo.bench import BenchProfile, bench
from ganzoo.runlog import (
    LOG_FILE,
    TAG_D_LOSS,
    TAG_EVAL,
    TAG_G_LOSS,
    TAG_IMAGES_PER_SECOND,
    TAG_SAMPLES,
)

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")


def read_events(run: Path):
    acc = event_accumulator.EventAccumulator(str(run), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    return acc


def steps(acc, tag: str) -> list[int]:
    return [e.step for e in acc.Scalars(tag)]


def test_a_run_logs_losses_throughput_and_sample_grids(tmp_path: Path, quick) -> None:
    result = ganzoo.train("vanilla", steps=6, out=tmp_path / "run", progress=False,
                          overrides={**quick, "log_every": 2, "sample_every": 3})
    acc = read_events(result.out)
    assert {TAG_D_LOSS, TAG_G_LOSS, TAG_IMAGES_PER_SECOND} <= set(acc.Tags()["scalars"])
    lines = [json.loads(line) for line in (result.out / LOG_FILE).read_text().splitlines()]
    assert steps(acc, TAG_D_LOSS) == [line["step"] for line in lines] == [2, 4, 6]
    for event, line in zip(acc.Scalars(TAG_D_LOSS), lines, strict=True):
        assert event.value == pytest.approx(line["d_loss"], rel=1e-6)  # stored as float32
    for event, line in zip(acc.Scalars(TAG_G_LOSS), lines, strict=True):
        assert event.value == pytest.approx(line["g_loss"], rel=1e-6)
    # the fixed-latent grid at every sample_every and at the end
    assert [e.step for e in acc.Images(TAG_SAMPLES)] == [3, 6, 6]
    assert acc.Images(TAG_SAMPLES)[0].width > 28


def test_bench_evaluations_are_logged_under_eval(tmp_path: Path) -> None:
    profile = BenchProfile(name="tb", variants=["vanilla"], steps=4, eval_every=2, num_fake=100,
                           overrides={"batch_size": 8, "log_every": 1})
    trial = bench(profile=profile, out=tmp_path, progress=False)["trials"][0]
    acc = read_events(tmp_path / "vanilla" / "seed-0")
    for key in ("fid", "kid_mean", "precision", "recall", "classes_covered"):
        events = acc.Scalars(TAG_EVAL + key)
        assert [e.step for e in events] == [h["step"] for h in trial["history"]] == [0, 2, 4]
        for event, h in zip(events, trial["history"], strict=True):
            assert event.value == pytest.approx(h[key], rel=1e-6)


def test_resume_continues_the_logs_without_repeating_a_step(tmp_path: Path, quick) -> None:
    out = tmp_path / "run"
    ganzoo.train("vanilla", steps=4, out=out, progress=False,
                 overrides={**quick, "log_every": 1, "checkpoint_every": 2, "keep_last": 5})
    # the run is interrupted after logging steps 3 and 4 but before writing their checkpoint
    (out / "checkpoints" / "step-00000004.pt").unlink()
    (out / "checkpoints" / "latest").write_text("step-00000002.pt\n")
    ganzoo.train("vanilla", steps=6, out=out, progress=False, resume=True)
    lines = [json.loads(line)["step"] for line in (out / LOG_FILE).read_text().splitlines()]
    assert lines == [1, 2, 3, 4, 5, 6]
    acc = read_events(out)
    assert steps(acc, TAG_D_LOSS) == [1, 2, 3, 4, 5, 6]
