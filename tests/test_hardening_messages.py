"""Messages instead of tracebacks, and the user blamed where the user is at fault (issue: hardening, second
round, points 6, 10, 11 and 15): a write that the operating system refuses, out-of-range seeds and classes, an
image augmentation on 2-D points, infinite learning rates, a huge init_std, an extension named twice, a lock
file ganzoo did not write, and weights paths that name other files."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import QUICK

import ganzoo
from ganzoo import ConfigError
from ganzoo.cli import cli
from ganzoo.metrics import WeightsIntegrityError, extractor_info
from ganzoo.rundir import LOCK_FILE

TINY = {**QUICK, "generator_options": {"hidden": [8]}, "discriminator_options": {"hidden": [8]}}


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    assert "Traceback" not in result.output and not isinstance(result.exception, (TypeError, AttributeError))
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def conditional_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cgan") / "run"
    ganzoo.train("cgan-pd", steps=1, out=out, config={**QUICK, "sample_every": 0}, progress=False)
    return out


def test_a_write_the_system_refuses_is_a_message_naming_the_file(tmp_path: Path) -> None:
    # A real refusal by the kernel: files may not grow past 4 kB (RLIMIT_FSIZE), so the checkpoint's write fails
    # part-way with EFBIG, as a full disk fails it with ENOSPC.
    code = (
        "import resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "from ganzoo.cli import cli\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))\n"
        f"cli(['train', 'vanilla', '--steps', '1', '--no-progress', '--set', 'sample_every=0', '--out', "
        f"{str(tmp_path / 'run')!r}])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "step-00000001.pt" in proc.stderr, proc.stderr
    assert not list((tmp_path / "run" / "checkpoints").glob("*.pt")) and not (tmp_path / "run" / LOCK_FILE).exists()


def test_seeds_and_classes_out_of_range_are_usage_errors(conditional_run: Path, tmp_path: Path) -> None:
    for args in (["--class", "99999999999999999999"], ["--class", "10"], ["--seed", "99999999999999999999999"],
                 ["--seed", "-1"]):
        code, output = _cli("sample", str(conditional_run), "-n", "4", "-o", str(tmp_path / "x.png"), *args)
        assert code == 2, output
    code, output = _cli("evaluate", str(conditional_run), "--num", "8", "--seed", str(2**64))
    assert code == 2 and "--seed" in output
    code, output = _cli("train", "vanilla", "--steps", "1", "--seed", str(2**100), "--out", str(tmp_path / "t"))
    assert code == 2 and "--seed" in output
    with pytest.raises(ConfigError, match="seed must be an integer from 0"):
        ganzoo.sample(conditional_run, n=4, seed=2**70)
    with pytest.raises(ConfigError, match="classes 0..9"):
        ganzoo.sample(conditional_run, n=4, labels=10**30)


def test_an_image_augmentation_on_points_is_refused_naming_both(tmp_path: Path) -> None:
    code, output = _cli("train", "vanilla", "--set", "dataset=ring-8", "--set", "extensions=diffaugment",
                        "--steps", "1", "--out", str(tmp_path / "run"))
    assert code == 2 and "'diffaugment'" in output and "'ring-8'" in output, output
    # extensions that do not augment still act on points
    result = ganzoo.train("vanilla", steps=1, out=tmp_path / "ema", progress=False,
                          config={**TINY, "dataset": "ring-8", "extensions": ["ema"], "sample_every": 0})
    assert result.steps == 1


def test_values_the_user_chose_are_blamed_on_the_user(tmp_path: Path) -> None:
    code, output = _cli("train", "dcgan", "--steps", "1", "--set", "lr_d=.inf", "--out", str(tmp_path / "a"))
    assert code == 2 and "lr_d" in output and "finite" in output
    code, output = _cli("train", "dcgan", "--steps", "1", "--set", "betas=[0.5,.nan]", "--out", str(tmp_path / "b"))
    assert code == 2 and "betas" in output
    code, output = _cli("train", "dcgan", "--steps", "1", "--set", "init=normal", "--set", "init_std=1e308",
                        "--out", str(tmp_path / "c"))
    assert code == 2 and "init_std" in output and "plugin" not in output, output
    code, output = _cli("train", "dcgan", "--steps", "1", "--set", "extensions=ema,ema", "--out", str(tmp_path / "d"))
    assert code == 2 and "'ema' given more than once" in output
    code, output = _cli("bench", "--variants", "dcgan+ema+ema", "--steps", "1", "--out", str(tmp_path / "e"))
    assert code == 2 and "more than once" in output
    assert not (tmp_path / "e" / "dcgan+ema+ema").exists()


def test_a_lock_file_that_names_no_process_says_so(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    for content in ("not json at all", json.dumps([1, 2]), json.dumps({"pid": "1", "host": None})):
        (run / LOCK_FILE).write_text(content)
        code, output = _cli("train", "vanilla", "--steps", "1", "--out", str(run))
        assert code == 1 and "names no process" in output and "None" not in output, output
        assert "delete the lock file" in output


def test_weights_paths_naming_other_files_are_refused_without_reading_or_hashing_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "id_ed25519"
    secret.write_bytes(b"-----BEGIN OPENSSH PRIVATE KEY----- not really\n" * 3)
    digest = hashlib.sha256(secret.read_bytes()).hexdigest()
    import ganzoo.metrics.classifier as classifier

    hashed: list[str] = []
    real = classifier.sha256_file
    monkeypatch.setattr(classifier, "sha256_file", lambda path: hashed.append(str(path)) or real(path))
    with pytest.raises(WeightsIntegrityError) as info:
        extractor_info("ganzoo-mnist", secret)
    assert digest not in str(info.value) and str(secret) not in hashed  # another size: not even read
    same_size = tmp_path / "same-size.safetensors"
    same_size.write_bytes(b"\0" * classifier.WEIGHTS_PATH.stat().st_size)
    with pytest.raises(WeightsIntegrityError) as info:
        extractor_info("ganzoo-mnist", same_size)
    assert hashlib.sha256(same_size.read_bytes()).hexdigest() not in str(info.value)
    code, output = _cli("bench", "--variants", "vanilla", "--steps", "1", "--feature-extractor-weights", str(secret),
                        "--out", str(tmp_path / "bench"))
    assert code != 0 and digest not in output, output
