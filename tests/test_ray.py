"""Trials on Ray (``bench --executor ray``) and sweeps on Ray Tune (``ganzoo sweep``), on a local Ray instance
with 2 CPUs."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import yaml

from ganzoo.bench import BenchProfile, bench, load_profile, load_results
from ganzoo.bench.leaderboard import render
from ganzoo.cli import cli
from ganzoo.errors import ConfigError, UsageError
from ganzoo.plots import plot_sweep
from ganzoo.sweep.spec import DEFAULTS_DIR, SWEEP_FILE, SWEEP_PLOT, TUNED_DIR, TUNED_PROFILE, SweepSpec
from ganzoo.sweep.tune import sweep

ray = pytest.importorskip("ray")  # the ray extra; CI installs it with the test extra

SPACE = {"lr_g": {"loguniform": [1e-4, 1e-3]}, "lr_d": {"loguniform": [1e-4, 1e-3]},
         "betas": {"choice": [[0.5, 0.999], [0.0, 0.9]]}}


@pytest.fixture(scope="module")
def local_ray():
    ray.init(address="local", num_cpus=2, num_gpus=0, include_dashboard=False, log_to_driver=False,
             logging_level="error")
    yield ray
    ray.shutdown()


def two_variants(**changes) -> BenchProfile:
    base = dict(name="ray", variants=["vanilla", "dcgan"], steps=3, num_fake=100, real_split="test", threads=1,
                device="cpu", overrides={"batch_size": 8, "log_every": 1},
                variant_overrides={"dcgan": {"generator_options": {"width": 8},
                                             "discriminator_options": {"width": 8}}})
    return BenchProfile(**{**base, **changes})


def scores(results: dict) -> list[tuple]:
    return [(t["variant"], t["seed"], t["status"], t["steps"], t["config_hash"], t["final"]) for t in results["trials"]]


def test_a_bench_on_ray_gives_the_local_scores_and_resumes(tmp_path: Path, local_ray) -> None:
    profile = two_variants()
    on_ray = bench(profile=profile, out=tmp_path / "ray", executor="ray", progress=False)
    local = bench(profile=profile, out=tmp_path / "local", progress=False)
    assert all(t["status"] == "ok" for t in on_ray["trials"])
    assert scores(on_ray) == scores(local)  # same seeds, same CPU, one thread each: the same figures
    assert (tmp_path / "ray" / "dcgan" / "seed-0" / "samples.png").is_file()  # written where the driver said
    again = bench(profile=profile.model_copy(update={"seeds": 2}), out=tmp_path / "ray", executor="ray",
                  progress=False)  # only seed 1 is new
    assert [t["seed"] for t in again["trials"]] == [0, 1, 0, 1]
    assert [t["wall_seconds"] for t in again["trials"] if t["seed"] == 0] == [
        t["wall_seconds"] for t in on_ray["trials"]]


def test_resources_the_cluster_cannot_grant_are_refused(tmp_path: Path, local_ray, runner) -> None:
    with pytest.raises(UsageError, match=r"1 GPU\(s\) \(gpus_per_trial.*more than 0"):
        bench(profile=two_variants(gpus_per_trial=1), out=tmp_path / "g", executor="ray", progress=False)
    with pytest.raises(UsageError, match="reserves no GPU per trial"):
        bench(profile=two_variants(device="cuda"), out=tmp_path / "g", executor="ray", progress=False)
    profile = tmp_path / "p.yaml"
    profile.write_text(yaml.safe_dump(two_variants(cpus_per_trial=64).model_dump(mode="json")))
    result = runner.invoke(cli, ["bench", "--config", str(profile), "--executor", "ray", "--out", str(tmp_path / "c")])
    assert result.exit_code == 2 and "cpus_per_trial" in result.output
    result = runner.invoke(cli, ["bench", "--address", "auto", "--out", str(tmp_path / "a")])
    assert result.exit_code == 2 and "--executor ray" in result.output
    result = runner.invoke(cli, ["bench", "--executor", "ray", "--jobs", "2", "--out", str(tmp_path / "j")])
    assert result.exit_code == 2 and "--jobs" in result.output


def test_without_ray_installed_the_error_says_how_to_install(tmp_path: Path, monkeypatch) -> None:
    import ganzoo.ray_cluster as ray_cluster

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now fails as if it were not installed
    with pytest.raises(UsageError, match=r"pip install 'ganzoo-gan\[ray\]'"):
        ray_cluster.connect(None)


def test_sweep_specs_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="lr_g: give one distribution"):
        SweepSpec(space={"lr_g": {"lognormal": [1, 2]}})
    with pytest.raises(ValueError, match=r"lr_g: uniform takes \[low, high\] with low < high"):
        SweepSpec(space={"lr_g": {"uniform": [2, 1]}})
    with pytest.raises(ValueError, match="positive low end"):
        SweepSpec(space={"lr_g": {"loguniform": [0, 1]}})
    with pytest.raises(UsageError, match="has no sweep section"):
        sweep(two_variants(), out=tmp_path / "s")
    with pytest.raises(ConfigError, match="'lr_gen' is not a training config key"):
        sweep(two_variants(eval_every=1, sweep=SweepSpec(space={"lr_gen": {"uniform": [0, 1]}})), out=tmp_path / "s")
    with pytest.raises(ConfigError, match="needs eval_every"):
        sweep(two_variants(sweep=SweepSpec(space=SPACE)), out=tmp_path / "s")
    with pytest.raises(ConfigError, match="equal steps"):
        sweep(two_variants(seconds=5, eval_every=1, sweep=SweepSpec(space=SPACE)), out=tmp_path / "s")
    assert SweepSpec(space=SPACE, variant_space={"dcgan": {"n_critic": {"choice": [1, 2]}}}).row_space(
        "dcgan+ema", "dcgan") == {**SPACE, "n_critic": {"choice": [1, 2]}}


def test_a_tiny_sweep_finishes_writes_its_table_and_benches_the_tuned_rows(tmp_path: Path, local_ray, runner,
                                                                           monkeypatch) -> None:
    profile = BenchProfile(name="tiny-sweep", variants=["vanilla"], steps=8, eval_every=4, num_fake=100,
                           real_split="test", threads=1, device="cpu", overrides={"batch_size": 8, "log_every": 4},
                           sweep=SweepSpec(space=SPACE, samples=4, scheduler="asha"))
    path = tmp_path / "tiny-sweep.yaml"
    path.write_text(yaml.safe_dump(profile.model_dump(mode="json")))
    result = runner.invoke(cli, ["sweep", "--config", str(path), "--out", str(tmp_path / "s"), "--no-progress"])
    assert result.exit_code == 0, result.output
    table = load_json(tmp_path / "s" / SWEEP_FILE)
    row = table["rows"]["vanilla"]
    assert len(row["trials"]) == 4 and {t["status"] for t in row["trials"]} <= {"completed", "stopped"}
    completed = [t for t in row["trials"] if t["status"] == "completed"]
    assert completed and all([e["step"] for e in t["evaluations"]] == [4, 8] for t in completed)
    for t in row["trials"]:  # every sampled configuration inside its distribution
        assert 1e-4 <= t["params"]["lr_g"] <= 1e-3 and t["params"]["betas"] in ([0.5, 0.999], [0.0, 0.9])
    best = min(completed, key=lambda t: t["final"])  # fid: lower is better, among trials of the whole budget
    assert row["best"]["trial_id"] == best["trial_id"] and row["best"]["params"] == best["params"]
    assert "vanilla" in result.output and f"{best['final']:.4g}" in result.output
    again = plot_sweep(table["rows"], tmp_path / "again.png", profile.fid_target,
                       f"{profile.name}: 4 configurations per row, fid at the end of the budget")
    assert (tmp_path / "s" / SWEEP_PLOT).read_bytes() == again.read_bytes()  # the figure is drawn from sweep.json

    tuned = load_profile(tmp_path / "s" / TUNED_PROFILE)
    assert tuned.name == "tiny-sweep (tuned)" and tuned.sweep is None
    assert tuned.variant_overrides["vanilla"]["lr_g"] == best["params"]["lr_g"]
    defaults, after = load_results(tmp_path / "s" / DEFAULTS_DIR), load_results(tmp_path / "s" / TUNED_DIR)
    assert defaults["trials"][0]["protocol"]["config"]["lr_g"] == 2e-4  # the paper's
    assert after["trials"][0]["protocol"]["config"]["lr_g"] == best["params"]["lr_g"]
    assert after["trials"][0]["steps"] == defaults["trials"][0]["steps"] == 8  # one budget
    assert after["trials"][0]["final"]["fid"] == best["final"]  # seed 0 and the best configuration: that trial

    page = render([tmp_path / "s"], tmp_path / "leaderboard.md")  # the trial table, then both benches
    assert "## mnist-5k — sweep `tiny-sweep`" in page and f"| {best['trial_id']} ★ |" in page
    assert page.index("## mnist-5k — sweep `tiny-sweep`") < page.index(
        "## mnist-5k — `tiny-sweep (paper defaults)`") < page.index("## mnist-5k — `tiny-sweep (tuned)`")

    monkeypatch.delenv("RAY_AIR_NEW_OUTPUT", raising=False)
    again = sweep(path, out=tmp_path / "s", progress=False)  # finished: nothing is searched or trained again
    assert again["rows"]["vanilla"]["trials"] == row["trials"]
    assert "RAY_AIR_NEW_OUTPUT" not in os.environ  # Tune's quiet settings last as long as the sweep

    # without its table the row's Tune experiment is restored (Tuner.restore), its finished trials not re-run
    logs = sorted((tmp_path / "s" / "runs" / "vanilla").glob("*/log.jsonl"))
    stamps = [log.stat().st_mtime_ns for log in logs]
    (tmp_path / "s" / SWEEP_FILE).unlink()
    restored = sweep(path, out=tmp_path / "s", compare=False, progress=False)
    assert restored["rows"]["vanilla"]["trials"] == row["trials"]
    assert len(logs) == 4 and [log.stat().st_mtime_ns for log in logs] == stamps


def load_json(path: Path) -> dict:
    import json

    return json.loads(path.read_text())


def _pixels_near(path: Path, rgb: tuple[int, int, int], tolerance: int = 40) -> int:
    import numpy as np
    from PIL import Image

    image = np.asarray(Image.open(path).convert("RGB")).astype(int)
    return int((np.abs(image - np.array(rgb)).sum(axis=-1) < tolerance).sum())


def test_the_sweep_figure_marks_failed_configurations_and_the_target(tmp_path: Path) -> None:
    def trial(status: str, final: float) -> dict:
        return {"status": status, "final": final}

    rows = {"a": {"metric": "fid", "trials": [trial("completed", 12.0), trial("completed", 80.0),
                                              trial("stopped", 40.0)]},
            "b": {"metric": "fid", "trials": [trial("completed", 25.0), trial("failed", float("nan"))]}}
    red, blue, green = (214, 39, 40), (31, 119, 180), (44, 160, 44)
    with_failure = plot_sweep(rows, tmp_path / "failed.png", target=30)
    assert _pixels_near(with_failure, red) > 20 and _pixels_near(with_failure, blue) > 60
    assert _pixels_near(with_failure, green) > 100  # the dashed target line and each row's "k/n" count
    rows["b"]["trials"][1] = trial("completed", 300.0)
    without = plot_sweep(rows, tmp_path / "completed.png")
    assert _pixels_near(without, red) == 0 and _pixels_near(without, green) == 0
    assert _pixels_near(without, blue) > _pixels_near(with_failure, blue)  # one more completed dot
