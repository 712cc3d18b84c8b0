"""The benchmark harness: records, failures and divergence, resume, and the leaderboard it feeds."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from conftest import registered
from torch import nn

import ganzoo
from ganzoo import Generator, Loss, LossSpec, Variant, hookimpl
from ganzoo.bench import BenchProfile, bench, load_profile
from ganzoo.bench.leaderboard import render, write_leaderboard
from ganzoo.cli import cli
from ganzoo.meta import list_profiles

ROOT = Path(__file__).resolve().parents[1]


def tiny_profile(**changes) -> BenchProfile:
    base = dict(name="tiny", variants=["vanilla"], steps=20, num_fake=200, device="cpu",
                overrides={"batch_size": 32, "log_every": 5})
    return BenchProfile(**{**base, **changes})


class NaNAfter(Loss):
    """The GAN loss until its third discriminator call, then NaN: a run that diverges at step 3."""

    def __init__(self) -> None:
        self.calls = 0

    def discriminator_loss(self, D, real, fake):
        self.calls += 1
        loss = nn.functional.softplus(-D(real)).mean() + nn.functional.softplus(D(fake)).mean()
        return loss * float("nan") if self.calls >= 3 else loss

    def generator_loss(self, D, fake):
        return nn.functional.softplus(-D(fake)).mean()


class Crashes(nn.Module):
    def __init__(self, latent_dim, image_shape):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(latent_dim, 784), nn.Tanh(), nn.Unflatten(1, (1, 28, 28)))
        self.calls = 0

    def forward(self, z):
        self.calls += 1
        if self.calls > 3:  # passes ganzoo's fit check and the first evaluation, then breaks
            raise RuntimeError("generator exploded")
        return self.net(z)


class Troublemakers:
    @hookimpl
    def register_generators(self, register):
        register(Generator("crashes", Crashes))

    @hookimpl
    def register_losses(self, register):
        register(LossSpec("nan-after-2", NaNAfter))

    @hookimpl
    def register_variants(self, register):
        register(Variant("diverges", generator="mlp", discriminator="mlp", loss="nan-after-2"))
        register(Variant("crashes", generator="crashes", discriminator="mlp", loss="gan"))


def test_bench_records_failures_and_divergence_and_goes_on(tmp_path: Path) -> None:
    with registered(Troublemakers(), "trouble"):
        results = bench(profile=tiny_profile(variants=["diverges", "crashes", "vanilla"]), out=tmp_path,
                        progress=False, cache_dir=tmp_path / "cache")
    trials = {t["variant"]: t for t in results["trials"]}
    assert trials["diverges"]["status"] == "diverged" and trials["diverges"]["diverged_at"] == 3
    assert "non-finite loss" in trials["diverges"]["reason"]
    assert not list((tmp_path / "diverges" / "seed-0").glob("checkpoints/*.pt"))  # no checkpoint left behind
    assert trials["crashes"]["status"] == "failed" and "generator exploded" in trials["crashes"]["reason"]
    ok = trials["vanilla"]
    assert ok["status"] == "ok" and ok["steps"] == 20 and ok["images_seen"] == 20 * 32
    assert [h["step"] for h in ok["history"]] == [0, 20]
    assert ok["untrained"]["fid"] == ok["history"][0]["fid"]
    assert set(ok["final"]) >= {"fid", "kid_mean", "is_mean", "precision", "recall", "classes_covered", "class_kl"}
    proto = ok["protocol"]
    assert proto["dataset"] == "mnist-5k" and proto["num_real"] == 4500 and proto["num_fake"] == 200
    assert len(proto["feature_extractor"]["sha256"]) == 64
    assert {"torch", "torch_fidelity", "ganzoo", "plugins"} <= proto["versions"].keys()
    assert proto["seed"] == 0 and len(proto["config_hash"]) == 16
    for key in ("samples", "loss_plot", "metrics_plot"):
        assert (tmp_path / ok["artifacts"][key]).is_file()
    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert [t["variant"] for t in on_disk["trials"]] == ["diverges", "crashes", "vanilla"]
    page = render([tmp_path], tmp_path / "board.md")
    assert "diverged at step 3 (seed 0)" in page and "failed (seed 0)" in page


def test_interrupted_bench_reruns_only_what_did_not_finish(tmp_path: Path) -> None:
    profile = tiny_profile(variants=["vanilla", "gan", "dcgan"], steps=2,
                           overrides={"batch_size": 8, "log_every": 1})
    first = bench(profile=profile, out=tmp_path, progress=False, cache_dir=tmp_path / "cache")
    assert [t["variant"] for t in first["trials"]] == ["vanilla", "dcgan"]  # the alias runs once
    data = json.loads((tmp_path / "results.json").read_text())
    data["trials"] = data["trials"][:1]  # as if the bench was killed during the dcgan trial
    (tmp_path / "results.json").write_text(json.dumps(data))
    log = tmp_path / "dcgan" / "seed-0" / "log.jsonl"
    stamp = log.stat().st_mtime_ns
    second = bench(profile=profile, out=tmp_path, progress=False, cache_dir=tmp_path / "cache")
    assert second["trials"][0] == first["trials"][0]  # kept as recorded, not re-run
    assert second["trials"][1]["status"] == "ok"
    assert log.stat().st_mtime_ns != stamp  # the dcgan trial trained again (its run directory written anew)


def test_trials_write_intermediate_grids_and_checkpoints_only_when_the_profile_asks(tmp_path: Path) -> None:
    quiet = bench(profile=tiny_profile(steps=4), out=tmp_path / "quiet", progress=False, cache_dir=tmp_path / "c")
    run = tmp_path / "quiet" / "vanilla" / "seed-0"
    assert quiet["trials"][0]["protocol"]["config"]["sample_every"] == 0
    assert not list((run / "samples").glob("step-*.png")) and [p.name for p in run.glob("checkpoints/*.pt")] == [
        "step-00000004.pt"]
    asked = tiny_profile(steps=4, overrides={"batch_size": 32, "sample_every": 2, "checkpoint_every": 2,
                                             "keep_last": 5})
    bench(profile=asked, out=tmp_path / "asked", progress=False, cache_dir=tmp_path / "c")
    run = tmp_path / "asked" / "vanilla" / "seed-0"
    assert sorted(p.name for p in (run / "samples").glob("step-*.png")) == ["step-00000002.png", "step-00000004.png"]
    assert sorted(p.name for p in run.glob("checkpoints/*.pt")) == ["step-00000002.pt", "step-00000004.pt"]


def test_evaluation_leaves_the_training_trajectory_unchanged(tmp_path: Path) -> None:
    with_eval = bench(profile=tiny_profile(steps=6, eval_every=2, variants=["dcgan"],
                                           overrides={"batch_size": 8, "log_every": 1}),
                      out=tmp_path / "a", progress=False, cache_dir=tmp_path / "cache")
    assert [h["step"] for h in with_eval["trials"][0]["history"]] == [0, 2, 4, 6]
    ganzoo.train("dcgan", steps=6, seed=0, out=tmp_path / "b", progress=False,
                 overrides={"batch_size": 8, "log_every": 1, "sample_every": 0})
    a = ganzoo.checkpoint.load_checkpoint(tmp_path / "a" / "dcgan" / "seed-0")
    b = ganzoo.checkpoint.load_checkpoint(tmp_path / "b")
    for net in ("generator", "discriminator"):
        for key, value in a[net].items():
            assert torch.equal(value, b[net][key]), f"{net}.{key}"


def test_profiles_load_and_bad_profiles_are_refused(tmp_path: Path) -> None:
    default = load_profile()
    assert default.name == "default" and default.dataset == "mnist-5k" and default.seconds is None
    assert default.threads == 1 and default.budget("dcgan").steps < default.budget("vanilla").steps
    assert load_profile("timed").seconds and load_profile("timed").feature_extractor == "ganzoo-mnist"
    assert {"default", "long", "timed", "tiny", "mnist", "fashion-mnist", "cifar10"} <= set(list_profiles())
    bad = tmp_path / "bad.yaml"
    bad.write_text("variants: [vanilla]\nnum_fakes: 10\n")
    with pytest.raises(ganzoo.ConfigError, match="num_fakes"):
        load_profile(bad)
    with pytest.raises(ganzoo.UsageError, match="unknown benchmark profile 'nope'"):
        load_profile("nope")


def test_bench_cli_usage_errors(runner) -> None:
    result = runner.invoke(cli, ["bench", "--variants", "vanilla,stylegan9"])
    assert result.exit_code == 2 and "unknown variant 'stylegan9'" in result.output
    result = runner.invoke(cli, ["bench", "--profile", "nope"])
    assert result.exit_code == 2 and "default" in result.output


def _fake_results(path: Path, fids: list[float]) -> Path:
    proto = {"profile": "p", "dataset": "mnist-5k", "real_split": "train", "num_real": 4500, "num_fake": 100,
             "budget": {"steps": 10, "seconds": None},
             "feature_extractor": {"name": "ganzoo-mnist", "sha256": "ab" * 32},
             "versions": {"torch": "2.x", "torch_fidelity": "0.4.0", "ganzoo": "0.1.0"}, "config": {}}
    trials = [{"variant": "dcgan", "seed": i, "config_hash": "0" * 16, "status": "ok", "steps": 10,
               "train_seconds": 4.0 + 2 * i,
               "images_per_second": 100.0, "final": {"fid": fid, "precision": 0.5}, "untrained": {"fid": 400.0},
               "wall_seconds": 10.0 + 4 * i,
               "protocol": proto, "hardware": {"cpu": "cpu", "threads": 2, "gpu": None}, "artifacts": {}}
              for i, fid in enumerate(fids)]
    path.write_text(json.dumps({"format": 1, "profile": {}, "trials": trials}))
    return path


def test_leaderboard_mean_and_std_over_seeds(tmp_path: Path, runner) -> None:
    results = _fake_results(tmp_path / "results.json", [10.0, 14.0])
    page = render([results], tmp_path / "board.md")
    # mean 12, sample std sqrt(((10-12)^2 + (14-12)^2) / 1) = 2.828...
    assert "| dcgan | 12.00&nbsp;<small>±&nbsp;2.83</small> | 0.500&nbsp;/&nbsp;– |" in page  # no recall scored
    assert "| 5&nbsp;<small>±&nbsp;1</small> |" in page  # train seconds 4 and 6: mean 5, std 1.41
    assert "2 seeds per row" in page  # what every row shares is said once, above the table
    out = tmp_path / "board.md"
    assert runner.invoke(cli, ["leaderboard", str(results), "-o", str(out)]).exit_code == 0
    assert runner.invoke(cli, ["leaderboard", str(results), "-o", str(out), "--check"]).exit_code == 0
    out.write_text(out.read_text() + "edited by hand\n")
    check = runner.invoke(cli, ["leaderboard", str(results), "-o", str(out), "--check"])
    assert check.exit_code == 1 and "out of date" in check.output


def test_parallel_jobs_record_every_trial_in_plan_order(tmp_path: Path) -> None:
    profile = tiny_profile(variants=["vanilla", "dcgan"], steps=2, seeds=2,
                           overrides={"batch_size": 8, "log_every": 1})
    results = bench(profile=profile, out=tmp_path, jobs=2, progress=False, cache_dir=tmp_path / "cache")
    assert [(t["variant"], t["seed"], t["status"]) for t in results["trials"]] == [
        ("vanilla", 0, "ok"), ("vanilla", 1, "ok"), ("dcgan", 0, "ok"), ("dcgan", 1, "ok")]
    assert all(t["hardware"]["threads"] == 1 for t in results["trials"])
    # the leaderboard shows seed 0's samples of every row in one image, and links every seed's grid and plots
    page = render([tmp_path], tmp_path / "board.md")
    assert page.count("![The samples of every row side by side") == 1
    assert "samples, seed [0](dcgan/seed-0/samples.png) [1](dcgan/seed-1/samples.png)" in page
    assert "losses, seed [0](dcgan/seed-0/loss.png) [1](dcgan/seed-1/loss.png)" in page
    # its figures are drawn from the results and their sample grids: the same bytes every time
    for out in ("a", "b"):
        write_leaderboard([tmp_path], tmp_path / out / "board.md")
    drawn = sorted((tmp_path / "a" / "board-figures").iterdir())
    assert [f.name for f in drawn] == sorted(re.findall(r"board-figures/([\w-]+\.png)", page))
    assert all(f.read_bytes() == (tmp_path / "b" / "board-figures" / f.name).read_bytes() for f in drawn)


def test_a_trial_whose_worker_died_is_trained_again(tmp_path: Path) -> None:
    from ganzoo.bench.records import LOST

    profile = tiny_profile(variants=["vanilla"], steps=2, seeds=2, overrides={"batch_size": 8, "log_every": 1})
    first = bench(profile=profile, out=tmp_path, progress=False, cache_dir=tmp_path / "cache")["trials"]
    data = json.loads((tmp_path / "results.json").read_text())
    data["trials"][1].update(status=LOST, reason="the trial's worker died (WorkerCrashedError)")
    (tmp_path / "results.json").write_text(json.dumps(data))
    logs = [tmp_path / "vanilla" / f"seed-{seed}" / "log.jsonl" for seed in (0, 1)]
    stamps = [log.stat().st_mtime_ns for log in logs]
    again = bench(profile=profile, out=tmp_path, progress=False, cache_dir=tmp_path / "cache")["trials"]
    assert [t["status"] for t in again] == ["ok", "ok"]
    assert again[0] == first[0] and logs[0].stat().st_mtime_ns == stamps[0]  # kept, not trained
    assert logs[1].stat().st_mtime_ns != stamps[1]  # trained again (its run directory written anew)
    assert again[1]["final"] == first[1]["final"]  # the same seed: the same figures


def test_same_seed_same_metrics(tmp_path: Path) -> None:
    profile = tiny_profile(variants=["vanilla"], steps=3, overrides={"batch_size": 8, "log_every": 1})
    a = bench(profile=profile, out=tmp_path / "a", progress=False, cache_dir=tmp_path / "cache")
    b = bench(profile=profile, out=tmp_path / "b", progress=False, cache_dir=tmp_path / "cache")
    from ganzoo.bench.records import TIMING_KEYS

    def scores(results: dict) -> list[dict]:  # every evaluation's step and metrics; its timings vary
        return [{k: v for k, v in h.items() if k not in TIMING_KEYS} for h in results["trials"][0]["history"]]

    assert scores(a) == scores(b) and all(set(TIMING_KEYS) <= set(h) for h in a["trials"][0]["history"])
    assert a["trials"][0]["final"]["fid"] == b["trials"][0]["final"]["fid"]


def test_evaluations_do_not_change_what_a_trial_trains(tmp_path: Path) -> None:
    """wgan-gp draws random numbers for its penalty every step: scoring it midway must not move them, so its
    scores at the end are bit for bit those of a trial evaluated only there."""
    narrow = {"batch_size": 8, "log_every": 2, "generator_options": {"width": 4},
              "discriminator_options": {"width": 4}}
    finals = [bench(profile=tiny_profile(variants=["wgan-gp"], steps=4, eval_every=every, threads=1,
                                         overrides=narrow),
                    out=tmp_path / f"every-{every}", progress=False, cache_dir=tmp_path / "c")["trials"][0]
              for every in (1, 4)]
    assert [h["step"] for h in finals[0]["history"]] == [0, 1, 2, 3, 4]
    assert finals[0]["final"] == finals[1]["final"]
