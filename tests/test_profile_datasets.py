"""Profiles that span datasets (``datasets:``): one results file, a run directory per dataset, a leaderboard
section per dataset, resume and reproduction by (dataset, row)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import ganzoo
from ganzoo.bench import BenchProfile, load_profile, load_results
from ganzoo.bench.leaderboard import render
from ganzoo.bench.plan import plan_trials
from ganzoo.bench.reproduction import IDENTICAL, reproduce
from ganzoo.cli import cli
from ganzoo.errors import ConfigError
from ganzoo.metric_keys import MODES
from ganzoo.plugins import list_plugins
from ganzoo.registry import get_registry


def mixtures_profile(**changes) -> BenchProfile:
    base = dict(name="mix", variants=["vanilla"], steps=4, num_fake=300, real_split="test", device="cpu",
                overrides={"batch_size": 16, "log_every": 2},
                datasets={"ring-8": {"steps": 6}, "grid-25": {"variants": ["vanilla", "ragan"],
                                                               "overrides": {"generator": "mlp",
                                                                             "discriminator": "mlp"}}})
    return BenchProfile(**{**base, **changes})


def test_each_dataset_gets_the_profile_with_its_changes(tmp_path: Path) -> None:
    ring, grid = mixtures_profile().parts()
    assert (ring.dataset, ring.steps, ring.variants) == ("ring-8", 6, ["vanilla"])
    assert (grid.dataset, grid.steps, grid.variants) == ("grid-25", 4, ["vanilla", "ragan"])
    # dicts merge key by key: the dataset's overrides add to the profile's
    assert grid.overrides == {"batch_size": 16, "log_every": 2, "generator": "mlp", "discriminator": "mlp"}
    assert ring.datasets == {} and BenchProfile(name="one").parts()[0].dataset == "mnist-5k"
    plan = plan_trials(mixtures_profile(), tmp_path, get_registry())
    assert [(e.profile.dataset, e.row, e.config.steps) for e in plan] == [
        ("ring-8", "vanilla", 6), ("grid-25", "vanilla", 4), ("grid-25", "ragan", 4)]
    assert Path(plan[1].config.out) == tmp_path / "grid-25" / "vanilla" / "seed-0"
    assert plan[0].config_hash != plan[1].config_hash  # the same row on two datasets: two trials


def test_dataset_changes_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="may not change dataset"):
        mixtures_profile(datasets={"ring-8": {"dataset": "grid-25"}})
    with pytest.raises(ValueError, match="threads"):
        mixtures_profile(datasets={"ring-8": {"threads": 2}})
    with pytest.raises(ConfigError, match=r"profile 'mix', datasets\.ring-8:\n  steps: Input should be greater"):
        mixtures_profile(datasets={"ring-8": {"steps": 0}}).parts()
    with pytest.raises(ConfigError, match=r"datasets\.grid-25:\n  stepz: Extra inputs"):
        mixtures_profile(datasets={"grid-25": {"stepz": 3}}).parts()


def test_a_bench_over_two_datasets_writes_one_results_file_and_resumes(tmp_path: Path, runner) -> None:
    profile_file = tmp_path / "mix.yaml"
    profile_file.write_text(yaml.safe_dump(mixtures_profile().model_dump(mode="json"), sort_keys=False))
    result = runner.invoke(cli, ["bench", "--config", str(profile_file), "--out", str(tmp_path / "b"),
                                 "--no-progress"])
    assert result.exit_code == 0, result.output
    # one table, rows named by dataset and row, the datasets' own metrics as columns
    assert "ring-8/vanilla" in result.output and "grid-25/ragan" in result.output and "Modes" in result.output
    results = load_results(tmp_path / "b")
    trials = results["trials"]
    assert [(t["protocol"]["dataset"], t["variant"], t["steps"]) for t in trials] == [
        ("ring-8", "vanilla", 6), ("grid-25", "vanilla", 4), ("grid-25", "ragan", 4)]
    assert all(t["status"] == "ok" and MODES in t["final"] for t in trials)
    assert trials[0]["artifacts"]["samples"] == "ring-8/vanilla/seed-0/samples.png"
    assert (tmp_path / "b" / "ring-8" / "vanilla" / "seed-0" / "samples.png").is_file()
    assert load_profile(tmp_path / "b" / "profile.yaml").datasets == results["profile"]["datasets"]

    again = ganzoo.bench(profile=profile_file, out=tmp_path / "b", progress=False)  # nothing left to train
    assert [t["wall_seconds"] for t in again["trials"]] == [t["wall_seconds"] for t in trials]

    page = render([tmp_path / "b"], tmp_path / "leaderboard.md")
    assert "## ring-8 — `mix`" in page and "## grid-25 — `mix`" in page
    assert "| ragan | " in page and "1 seed per row" in page

    # an explicit step budget holds for every dataset, whatever the dataset's own changes say
    steps = ganzoo.bench(profile=profile_file, out=tmp_path / "s", steps=3, variants=["vanilla"], progress=False)
    assert [(t["protocol"]["dataset"], t["variant"], t["steps"]) for t in steps["trials"]] == [
        ("ring-8", "vanilla", 3), ("grid-25", "vanilla", 3)]

    report = reproduce(tmp_path / "b", out=tmp_path / "r", variants=["ragan"], progress=False)
    assert report.rows == {"grid-25/ragan": IDENTICAL}  # the same machine: the same figures
    assert {t["protocol"]["dataset"] for t in load_results(tmp_path / "r")["trials"]} == {"grid-25"}


def test_the_collapse_profile_covers_both_mixtures_and_stacked_mnist() -> None:
    parts = {p.dataset: p for p in load_profile("collapse").parts()}
    assert list(parts) == ["ring-8", "grid-25", "stacked-mnist"]
    assert all(p.seeds == 3 for p in parts.values())
    registry = get_registry()
    builtin_plugins = {plugin.name for plugin in list_plugins() if plugin.builtin}
    builtin = [registry.variants.get(name) for name in registry.variants.names()]
    unconditional = {entry.item.name for entry in builtin if entry.plugin in builtin_plugins
                     and not registry.generators.get(entry.item.generator).item.conditional}
    # r3gan and stylegan2 build networks for square images only, so the collapse profile (2-D mixtures too) omits them
    unconditional -= {"r3gan", "stylegan2"}
    assert len(unconditional) == 6  # vanilla, dcgan, wgan-gp, wgan-clip, sngan, ragan
    for dataset, part in parts.items():
        rows = {row.split("+")[0] for row in part.variants}
        missing = unconditional - rows - ({"dcgan"} if dataset != "stacked-mnist" else set())
        assert not missing, (dataset, missing)
        assert any("+pac2" in row for row in part.variants)
