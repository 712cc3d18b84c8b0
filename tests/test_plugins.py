"""The plugin contract: entry points, load control, listing, registries and the errors that name plugins."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import registered
from torch import nn

import ganzoo
from ganzoo import Generator, Loss, LossSpec, Variant, hookimpl
from ganzoo.cli import cli
from ganzoo.errors import PluginError
from ganzoo.meta import DISTRIBUTION
from ganzoo.plugins import make_plugin_manager
from ganzoo.registry import get_registry

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "docs" / "examples" / "ganzoo-lsgan" / "ganzoo_lsgan.py"


def make_distribution(site: Path, dist: str, version: str, entry_points: dict[str, str],
                      modules: dict[str, str]) -> None:
    """Lay out an installed distribution (dist-info with entry points) and its modules under ``site``."""
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    eps = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[ganzoo]\n{eps}")
    for name, source in modules.items():
        (site / f"{name}.py").write_text(source)


def run_ganzoo(args: list[str], site: Path, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != "GANZOO_LOAD_PLUGINS"}
    environ["PYTHONPATH"] = os.pathsep.join([str(site), environ.get("PYTHONPATH", "")])
    environ.update(env)
    return subprocess.run([sys.executable, "-m", "ganzoo", *args], capture_output=True, text=True, env=environ,
                          timeout=300)


@pytest.fixture
def third_party_site(tmp_path: Path) -> Path:
    """A third-party plugin package outside ganzoo/ and plugins/: the docs' LSGAN example, plus a broken one."""
    site = tmp_path / "site"
    site.mkdir()
    make_distribution(site, "ganzoo-lsgan", "0.1.0", {"lsgan": "ganzoo_lsgan"},
                      {"ganzoo_lsgan": EXAMPLE.read_text()})
    make_distribution(site, "ganzoo-broken", "9.9", {"broken": "ganzoo_broken"},
                      {"ganzoo_broken": "import this_module_does_not_exist\n"})
    return site


def test_builtins_load_through_entry_points() -> None:
    infos = {p.name: p for p in ganzoo.list_plugins()}
    for name in ("vanilla", "dcgan", "wgan-gp", "datasets"):
        assert infos[name].distribution == DISTRIBUTION == "ganzoo-gan"
        assert infos[name].builtin
    assert "register_losses" in infos["wgan-gp"].hooks


def test_third_party_plugin_lists_and_trains(third_party_site: Path, tmp_path: Path) -> None:
    listing = run_ganzoo(["list", "--json"], third_party_site)
    assert listing.returncode == 0, listing.stderr
    data = json.loads(listing.stdout)
    lsgan = next(v for v in data["variants"] if v["name"] == "lsgan")
    assert lsgan["plugin"] == "lsgan" and lsgan["generator"] == "dcgan"

    plugins = run_ganzoo(["plugins", "--json"], third_party_site)
    info = json.loads(plugins.stdout)
    entry = next(p for p in info["plugins"] if p["name"] == "lsgan")
    assert (entry["distribution"], entry["version"], entry["builtin"]) == ("ganzoo-lsgan", "0.1.0", False)
    assert entry["hooks"] == ["register_losses", "register_variants"]
    # the broken plugin is reported by name, and everything else still works
    failed = {f["name"]: f for f in info["failed"]}
    assert "this_module_does_not_exist" in failed["broken"]["error"]
    assert failed["broken"]["distribution"] == "ganzoo-broken"

    out = tmp_path / "run"
    trained = run_ganzoo(["train", "lsgan", "--steps", "2", "--out", str(out), "--set", "batch_size=8",
                          "--no-progress"], third_party_site)
    assert trained.returncode == 0, trained.stderr
    assert "plugin 'broken'" in trained.stderr  # warned about, not fatal
    assert (out / "samples.png").is_file()
    assert json.loads((out / "result.json").read_text())["components"]["loss"] == "lsgan (lsgan)"


def test_load_control_variable(third_party_site: Path) -> None:
    none = json.loads(run_ganzoo(["plugins", "--json"], third_party_site, GANZOO_LOAD_PLUGINS="").stdout)
    names = {p["name"] for p in none["plugins"]}
    assert "lsgan" not in names and {"vanilla", "dcgan", "wgan-gp", "datasets"} <= names
    assert none["failed"] == []
    only = json.loads(run_ganzoo(["plugins", "--json"], third_party_site, GANZOO_LOAD_PLUGINS="lsgan").stdout)
    assert "lsgan" in {p["name"] for p in only["plugins"]} and only["failed"] == []


