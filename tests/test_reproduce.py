"""Step budgets per row, fixed thread counts, and `bench --reproduce` against committed results."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from conftest import registered

import ganzoo
from ganzoo.bench import BenchProfile, bench, load_profile, load_results
from ganzoo.bench.leaderboard import render
from ganzoo.bench.plan import plan_trials
from ganzoo.bench.reproduction import IDENTICAL, MISSING, OUTSIDE, WITHIN, compare, prediction_interval
from ganzoo.cli import cli
from ganzoo.errors import UsageError
from ganzoo.registry import get_registry

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "benchmarks" / "results" / "tiny"


def small_profile(**changes) -> BenchProfile:
    base = dict(name="small", variants=["vanilla"], steps=2, num_fake=100, device="cpu",
                overrides={"batch_size": 8, "log_every": 1})
    return BenchProfile(**{**base, **changes})


def trial(variant: str, seed: int, fid: float, status: str = "ok") -> dict:
    return {"variant": variant, "seed": seed, "status": status, "final": {"fid": fid, "classes_covered": 10.0}}


def test_prediction_interval_by_hand() -> None:
    # mean 12, sample std 2, t(0.975, 2 df) = 4.302653, sqrt(1/1 + 1/3) = 1.154701: half width 9.93655
    low, high = prediction_interval([10.0, 12.0, 14.0], 1)
    assert low == pytest.approx(12 - 9.93655, abs=1e-4) and high == pytest.approx(12 + 9.93655, abs=1e-4)
    # the mean of three new seeds: sqrt(1/3 + 1/3) = 0.816497, half width 7.02623
    low, high = prediction_interval([10.0, 12.0, 14.0], 3)
    assert high - 12 == pytest.approx(7.02623, abs=1e-4)
    assert prediction_interval([5.0], 1) == (5.0, 5.0)  # one committed seed: no spread to go by


def test_compare_says_identical_within_outside_and_missing() -> None:
    committed = [trial("dcgan", s, f) for s, f in enumerate([10.0, 12.0, 14.0])]
    committed += [trial("wgan-gp", s, f) for s, f in enumerate([20.0, 21.0, 22.0])]
    committed += [trial("vanilla", 0, 50.0)]

    def verdicts(new: list[dict]) -> dict[tuple[str, str], str]:
        return {(c.variant, c.metric): c.verdict for c in compare(committed, new)}

    same = verdicts([trial("dcgan", 0, 10.0), trial("wgan-gp", 0, 20.0), trial("vanilla", 0, 50.0)])
    assert set(same.values()) == {IDENTICAL}
    moved = verdicts([trial("dcgan", 0, 19.0), trial("wgan-gp", 0, 40.0), trial("vanilla", 0, 1.0, "failed")])
    assert moved[("dcgan", "fid")] == WITHIN  # 19 is inside 12 ± 9.94
    assert moved[("wgan-gp", "fid")] == OUTSIDE  # 40 is outside 21 ± 4.97
    assert moved[("dcgan", "classes_covered")] == IDENTICAL
    assert moved[("vanilla", "fid")] == MISSING


def test_rows_take_their_own_step_budget_and_eval_interval(tmp_path: Path) -> None:
    profile = small_profile(variants=["vanilla", "wgan"], eval_every=0,
                            budgets={"wgan-gp": {"steps": 3, "eval_every": 1}},
                            variant_overrides={"wgan-gp": {"generator_options": {"width": 2},
                                                           "discriminator_options": {"width": 2}}})
    results = bench(profile=profile, out=tmp_path / "b", progress=False, cache_dir=tmp_path / "cache")
    steps = {t["variant"]: (t["steps"], [h["step"] for h in t["history"]]) for t in results["trials"]}
    assert steps == {"vanilla": (2, [0, 2]), "wgan-gp": (3, [0, 1, 2, 3])}
    assert {t["variant"]: t["protocol"]["budget"]["steps"] for t in results["trials"]} == {"vanilla": 2, "wgan-gp": 3}
    page = render([tmp_path / "b"], tmp_path / "board.md")
    assert "Each row's budget under its name" in page and "| wgan-gp<br><small>3 steps" in page
    # an explicit step budget is every row's
    again = bench(profile=profile, out=tmp_path / "c", steps=1, progress=False, cache_dir=tmp_path / "cache")
    assert {t["steps"] for t in again["trials"]} == {1}
    with pytest.raises(ganzoo.ConfigError, match="budgets: unknown variant 'dcgn'"):
        bench(profile=small_profile(budgets={"dcgn": {"steps": 3}}), out=tmp_path / "d", progress=False)


def test_a_profile_fixes_the_thread_count_of_its_trials(tmp_path: Path) -> None:
    torch.set_num_threads(2)
    results = bench(profile=small_profile(threads=1), out=tmp_path / "b", progress=False, cache_dir=tmp_path / "c")
    assert results["trials"][0]["hardware"]["threads"] == 1
    assert results["trials"][0]["hardware"]["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert torch.get_num_threads() == 2  # the caller's setting is left as it was


def test_reproduce_cli_reports_identical_and_exits_1_when_figures_moved(tmp_path: Path, runner) -> None:
    profile = small_profile(seeds=2)
    bench(profile=profile, out=tmp_path / "committed", progress=False)
    result = runner.invoke(cli, ["bench", "--reproduce", str(tmp_path / "committed"), "--out",
                                 str(tmp_path / "again"), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "expected: identical figures (same machine type)" in result.output
    assert "reproduced (FID per row: vanilla: identical)" in result.output
    # a committed figure nobody can get again: FID moved far outside the two seeds' spread
    path = tmp_path / "committed" / "results.json"
    data = json.loads(path.read_text())
    for t in data["trials"]:
        t["final"]["fid"] += 1000.0 + t["seed"]
    path.write_text(json.dumps(data))
    moved = runner.invoke(cli, ["bench", "--reproduce", str(path), "--out", str(tmp_path / "third"),
                                "--seeds", "1", "--no-progress"])
    assert moved.exit_code == 1 and "not reproduced (FID per row: vanilla: outside spread)" in moved.output
    clash = runner.invoke(cli, ["bench", "--reproduce", str(path), "--steps", "5"])
    assert clash.exit_code == 2 and "drop --steps" in clash.output
    into_itself = runner.invoke(cli, ["bench", "--reproduce", str(path), "--out", str(tmp_path / "committed")])
    assert into_itself.exit_code == 2 and "overwrite the committed results" in into_itself.output
    too_many = runner.invoke(cli, ["bench", "--reproduce", str(path), "--seeds", "3"])
    assert too_many.exit_code == 2 and "--seeds must be 1 to 2" in too_many.output


def test_reproduce_uses_the_recorded_thread_count_where_the_profile_sets_none(tmp_path: Path) -> None:
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        bench(profile=small_profile(), out=tmp_path / "committed", progress=False)  # threads: null
        torch.set_num_threads(2)  # a bench of that profile would now train with 2 threads
        report = ganzoo.reproduce(tmp_path / "committed", out=tmp_path / "again", progress=False)
    finally:
        torch.set_num_threads(before)
    again, committed = load_results(tmp_path / "again"), load_results(tmp_path / "committed")
    assert [t["hardware"]["threads"] for t in again["trials"]] == [1]
    assert report.same_machine_type and report.rows == {"vanilla": IDENTICAL}
    # the same trials as committed: a re-run into a finished bench of that profile would train nothing again
    assert [t["config_hash"] for t in again["trials"]] == [t["config_hash"] for t in committed["trials"]]
    assert again["profile"]["threads"] is None


def test_the_threads_argument_of_bench_is_checked(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="at least 1"):
        bench(profile=small_profile(), out=tmp_path / "b", threads=0)
    with pytest.raises(UsageError, match="local executor"):
        bench(profile=small_profile(), out=tmp_path / "b", threads=1, executor="ray")


def test_reproduce_into_a_finished_bench_compares_without_training_again(tmp_path: Path) -> None:
    """The README's main job then `--reproduce ... --out runs/bench`: the trials are there, nothing retrains."""
    import shutil

    profile = small_profile(variants=["vanilla", "gan"], seeds=2, threads=1)  # an alias, as the README names wgan
    bench(profile=profile, out=tmp_path / "committed", progress=False)
    bench(profile=profile, out=tmp_path / "mine", progress=False)  # all the seeds, as `ganzoo bench` does
    shutil.rmtree(tmp_path / "committed" / "vanilla")  # only results.json is needed to compare
    trial = tmp_path / "mine" / "vanilla" / "seed-0" / "samples.png"
    before = trial.stat().st_mtime_ns
    report = ganzoo.reproduce(tmp_path / "committed", seeds=1, out=tmp_path / "mine", progress=False)
    assert trial.stat().st_mtime_ns == before  # not trained again
    assert report.reproduced and report.rows == {"vanilla": IDENTICAL}
    kept = load_results(tmp_path / "mine")["trials"]  # the seed the reproduction did not plan is still there
    assert sorted((t["variant"], t["seed"]) for t in kept) == [("vanilla", 0), ("vanilla", 1)]


