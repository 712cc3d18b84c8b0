"""Processes and places of a bench (issue #25): workers die with a killed bench, a re-run never trains beside a
live worker, a Ray address is checked and joined with a bounded wait, and a bench does not discard another
bench's trials without --overwrite."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import QUICK, registered

from ganzoo import Loss, LossSpec, Variant, hookimpl, rundir
from ganzoo.bench import BenchProfile, bench
from ganzoo.bench.records import LOST
from ganzoo.cli import cli
from ganzoo.errors import UsageError

TINY = {**QUICK, "batch_size": 8, "generator_options": {"hidden": [8]}, "discriminator_options": {"hidden": [8]}}


def tiny_profile(**changes) -> BenchProfile:
    base = dict(name="tiny", variants=["vanilla"], steps=2, num_fake=50, device="cpu", threads=1, overrides=TINY)
    return BenchProfile(**{**base, **changes})


def _children(pid: int) -> list[int]:
    """The pids of ``pid``'s living child processes, read from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # an orphan nobody reaps is a zombie: it runs no more


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="reads the process table from /proc")
def test_sigterm_to_a_parallel_bench_kills_its_workers_and_a_rerun_works(tmp_path: Path, runner) -> None:
    profile = tmp_path / "long.yaml"
    profile.write_text(yaml.safe_dump(tiny_profile(seeds=2, steps=1_000_000).model_dump(mode="json")))
    out = tmp_path / "bench"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    parent = subprocess.Popen([sys.executable, "-m", "ganzoo", "bench", "--config", str(profile), "--jobs", "2",
                               "--out", str(out), "--no-progress"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, start_new_session=True)
    workers: list[int] = []
    try:
        logs = [out / "vanilla" / f"seed-{seed}" / "log.jsonl" for seed in (0, 1)]
        deadline = time.monotonic() + 90
        while not all(log.is_file() and log.stat().st_size for log in logs):  # both workers are training
            assert parent.poll() is None, parent.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "the workers did not start training"
            time.sleep(0.2)
        workers = _children(parent.pid)
        assert len(workers) >= 2
        parent.send_signal(signal.SIGTERM)
        parent.wait(timeout=10)
        deadline = time.monotonic() + 5
        while any(map(_alive, workers)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [pid for pid in workers if _alive(pid)], "workers outlived the bench"
    finally:
        for pid in [parent.pid, *workers]:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        parent.wait(timeout=10)
    # the re-run takes over the dead bench's locks and trains both trials (a short budget this time)
    result = runner.invoke(cli, ["bench", "--config", str(profile), "--steps", "2", "--out", str(out),
                                 "--no-progress"])
    assert result.exit_code == 0, result.output
    trials = json.loads((out / "results.json").read_text())["trials"]
    assert [(t["seed"], t["status"]) for t in trials] == [(0, "ok"), (1, "ok")]
    assert not list(out.rglob(rundir.LOCK_FILE))


def test_a_trial_directory_a_live_process_holds_is_left_alone(tmp_path: Path) -> None:
    trial = tmp_path / "vanilla" / "seed-0"
    trial.mkdir(parents=True)
    (trial / "log.jsonl").write_text("a live worker's file")
    (trial / rundir.LOCK_FILE).write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                                      "started": "then"}))
    results = bench(profile=tiny_profile(), out=tmp_path, progress=False, cache_dir=tmp_path / "cache")
    record = results["trials"][0]
    assert record["status"] == LOST and "in use by process" in record["reason"]
    assert (trial / "log.jsonl").read_text() == "a live worker's file"  # not emptied, not trained over
    (trial / rundir.LOCK_FILE).unlink()  # the worker is gone: the next run trains it
    again = bench(profile=tiny_profile(), out=tmp_path, progress=False, cache_dir=tmp_path / "cache")
    assert again["trials"][0]["status"] == "ok" and "a live worker's file" not in (trial / "log.jsonl").read_text()


