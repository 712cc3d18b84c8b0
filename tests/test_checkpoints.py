"""Checkpoints and resume under hostile conditions: SIGKILL, corrupt and malicious files, safe export."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import assert_same_weights

import ganzoo
from ganzoo.checkpoint import (
    GENERATOR_FILE,
    TENSORS_SHA256,
    atomic_write_bytes,
    clean_stale_temporaries,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
    tensors_sha256,
)
from ganzoo.cli import cli
from ganzoo.training.trainer import STATE_KEYS


def train_cli(args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("GANZOO_LOAD_PLUGINS", None)
    return subprocess.Popen([sys.executable, "-m", "ganzoo", "train", *args, "--no-progress"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.parametrize("variant", ["dcgan", "wgan-gp"])
def test_sigkill_then_resume_equals_uninterrupted_run(tmp_path: Path, variant: str) -> None:
    steps = 24
    args = ["--steps", str(steps), "--seed", "7", "--set", "batch_size=8", "--set", "checkpoint_every=2",
            "--set", "keep_last=2", "--set", "sample_every=0"]
    straight = train_cli([variant, *args, "--out", str(tmp_path / "straight")])
    killed = train_cli([variant, *args, "--out", str(tmp_path / "killed")])
    ckpts = tmp_path / "killed" / "checkpoints"
    deadline = time.time() + 240
    while time.time() < deadline and len(list_checkpoints(tmp_path / "killed")) < 2:
        time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)  # mid-run: no chance to clean up
    killed.wait()
    assert killed.returncode == -signal.SIGKILL
    interrupted_at = load_checkpoint(tmp_path / "killed")["step"]
    assert 0 < interrupted_at < steps, "the run was not interrupted mid-way; make it longer"
    assert straight.wait(timeout=300) == 0, straight.stdout.read()
    resumed = train_cli([variant, *args, "--out", str(tmp_path / "killed"), "--resume"])
    assert resumed.wait(timeout=300) == 0, resumed.stdout.read()
    assert not list(ckpts.glob(".tmp-*"))
    assert_same_weights(tmp_path / "straight", tmp_path / "killed")


def test_atomic_write_leaves_old_file_when_interrupted(tmp_path: Path) -> None:
    target = tmp_path / "file.bin"
    target.write_bytes(b"old")

    def crash(f):
        f.write(b"partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write_bytes(target, crash)
    assert target.read_bytes() == b"old" and list(tmp_path.iterdir()) == [target]
    (tmp_path / ".tmp-leftover").write_bytes(b"x")  # as left by a SIGKILL during a write
    assert [p.name for p in clean_stale_temporaries(tmp_path)] == [".tmp-leftover"]


def test_keep_last_and_latest_pointer(tmp_path: Path) -> None:
    for step in (1, 2, 3, 4):
        save_checkpoint(tmp_path, step, {"format": 1, "step": step}, keep_last=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-00000003.pt", "step-00000004.pt"]
    assert latest_checkpoint(tmp_path).name == "step-00000004.pt"
    (tmp_path / "checkpoints" / "latest").write_text("step-00000099.pt\n")  # dangling: falls back to newest
    assert latest_checkpoint(tmp_path).name == "step-00000004.pt"


class Payload:
    """A pickle that would create a file when unpickled."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_malicious_pickle_is_refused_and_never_runs(tmp_path: Path, runner) -> None:
    marker = tmp_path / "pwned"
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    evil = run / "checkpoints" / "step-00000005.pt"
    torch.save({"format": 1, "step": 5, "generator": Payload(marker)}, evil)
    result = runner.invoke(cli, ["sample", str(evil), "-o", str(tmp_path / "g.png")])
    assert result.exit_code == 1, result.output
    assert "refusing to load" in result.output
    result = runner.invoke(cli, ["train", "vanilla", "--out", str(run), "--resume"])
    assert result.exit_code == 1 and "refusing to load" in result.output
    assert not marker.exists()


def test_corrupt_checkpoint_is_a_clear_error(tmp_path: Path, runner, quick) -> None:
    ganzoo.train("vanilla", steps=2, out=tmp_path / "run", progress=False, overrides=quick)
    latest = latest_checkpoint(tmp_path / "run")
    latest.write_bytes(latest.read_bytes()[: latest.stat().st_size // 2])
    for args in (["sample", str(latest)], ["train", "vanilla", "--out", str(tmp_path / "run"), "--resume"]):
        result = runner.invoke(cli, args)
        assert result.exit_code == 1
        assert "corrupt or unreadable" in result.output and "Traceback" not in result.output


def test_generator_exports_as_safetensors(tmp_path: Path, runner, quick) -> None:
    result = ganzoo.train("dcgan", steps=2, out=tmp_path / "run", progress=False, overrides={**quick, "batch_size": 8})
    exported = tmp_path / "run" / GENERATOR_FILE
    assert exported.is_file()
    from_file = ganzoo.sample(exported, n=4, seed=3)
    assert torch.equal(from_file, ganzoo.sample(result.checkpoint, n=4, seed=3))
    assert runner.invoke(cli, ["sample", str(exported), "-n", "4", "-o", str(tmp_path / "g.png")]).exit_code == 0
    not_ours = tmp_path / "other.safetensors"
    not_ours.write_bytes(b"garbage")
    result = runner.invoke(cli, ["sample", str(not_ours)])
    assert result.exit_code == 1 and "not a valid safetensors file" in result.output


def test_deterministic_flag_reaches_torch_and_is_restored(tmp_path: Path, runner, monkeypatch) -> None:
    seen = []
    original = torch.use_deterministic_algorithms
    monkeypatch.setattr(torch, "use_deterministic_algorithms", lambda mode, **kw: (seen.append(mode), original(mode)))
    result = runner.invoke(cli, ["train", "vanilla", "--steps", "2", "--deterministic", "--set", "batch_size=8",
                                 "--out", str(tmp_path / "run"), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert seen == [True, False] and not torch.are_deterministic_algorithms_enabled()
    assert "deterministic: true" in (tmp_path / "run" / "config.yaml").read_text()


def test_checkpoint_without_rng_state_is_not_resumed(tmp_path: Path, runner, quick) -> None:
    ganzoo.train("vanilla", steps=2, out=tmp_path / "run", progress=False, overrides=quick)
    latest = latest_checkpoint(tmp_path / "run")
    state = load_checkpoint(latest)
    assert tuple(state) == STATE_KEYS  # what resume requires is exactly what a checkpoint holds
    del state["rng"]
    torch.save({**state, TENSORS_SHA256: tensors_sha256(state)}, latest)  # a well-formed file, lacking rng
    result = runner.invoke(cli, ["train", "vanilla", "--out", str(tmp_path / "run"), "--resume", "--steps", "4"])
    assert result.exit_code == 1 and "checkpoint lacks rng" in result.output