def test_the_committed_tiny_profile_reproduces(tmp_path: Path) -> None:
    """Re-runs benchmarks/results/tiny: identical figures on the machine type it was made on (CPU, instruction
    set, threads, torch), figures within its seed spread anywhere else."""
    report = ganzoo.reproduce(TINY, out=tmp_path / "tiny", progress=False)
    assert report.reproduced, report.rows
    committed = load_results(TINY)["trials"]
    assert {t["status"] for t in committed} == {"ok"} and len({t["seed"] for t in committed}) >= 2
    if report.same_machine_type:
        assert {c.verdict for c in report.comparisons} == {IDENTICAL}, [
            (c.variant, c.metric, c.committed, c.new) for c in report.comparisons if c.verdict != IDENTICAL]
    else:
        fid = [c for c in report.comparisons if c.metric == "fid"]
        assert fid and all(math.isfinite(c.new_mean) for c in fid)


class ReuseByDefault:
    """A variant whose recipe reuses the fake batch: a default that older results did not have."""

    @ganzoo.hookimpl
    def register_variants(self, register):
        register(ganzoo.Variant("reuse-gan", generator="mlp", discriminator="mlp", loss="gan",
                                defaults={"generator_batch": "reuse"}, aliases=("rgan",)))


def test_the_readme_main_job_finds_its_trials_in_the_committed_default_results(tmp_path: Path) -> None:
    """The README's main job, `ganzoo bench --jobs 2` then `ganzoo bench --reproduce benchmarks/results/default
    --seeds 1 --out runs/bench`, compares without training again only while the committed default results were
    made with today's defaults: after a default changes, re-run them (`ganzoo bench --seeds 3 --jobs 2`)."""
    committed = load_results(ROOT / "benchmarks" / "results" / "default")["trials"]
    plan = plan_trials(load_profile("default", seeds=3), tmp_path, get_registry())
    assert {(e.row, e.seed, e.config_hash) for e in plan} == {
        (t["variant"], t["seed"], t["config_hash"]) for t in committed}