def _ray_cli(runner, tmp_path: Path, address: str):
    started = time.monotonic()
    result = runner.invoke(cli, ["bench", "--executor", "ray", "--address", address, "--variants", "vanilla",
                                 "--steps", "1", "--out", str(tmp_path / "out"), "--no-progress"])
    return result, time.monotonic() - started


def test_a_malformed_ray_address_is_a_usage_error(tmp_path: Path, runner) -> None:
    pytest.importorskip("ray")
    for address in ("bogus:::", "head", "head:0", "head:99999", "ray://", "::1:6379"):
        result, _ = _ray_cli(runner, tmp_path, address)
        assert result.exit_code == 2, (address, result.output)
        assert "is not a Ray cluster address" in result.output and "HOST:PORT" in result.output
        assert "Traceback" not in result.output and not isinstance(result.exception, ValueError)


def test_an_unreachable_ray_address_fails_fast_and_says_what_to_check(tmp_path: Path, runner,
                                                                      monkeypatch) -> None:
    pytest.importorskip("ray")
    import ganzoo.ray_cluster as ray_cluster

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    result, seconds = _ray_cli(runner, tmp_path, f"127.0.0.1:{closed}")
    assert result.exit_code == 1, result.output
    assert f"cannot reach the Ray cluster at '127.0.0.1:{closed}'" in result.output
    assert "ray start --head" in result.output
    assert "Traceback" not in result.output and seconds < 45
    monkeypatch.setattr(ray_cluster, "CONNECT_TIMEOUT_S", 1.0)
    with socket.socket() as silent:  # accepts connections, never answers: not a Ray head
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        result, seconds = _ray_cli(runner, tmp_path, f"127.0.0.1:{silent.getsockname()[1]}")
    assert result.exit_code == 1, result.output
    assert "does not answer as Ray does" in result.output and seconds < 45


def test_a_bench_does_not_train_over_another_benchs_trials_without_overwrite(tmp_path: Path, runner) -> None:
    out, cache = tmp_path / "bench", tmp_path / "cache"
    first = bench(profile=tiny_profile(), out=out, progress=False, cache_dir=cache)
    checkpoint = out / "vanilla" / "seed-0" / "checkpoints" / "step-00000002.pt"
    assert checkpoint.is_file()
    again = bench(profile=tiny_profile(), out=out, progress=False, cache_dir=cache)  # the same bench: kept
    assert again["trials"] == first["trials"]
    for other in (tiny_profile(steps=3), tiny_profile(overrides={**TINY, "lr_g": 1e-3})):
        with pytest.raises(UsageError, match=r"vanilla seed 0.*would train over.*--overwrite"):
            bench(profile=other, out=out, progress=False, cache_dir=cache)
    assert json.loads((out / "results.json").read_text())["trials"] == first["trials"] and checkpoint.is_file()

    def stored() -> list[tuple[str, int]]:
        return [(t["variant"], t["seed"]) for t in json.loads((out / "results.json").read_text())["trials"]]

    dcgan = bench(profile=tiny_profile(variants=["dcgan"]), out=out, progress=False, cache_dir=cache)
    assert [(t["variant"], t["seed"]) for t in dcgan["trials"]] == [("dcgan", 0)]  # what this bench planned
    assert sorted(stored()) == [("dcgan", 0), ("vanilla", 0)] and checkpoint.is_file()  # the other rows are kept
    bench(profile=tiny_profile(seeds=2), out=out, progress=False, cache_dir=cache)  # adds seed 1, keeps seed 0
    assert sorted(stored()) == [("dcgan", 0), ("vanilla", 0), ("vanilla", 1)]
    one = bench(profile=tiny_profile(seeds=1), out=out, progress=False, cache_dir=cache)  # as --reproduce --seeds 1
    assert one["trials"] == first["trials"] and sorted(stored()) == [("dcgan", 0), ("vanilla", 0), ("vanilla", 1)]
    config = tmp_path / "p.yaml"
    config.write_text(yaml.safe_dump(tiny_profile(steps=3).model_dump(mode="json")))
    args = ["bench", "--config", str(config), "--out", str(out), "--no-progress"]
    refused = runner.invoke(cli, args)
    assert refused.exit_code == 2 and str(out) in refused.output and "--overwrite" in refused.output
    assert "vanilla seed 0" in refused.output and "Traceback" not in refused.output
    replaced = runner.invoke(cli, [*args, "--overwrite"])
    assert replaced.exit_code == 0, replaced.output
    trials = json.loads((out / "results.json").read_text())["trials"]
    assert [(t["seed"], t["steps"]) for t in trials] == [(0, 3)]