def test_misspelled_hook_is_reported_by_name(tmp_path: Path, monkeypatch) -> None:
    site = tmp_path / "site"
    make_distribution(site, "ganzoo-typo", "1.0", {"typo": "ganzoo_typo"},
                      {"ganzoo_typo": "from ganzoo import hookimpl\n\n@hookimpl\ndef register_generator(register):\n"
                                      "    pass\n"})
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv("GANZOO_LOAD_PLUGINS", raising=False)
    pm = make_plugin_manager()
    failures = {f.name: f for f in pm.ganzoo_load_failures}
    assert "register_generator" in failures["typo"].error
    assert pm.get_plugin("typo") is None
    assert "vanilla" in get_registry(pm).variants  # the rest keep working


def test_wrong_hook_arguments_are_reported_by_name(tmp_path: Path, monkeypatch) -> None:
    site = tmp_path / "site"
    make_distribution(site, "ganzoo-args", "1.0", {"args": "ganzoo_args"},
                      {"ganzoo_args": "from ganzoo import hookimpl\n\n@hookimpl\ndef register_losses(register, "
                                      "extra):\n    pass\n"})
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv("GANZOO_LOAD_PLUGINS", raising=False)
    pm = make_plugin_manager()
    failures = {f.name: f for f in pm.ganzoo_load_failures}
    assert "extra" in failures["args"].error


class TinyPlugin:
    """An in-process plugin registering one of everything."""

    @hookimpl
    def register_generators(self, register):
        register(Generator("tiny", lambda latent_dim, image_shape: nn.Sequential(
            nn.Linear(latent_dim, 784), nn.Tanh(), nn.Unflatten(1, (1, 28, 28)))))

    @hookimpl
    def register_losses(self, register):
        register(LossSpec("tiny-loss", Loss))

    @hookimpl
    def register_variants(self, register):
        register(Variant("tiny", generator="tiny", discriminator="mlp", loss="gan", aliases=("t",)))


def test_in_process_plugin_registers_components() -> None:
    with registered(TinyPlugin(), "tiny-plugin"):
        registry = get_registry()
        assert registry.generators.get("tiny").plugin == "tiny-plugin"
        assert registry.variants.get("t").item.name == "tiny"
        assert "tiny" in [v["name"] for v in ganzoo.list_variants()]
        info = {p.name: p for p in ganzoo.list_plugins()}["tiny-plugin"]
        assert info.distribution is None
        assert set(info.hooks) == {"register_generators", "register_losses", "register_variants"}
    assert "tiny" not in get_registry().variants


def test_name_clash_names_both_plugins() -> None:
    class Clash:
        @hookimpl
        def register_generators(self, register):
            register(Generator("dcgan", lambda latent_dim, image_shape: None))

    with registered(Clash(), "clash"), pytest.raises(PluginError) as info:
        get_registry()
    message = str(info.value)
    assert "plugin 'clash'" in message and "plugin 'dcgan'" in message and "register_generators" in message
    # the blame goes to the plugin that registered second (the built-in came first)
    assert info.value.plugin == "clash" and "already registered by plugin 'dcgan'" in message


def test_hook_that_raises_names_plugin_and_hook() -> None:
    class Raises:
        @hookimpl
        def register_datasets(self, register):
            raise RuntimeError("boom")

    with registered(Raises(), "raiser"), pytest.raises(PluginError, match=r"plugin 'raiser' \(hook "
                                                                          r"register_datasets\).*boom"):
        get_registry()


def test_register_of_wrong_type_is_refused() -> None:
    class WrongType:
        @hookimpl
        def register_variants(self, register):
            register({"name": "x"})

    with registered(WrongType(), "wrong"), pytest.raises(PluginError, match="takes a ganzoo.Variant, got dict"):
        get_registry()


def test_plugins_command_lists_builtins(runner) -> None:
    result = runner.invoke(cli, ["plugins"])
    assert result.exit_code == 0
    assert "dcgan  (ganzoo" in result.output and "register_variants" in result.output


def test_list_json(runner) -> None:
    result = runner.invoke(cli, ["list", "--json"])
    data = json.loads(result.output)
    assert {v["name"] for v in data["variants"]} >= {"vanilla", "dcgan", "wgan-gp"}
    wgan = next(v for v in data["variants"] if v["name"] == "wgan-gp")
    assert wgan["aliases"] == ["wgan"] and wgan["defaults"]["n_critic"] == 5
    assert "mnist-5k" in {d["name"] for d in data["datasets"]}


def test_third_party_cannot_shadow_a_builtin(tmp_path: Path, monkeypatch) -> None:
    site = tmp_path / "site"
    make_distribution(site, "ganzoo-impostor", "1.0", {"dcgan": "ganzoo_impostor"},
                      {"ganzoo_impostor": "raise RuntimeError('must never be imported')\n"})
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv("GANZOO_LOAD_PLUGINS", raising=False)
    pm = make_plugin_manager()
    failures = {f.distribution: f for f in pm.ganzoo_load_failures}
    assert f"already taken by distribution '{DISTRIBUTION}'" in failures["ganzoo-impostor"].error
    assert get_registry(pm).generators.get("dcgan").plugin == "dcgan"
