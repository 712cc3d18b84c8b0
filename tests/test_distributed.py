"""DistributedDataParallel through torchrun: 2 CPU processes on gloo, as CI can run them."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ganzoo.checkpoint import load_checkpoint

HERE = Path(__file__).resolve().parent


def torchrun(args: list[str], timeout: int = 300, expect: int = 0) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("GANZOO_LOAD_PLUGINS",)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", *args]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    assert result.returncode == expect, result.stdout[-3000:] + result.stderr[-3000:]
    assert "terminate called" not in result.stderr, result.stderr[-3000:]
    assert expect != 0 or "Traceback" not in result.stderr, result.stderr[-3000:]
    return result


def test_each_rank_ends_with_the_commands_exit_status(tmp_path: Path) -> None:
    """Under torchrun the CLI ends a rank through exit_rank with the command's status: a usage error is exit
    status 2 (torchrun reports the first failing rank's), not an abort."""
    result = torchrun(["-m", "ganzoo", "train", "vanilla", "--steps", "1", "--set", "no_such_key=1", "--out",
                       str(tmp_path / "run")], expect=1)  # torchrun itself exits 1 when a rank fails
    assert "no_such_key" in result.stderr  # the first rank to fail said what was wrong (torchrun then stops the rest)
    assert re.search(r"exitcode\s*:\s*2\b", result.stderr), result.stderr[-3000:]


@pytest.mark.parametrize(("variant", "loading", "loader", "extensions"), [
    ("dcgan", "memory", "TensorBatches", ""),
    ("wgan-gp", "stream", "LoaderBatches", ""),
    ("cgan-pd", "stream", "LoaderBatches", "ema"),  # labels streamed with their images; the EMA on every rank
    ("r3gan", "memory", "TensorBatches", None),  # its own extensions: R1 and R2 (double backward) and a scheduled EMA
])
def test_ranks_hold_identical_weights_after_every_step(tmp_path: Path, variant: str, loading: str,
                                                       loader: str, extensions: str | None) -> None:
    report = tmp_path / "report.json"
    torchrun([str(HERE / "ddp_check.py"), variant, "3", str(report), loading,
              *([] if extensions is None else [extensions])])
    data = json.loads(report.read_text())
    assert data == {"world_size": 2, "steps": 3, "loader": loader, "labelled": variant == "cgan-pd",
                    "sampler": "ema" if extensions is None else extensions or None, "unequal_after": [],
                    "same_batches": []}


@pytest.mark.parametrize(("variant", "extra"), [("dcgan", []),
                                              ("cgan-pd", ["--set", "extensions=ema", "--set", "sample_count=10"])])
def test_torchrun_train_finishes_writes_once_and_resumes_exactly(tmp_path: Path, variant: str,
                                                                 extra: list[str]) -> None:
    common = ["-m", "ganzoo", "train", variant, "--seed", "3", "--no-progress", "--set", "batch_size=8",
              "--set", "log_every=1", "--set", "sample_every=0", *extra]
    torchrun([*common, "--steps", "4", "--out", str(tmp_path / "straight")])
    log = (tmp_path / "straight" / "log.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in log] == [1, 2, 3, 4]  # rank 0 alone writes
    assert json.loads(log[-1])["images_seen"] == 4 * 8 * 2  # both ranks' shards count
    torchrun([*common, "--steps", "2", "--out", str(tmp_path / "resumed")])
    torchrun([*common, "--steps", "4", "--out", str(tmp_path / "resumed"), "--resume"])
    a, b = load_checkpoint(tmp_path / "straight"), load_checkpoint(tmp_path / "resumed")
    assert a["world_size"] == b["world_size"] == 2 and len(a["rng"]) == 2
    for net in ("generator", "discriminator", "sample_generator"):
        for key, value in (a[net] or {}).items():
            assert torch.equal(value, b[net][key]), f"{net}.{key}"