def test_a_lock_is_never_left_empty_by_a_process_stopped_while_taking_it(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The lock's content is written before the lock exists (a hard link to a written file): stopping the
    process mid-write leaves no lock behind that would block every later run as one that names no process."""
    from ganzoo import rundir

    real_write = Path.write_text

    def stopped(self: Path, data: str, *args, **kwargs):  # the process dies halfway through the write
        real_write(self, data[: len(data) // 2], *args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(Path, "write_text", stopped)
    with pytest.raises(KeyboardInterrupt):
        with rundir.run_lock(tmp_path / "run"):
            pass
    monkeypatch.undo()
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == []  # neither the lock nor its temporary
    with rundir.run_lock(tmp_path / "run") as lock:
        assert json.loads(lock.read_text())["pid"] == os.getpid()


def test_a_trial_directory_holding_foreign_files_is_not_emptied(tmp_path: Path) -> None:
    out = tmp_path / "bench"
    foreign = out / "vanilla" / "seed-0"
    foreign.mkdir(parents=True)
    (foreign / "thesis.tex").write_text("months of work")
    result = bench(profile=tiny_profile(), out=out, progress=False, cache_dir=tmp_path / "cache")
    (trial,) = result["trials"]
    assert trial["status"] == "lost" and "thesis.tex" in trial["reason"]  # trained by the next run
    assert (foreign / "thesis.tex").read_text() == "months of work"
    (foreign / "thesis.tex").unlink()
    assert bench(profile=tiny_profile(), out=out, progress=False, cache_dir=tmp_path / "cache")["trials"][0][
        "status"] == "ok"


class InProcessVariant:
    """A variant registered in this process only (a notebook's, a test's): no worker process can load it."""

    @hookimpl
    def register_losses(self, register):
        register(LossSpec("in-process-loss", Loss))

    @hookimpl
    def register_variants(self, register):
        register(Variant("in-process", generator="mlp", discriminator="mlp", loss="gan"))


def test_plugins_registered_in_process_are_refused_where_trials_run_in_other_processes(tmp_path: Path) -> None:
    """The --jobs pool, Ray and Tune load plugins from entry points; a component that only this process knows
    is refused by name before anything trains, and the same bench runs here (jobs=1)."""
    from ganzoo.sweep.tune import sweep

    profile = tiny_profile(variants=["in-process", "vanilla"])
    with registered(InProcessVariant(), "in-process-plugin"):
        for kwargs in ({"jobs": 2}, {"executor": "ray"}):
            with pytest.raises(UsageError, match=r"variant 'in-process' of row 'in-process' comes from plugin "
                                                 r"'in-process-plugin'.*entry point"):
                bench(profile=profile, out=tmp_path / "refused", progress=False, **kwargs)
        with pytest.raises(UsageError, match=r"loss 'in-process-loss' of row 'vanilla'.*Ray Tune"):
            sweep(tiny_profile(overrides={**TINY, "loss": "in-process-loss"}, eval_every=1,
                               sweep={"space": {"lr_g": {"loguniform": [1e-4, 2e-4]}}, "samples": 1}),
                  out=tmp_path / "sweep", progress=False)
        assert not (tmp_path / "refused" / "results.json").exists()
        here = bench(profile=profile, out=tmp_path / "here", progress=False, cache_dir=tmp_path / "cache")
    assert [t["status"] for t in here["trials"]] == ["ok", "ok"]
