"""Hostile and careless input (issue: hardening): run directories owned by one run, resume checks, bit rot,
YAML bombs and strict types, crafted exports. Every hostile file is built here, none is committed."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from conftest import QUICK
from safetensors.torch import save as safetensors_save

import ganzoo
from ganzoo import CheckpointError, ConfigError, UsageError
from ganzoo.checkpoint import CHECKPOINT_DIR, LATEST, load_checkpoint, resolve_checkpoint
from ganzoo.cli import cli
from ganzoo.rundir import LOCK_FILE, RunExistsError, RunLockedError, run_lock

TINY = {**QUICK, "generator_options": {"hidden": [8]}, "discriminator_options": {"hidden": [8]}}


def _train(out: Path, steps: int = 2, **kwargs):
    return ganzoo.train("vanilla", steps=steps, out=out, config=dict(TINY), progress=False, **kwargs)


def test_fresh_run_refuses_a_directory_holding_another_run(tmp_path: Path) -> None:
    run = tmp_path / "run"
    _train(run, steps=4)
    with pytest.raises(RunExistsError, match="--resume") as info:
        _train(run, steps=2, seed=7)
    assert "step-00000004.pt" in str(info.value) and "--overwrite" in str(info.value)
    assert load_checkpoint(run)["step"] == 4  # untouched
    result = _train(run, steps=2, seed=7, overwrite=True)
    assert result.steps == 2 and [p.name for p in (run / CHECKPOINT_DIR).glob("step-*")] == ["step-00000002.pt"]
    assert load_checkpoint(run)["config"]["seed"] == 7
    out = CliRunner().invoke(cli, ["train", "vanilla", "--steps", "2", "--out", str(run)])
    assert out.exit_code == 2 and "already holds a run" in out.output and "Traceback" not in out.output


def test_a_live_lock_refuses_a_second_run_and_a_dead_one_is_taken_over(tmp_path: Path) -> None:
    run = tmp_path / "run"
    with run_lock(run):
        with pytest.raises(RunLockedError, match=f"process {os.getpid()}"):
            _train(run)
        with pytest.raises(RunLockedError):
            ganzoo.bench(["vanilla"], out=run, steps=1, progress=False)
    assert not (run / LOCK_FILE).exists()  # released
    (run / LOCK_FILE).write_text(json.dumps({"pid": 2**22 + 12345, "host": socket.gethostname()}))
    assert _train(run).steps == 2  # a lock whose process is gone is stale
    assert not (run / LOCK_FILE).exists()
    (run / LOCK_FILE).write_text(json.dumps({"pid": 1, "host": "another-host"}))
    with pytest.raises(RunLockedError, match="another-host"):
        _train(run, steps=4, resume=True)


def test_resume_checks_the_variant_and_the_step_count(tmp_path: Path) -> None:
    run = tmp_path / "run"
    _train(run, steps=3)
    with pytest.raises(ConfigError, match="holds a vanilla run, not dcgan"):
        ganzoo.train("dcgan", steps=6, out=run, resume=True, progress=False)
    for steps in (2, 3):
        with pytest.raises(ConfigError, match="at step 3"):
            _train(run, steps=steps, resume=True)
    assert _train(run, steps=5, resume=True).steps == 5


def test_flipped_bytes_in_a_checkpoint_are_detected(tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = _train(run, steps=2)
    path = Path(result.checkpoint)
    data = bytearray(path.read_bytes())
    weights = load_checkpoint(path)["generator"]["net.0.weight"]
    raw = weights.numpy().tobytes()
    at = bytes(data).find(raw[:64])
    assert at > 0
    for i in range(at, at + 64):
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="do not match the sha256"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="sha256"):
        _train(run, steps=4, resume=True)


def test_latest_may_only_name_a_checkpoint_in_its_own_directory(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    _train(outside / "run", steps=3)
    run = tmp_path / "run"
    _train(run, steps=2)
    (run / CHECKPOINT_DIR / LATEST).write_text("../../outside/run/checkpoints/step-00000003.pt\n")
    assert resolve_checkpoint(run).parent == run / CHECKPOINT_DIR
    assert load_checkpoint(run)["step"] == 2
    (run / CHECKPOINT_DIR / LATEST).write_bytes(b"\xff\xfe\x00garbage")
    assert load_checkpoint(run)["step"] == 2
    fake = run / CHECKPOINT_DIR / "step-00000009.pt"
    fake.mkdir()  # a directory named like a checkpoint
    assert load_checkpoint(run)["step"] == 2
    with pytest.raises(CheckpointError, match="is a directory"):
        load_checkpoint(fake)


@pytest.mark.parametrize(("text", "message"), [
    ("a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
     "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nloss_options: {k: [*c, *c, *c, *c, *c, *c, *c, *c, *c]}\n",
     "aliases"),
    ("batch_size: 16\nbatch_size: 32\n", "duplicate key"),
    ("loss_options: " + "{a: " * 5000 + "1" + "}" * 5000 + "\n", "nested"),
    ("seed: " + "7" * 5000 + "\n", "digits"),
])
def test_hostile_yaml_is_refused_quickly(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        ganzoo.build_config("vanilla", config=path)
    assert len(str(info.value)) < 1000
    out = CliRunner().invoke(cli, ["train", "vanilla", "--config", str(path), "--out", str(tmp_path / "r")])
    assert out.exit_code == 2 and "Traceback" not in out.output


def test_strict_types_and_bounded_messages(tmp_path: Path) -> None:
    for config, message in (({"batch_size": True}, "batch_size: must be a number, not bool"),
                            ({"lr_g": "0.001"}, "lr_g: must be a number, not str"),
                            ({"betas": "x" * 100_000}, "betas: must be a list")):
        with pytest.raises(ConfigError, match=message) as info:
            ganzoo.build_config("vanilla", config=config)
        assert len(str(info.value)) < 400
    (tmp_path / "latin1.yaml").write_bytes("seed: 1 # caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8"):
        ganzoo.build_config("vanilla", config=tmp_path / "latin1.yaml")


def _export(path: Path, tensors: dict[str, torch.Tensor], **meta: str) -> Path:
    base = {"format": "ganzoo-generator-2", "config": json.dumps({"variant": "vanilla", **TINY, "latent_dim": 4}),
            "generator": "mlp", "image_shape": "[1, 28, 28]", "num_classes": "null", "weights": "generator"}
    base.update(meta)
    path.write_bytes(safetensors_save(tensors, metadata={k: v for k, v in base.items() if v is not None}))
    return path


@pytest.mark.parametrize(("meta", "message"), [
    ({"config": None}, "'config' is missing"),
    ({"config": "{not json"}, "'config' is not valid JSON"),
    ({"generator": None}, "'generator' must name"),
    ({"image_shape": "[1, 28]"}, "'image_shape' must be"),
    ({"image_shape": "not json"}, "'image_shape' is not valid JSON"),
    ({"image_shape": "[1, 2048, 2048]"}, "holds"),
    ({"num_classes": "-3"}, "'num_classes'"),
])
def test_crafted_export_metadata_is_refused_before_allocating(tmp_path: Path, meta: dict, message: str) -> None:
    path = _export(tmp_path / "g.safetensors", {"net.0.weight": torch.zeros(8, 4)}, **meta)
    with pytest.raises(CheckpointError, match=message):
        ganzoo.load_generator(path)
    out = CliRunner().invoke(cli, ["sample", str(path), "-o", str(tmp_path / "x.png")])
    assert out.exit_code == 1 and "Traceback" not in out.output


def test_integer_and_bool_weights_are_refused(tmp_path: Path) -> None:
    for dtype in (torch.int8, torch.bool):
        path = _export(tmp_path / f"{dtype}.safetensors", {"net.0.weight": torch.zeros(8, 4, dtype=dtype)})
        with pytest.raises(CheckpointError, match="floating point"):
            ganzoo.load_generator(path)


def test_a_genuine_export_still_loads(tmp_path: Path) -> None:
    run = tmp_path / "run"
    _train(run)
    G, _ = ganzoo.load_generator(run / "generator.safetensors")
    assert ganzoo.sample(run / "generator.safetensors", n=2).shape == (2, 1, 28, 28)
    assert sum(p.numel() for p in G.parameters()) > 0


def test_checkpoint_missing_parts_is_a_message_not_a_traceback(tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = _train(run)
    from ganzoo.checkpoint import TENSORS_SHA256, tensors_sha256

    state = load_checkpoint(result.checkpoint)
    for key in ("config", "components", "generator"):
        broken = {k: v for k, v in state.items() if k != key}
        torch.save({**broken, TENSORS_SHA256: tensors_sha256(broken)}, result.checkpoint)
        out = CliRunner().invoke(cli, ["sample", str(run), "-o", str(tmp_path / "x.png")])
        assert out.exit_code == 1 and key in out.output and "Traceback" not in out.output
    torch.save({**state, TENSORS_SHA256: tensors_sha256(state)}, result.checkpoint)
    with pytest.raises(UsageError):  # other networks than the checkpoint's: refused, not a traceback
        ganzoo.train("vanilla", steps=4, out=run, resume=True, progress=False,
                     config={**TINY, "generator_options": {"hidden": [16]}})


def test_smaller_points(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    run = tmp_path / "run"
    _train(run)
    # sample without an image suffix, and a large -n generated in batches
    out = runner.invoke(cli, ["sample", str(run), "-o", str(tmp_path / "x")])
    assert out.exit_code == 2 and "image file" in out.output and "Traceback" not in out.output
    assert ganzoo.sample(run, n=1200, batch_size=500).shape[0] == 1200
    # an empty --variants is a usage error, not the whole default profile
    out = runner.invoke(cli, ["bench", "--variants", "", "--out", str(tmp_path / "b")])
    assert out.exit_code == 2 and "--variants" in out.output and not (tmp_path / "b").exists()
    # a leaderboard of a JSON list
    (tmp_path / "list.json").write_text("[1, 2]")
    out = runner.invoke(cli, ["leaderboard", str(tmp_path / "list.json"), "-o", str(tmp_path / "lb.md")])
    assert out.exit_code == 2 and "not a ganzoo results file" in out.output and "Traceback" not in out.output
    # ~ in out is the home directory, a huge seed is a config error
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert ganzoo.build_config("vanilla", out="~/runs/x").out == tmp_path / "home" / "runs" / "x"
    with pytest.raises(ConfigError, match="seed"):
        ganzoo.build_config("vanilla", seed=10**30)


def test_blown_up_loss_stops_as_diverged_and_leaves_a_result(tmp_path: Path) -> None:
    run = tmp_path / "run"
    with pytest.raises(ganzoo.DivergenceError):
        ganzoo.train("vanilla", steps=300, out=run, progress=False,
                     config={**TINY, "lr_g": 1e6, "lr_d": 1e6, "batch_size": 16})
    result = json.loads((run / "result.json").read_text())
    assert result["stopped_by"] == "diverged" and result["diverged_at"] <= 300


def test_plugin_exiting_at_import_and_unknown_load_names_are_reported(tmp_path: Path, monkeypatch) -> None:
    from ganzoo import plugins

    monkeypatch.setenv(plugins.LOAD_ENV, "no-such-plugin")
    failures = plugins.load_failures(plugins.make_plugin_manager())
    assert any(f.name == "no-such-plugin" and "no installed distribution" in f.error for f in failures)


def test_a_loss_without_gradient_names_its_plugin(tmp_path: Path) -> None:
    from conftest import registered

    from ganzoo import Loss, LossSpec, PluginError, hookimpl

    class Detached(Loss):
        def discriminator_loss(self, D, real, fake):
            return D(real).mean().detach()

        def generator_loss(self, D, fake):
            return D(fake).mean()

    class Plugin:
        @hookimpl
        def register_losses(self, register):
            register(LossSpec("detached", Detached))

    with registered(Plugin(), "detached-plugin"), pytest.raises(PluginError, match="without a gradient") as info:
        ganzoo.train("vanilla", steps=1, out=tmp_path / "r", progress=False, config={**TINY, "loss": "detached"})
    assert info.value.plugin == "detached-plugin"


def test_unreadable_image_in_a_folder_is_named(tmp_path: Path) -> None:
    from PIL import Image

    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(4):
        Image.new("RGB", (8, 8), (i * 40, 0, 0)).save(folder / f"{i}.png")
    (folder / "9-broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(ganzoo.DatasetError, match="9-broken.png"):
        ganzoo.load_dataset("image-folder", root=folder, image_size=8)
    (folder / "9-broken.png").unlink()
    wide = Image.fromarray(__import__("numpy").full((8, 8), 32768, dtype="uint16"))  # 16-bit mid gray
    wide.save(folder / "5-wide.png")
    images = ganzoo.load_dataset("image-folder", root=folder, image_size=8).images
    assert int(images[-1].float().mean().round()) == 128  # scaled, not clipped to white


def test_out_that_is_a_file_and_a_full_disk_are_messages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "file").write_text("x")
    out = CliRunner().invoke(cli, ["train", "vanilla", "--steps", "1", "--out", str(tmp_path / "file")])
    assert out.exit_code == 2 and "is a file" in out.output and "Traceback" not in out.output

    import errno

    import ganzoo.checkpoint

    real_fdopen = os.fdopen

    class Full:  # a file on a full disk: every write fails as the kernel would fail it
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name):
            return getattr(self.f, name)

    def fdopen(fd, *args, **kwargs):  # files under checkpoints/ are on a full disk
        f = real_fdopen(fd, *args, **kwargs)
        return Full(f) if f"/{CHECKPOINT_DIR}/" in os.readlink(f"/proc/self/fd/{fd}") else f

    monkeypatch.setattr(ganzoo.checkpoint.os, "fdopen", fdopen)
    with pytest.raises(CheckpointError, match="No space left") as info:
        _train(tmp_path / "run", steps=1)
    assert "step-00000001.pt" in str(info.value)
    assert not list((tmp_path / "run" / CHECKPOINT_DIR).glob("*.pt*"))  # no truncated checkpoint left behind
    monkeypatch.undo()
    out = CliRunner().invoke(cli, ["train", "vanilla", "--steps", "1", "--out", str(tmp_path / "run2")],
                             catch_exceptions=False)
    assert out.exit_code == 0


def test_checkpoint_that_does_not_fit_the_networks_is_refused_on_resume(tmp_path: Path) -> None:
    from ganzoo.checkpoint import TENSORS_SHA256, tensors_sha256

    run = tmp_path / "run"
    result = _train(run, steps=2)
    state = load_checkpoint(result.checkpoint)
    state["generator"]["net.0.weight"] = torch.zeros(3, 3)
    torch.save({**state, TENSORS_SHA256: tensors_sha256(state)}, result.checkpoint)
    with pytest.raises(CheckpointError, match="do not fit this run"):
        _train(run, steps=4, resume=True)


def test_a_checkpoint_symlink_to_a_device_is_not_read(tmp_path: Path) -> None:
    run = tmp_path / "run"
    _train(run, steps=2)
    (run / CHECKPOINT_DIR / "step-00000099.pt").symlink_to("/dev/zero")
    assert load_checkpoint(run)["step"] == 2  # the device is not a checkpoint, the real one is used
    with pytest.raises(CheckpointError):
        load_checkpoint(run / CHECKPOINT_DIR / "step-00000099.pt")


def test_plugin_calling_sys_exit_at_import_is_a_load_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata

    from ganzoo import plugins

    class ExitingEntryPoint:
        name, group, value = "exits", plugins.GROUP, "exits"

        def load(self):
            raise SystemExit(3)

    class Dist:
        metadata = {"Name": "ganzoo-exits"}
        version = "1.0"
        entry_points = [ExitingEntryPoint()]

    real = importlib.metadata.distributions
    monkeypatch.setattr(importlib.metadata, "distributions", lambda: [*real(), Dist()])
    monkeypatch.delenv(plugins.LOAD_ENV, raising=False)
    pm = plugins.make_plugin_manager()
    failures = {f.name: f for f in plugins.load_failures(pm)}
    assert "SystemExit: 3" in failures["exits"].error
    assert pm.get_plugin("dcgan") is not None  # the others still load


def test_registry_is_built_once_per_plugin_set() -> None:
    from conftest import registered

    from ganzoo import Generator, hookimpl
    from ganzoo.registry import get_registry

    calls = []

    class Counting:
        @hookimpl
        def register_generators(self, register):
            calls.append(1)
            register(Generator("counted", lambda latent_dim, image_shape: torch.nn.Identity()))

    with registered(Counting(), "counting"):
        get_registry()
        get_registry()
        ganzoo.list_variants()
        ganzoo.list_components()
        assert len(calls) == 1
    assert "counted" not in get_registry().generators  # unregistering is seen at once