def test_reproduce_pins_what_committed_trials_ran_with() -> None:
    """A default changed since the results were made: the re-run pins the recorded value (or, for records from
    before the key existed, the former default) for that row, and leaves rows that resolve as recorded alone."""
    from ganzoo.bench.reproduction import pin_former_defaults

    profile = small_profile(variants=["rgan", "rgan+ema", "vanilla"], variant_overrides={"rgan": {"latent_dim": 8}})
    before_the_key = [{"variant": row, "protocol": {"config": {}}} for row in ("reuse-gan", "reuse-gan+ema", "vanilla")]
    with registered(ReuseByDefault(), "reuse-by-default"):
        pinned = pin_former_defaults(profile, before_the_key)
        former = {"compile": False, "channels_last": False, "fused_optimizer": False,  # now `auto`, for every row
                  "discriminator_pass": "separate"}
        assert pinned.variant_overrides == {"rgan": {"latent_dim": 8},
                                            "reuse-gan": {"latent_dim": 8, "generator_batch": "fresh", **former},
                                            "reuse-gan+ema": {"generator_batch": "fresh", **former},
                                            "vanilla": {"generator_batch": "fresh", **former}}  # reuses now
        recorded = [{"variant": t["variant"], "protocol": {"config": {
            "generator_batch": "reuse", "compile": "auto", "channels_last": "auto", "fused_optimizer": "auto",
            "discriminator_pass": "auto"}}} for t in before_the_key]
        assert pin_former_defaults(profile, recorded) == profile


COMMITTED = sorted((ROOT / "benchmarks" / "results").rglob("results.json"))


def test_every_committed_results_directory_is_checked() -> None:
    """Every results directory holds a bench (its trial hashes checked below) or a sweep (its spec hashes)."""
    sweeps = sorted((ROOT / "benchmarks" / "results").rglob("sweep.json"))
    dirs = {p.parent.relative_to(ROOT / "benchmarks" / "results").parts[0] for p in [*COMMITTED, *sweeps]}
    assert dirs == {p.name for p in (ROOT / "benchmarks" / "results").iterdir() if p.is_dir()}


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.parent.relative_to(ROOT / "benchmarks" / "results")
                         .as_posix())
def test_every_committed_trial_hash_is_its_config_and_protocol(path: Path) -> None:
    """Each committed trial's config_hash is trial_hash(its recorded config, the Protocol of its profile part
    and budget), and re-planning the stored profile gives that hash for every trial whose config resolves today
    as it was recorded (a default changed since changes the config, and so rightly the hash)."""
    from ganzoo.bench.profile import Budget, trial_hash
    from ganzoo.bench.records import read_results
    from ganzoo.bench.reproduction import pin_former_defaults

    loaded = read_results(path)
    trials = loaded.data["trials"]
    parts = {part.dataset: part for part in loaded.profile.parts()}
    for t in trials:
        budget = Budget(steps=t["protocol"]["budget"]["steps"], eval_every=t["protocol"]["eval_every"])
        protocol = parts[t["protocol"]["dataset"]].protocol(budget)
        assert trial_hash(t["protocol"]["config"], protocol) == t["config_hash"], (t["variant"], t["seed"])
    recorded = {(t["variant"], t["seed"], t["protocol"]["dataset"]): t for t in trials}
    replanned = 0
    for entry in plan_trials(pin_former_defaults(loaded.profile, trials), path.parent, get_registry()):
        t = recorded.get((entry.row, entry.seed, entry.profile.dataset))
        if t is not None and {**entry.config.model_dump(mode="json"), "out": None} == {**t["protocol"]["config"],
                                                                                         "out": None}:
            assert entry.config_hash == t["config_hash"], (entry.row, entry.seed)
            replanned += 1
    if path.parent.name in ("default", "zoo", "collapse", "pacgan-stacked-mnist", "generator-batch-zoo-fresh"):
        assert replanned == len(trials)  # these resolve today as they were made


def test_every_committed_sweep_row_keeps_its_spec_hash() -> None:
    from ganzoo.bench.records import load_sweep
    from ganzoo.sweep.tune import spec_hash

    sweeps = sorted((ROOT / "benchmarks" / "results").rglob("sweep.json"))
    assert sweeps
    for path in sweeps:
        data = load_sweep(path)
        profile = BenchProfile.model_validate(data["profile"])
        for row, found in data["rows"].items():
            assert spec_hash(profile, row) == found["spec_hash"], (path, row)


def test_the_protocol_is_exactly_what_a_trial_hash_covers() -> None:
    """A trial's identity changes with a Protocol field and with nothing else of the profile; threads enters it
    only when set, and a row's own budget replaces the profile's steps and eval_every."""
    from ganzoo.bench.profile import Protocol

    profile = small_profile()
    plan = plan_trials(profile, Path("out"), get_registry())
    from ganzoo.sweep.spec import SweepSpec

    same = {"name": "other", "description": "x", "fid_target": 1.0, "cpus_per_trial": 2.0, "gpus_per_trial": 1.0,
            "seeds": 1, "variants": ["vanilla"], "sweep": SweepSpec(space={"lr_g": {"uniform": [0.1, 0.2]}})}
    again = plan_trials(profile.model_copy(update=same), Path("else"), get_registry())
    assert again[0].config_hash == plan[0].config_hash
    assert "threads" not in profile.protocol(profile.budget("vanilla")).hashed()
    assert profile.model_copy(update={"threads": 1}).protocol(profile.budget("vanilla")).hashed()["threads"] == 1
    assert set(Protocol.model_fields) < set(BenchProfile.model_fields)
    other = plan_trials(profile.model_copy(update={"num_fake": 99}), Path("out"), get_registry())
    assert other[0].config_hash != plan[0].config_hash
