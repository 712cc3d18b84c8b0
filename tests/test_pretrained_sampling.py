"""Pretrained generators (``pretrained:NAME``), the truncation trick and latent walks (``ganzoo interpolate``)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from conftest import QUICK
from PIL import Image
from safetensors import safe_open

import ganzoo
from ganzoo import api
from ganzoo.cli import cli
from ganzoo.pretrained import DIRECTORY
from ganzoo.training.sampling import draw_latents, slerp

COMMITTED = json.loads((Path(__file__).parents[1] / "benchmarks/results/default/results.json").read_text())
SEED0 = {t["variant"]: t for t in COMMITTED["trials"] if t["seed"] == 0}


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    assert "Traceback" not in result.output and not isinstance(result.exception, (TypeError, AttributeError))
    return result.exit_code, result.output


def _size(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        return image.size


@pytest.fixture(scope="module")
def conditional_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cgan") / "run"
    ganzoo.train("cgan-pd", steps=1, out=out, config={**QUICK, "sample_every": 0}, progress=False)
    return out


# -- pretrained generators ----------------------------------------------------------------------------------

def test_every_default_row_ships_as_its_committed_seed_0_generator() -> None:
    listed = {p["name"]: p for p in ganzoo.list_pretrained()}
    assert set(listed) == set(SEED0) == {"vanilla+ema", "dcgan", "wgan-gp"}
    for name, info in listed.items():
        trial, path = SEED0[name], DIRECTORY / f"{name}.safetensors"
        assert info["command"] == f"ganzoo sample pretrained:{name} -n 64 -o grid.png"
        assert (info["section"], info["seed"], info["config_hash"], info["steps"], info["fid"]) == (
            "default", 0, trial["config_hash"], trial["steps"], trial["final"]["fid"])
        assert path.stat().st_size < 2 << 20
        with safe_open(path, "pt") as f:
            assert json.loads(f.metadata()["config"]) == trial["protocol"]["config"]
            assert {f.get_tensor(k).dtype for k in f.keys()} <= {torch.float16, torch.int64}


@pytest.mark.parametrize("name", sorted(SEED0))
def test_pretrained_samples_through_the_cli_offline(name: str, tmp_path: Path, monkeypatch) -> None:
    def no_data(*args: object, **kwargs: object) -> None:
        raise AssertionError("sampling a pretrained generator loaded a dataset")

    monkeypatch.setattr(api, "load_images", no_data)
    code, output = _cli("sample", f"pretrained:{name}", "-n", "64", "-o", str(tmp_path / "grid.png"))
    assert code == 0, output
    assert _size(tmp_path / "grid.png") == (8 * 30 + 2, 8 * 30 + 2)
    G, _ = ganzoo.load_generator(f"pretrained:{name}")
    assert all(p.dtype == torch.float32 for p in G.parameters())
    images = ganzoo.sample(f"pretrained:{name}", n=4)
    assert images.shape == (4, 1, 28, 28) and images.std() > 0.1  # digits, not a constant


def test_pretrained_is_listed_and_unknown_names_are_usage_errors(tmp_path: Path) -> None:
    code, output = _cli("list")
    assert code == 0 and "Pretrained" in output and "  dcgan  default benchmark, seed 0, 3000 steps" in output
    code, output = _cli("list", "--json")
    assert [p["name"] for p in json.loads(output)["pretrained"]] == ["dcgan", "vanilla+ema", "wgan-gp"]
    for command in ("sample", "interpolate"):
        code, output = _cli(command, "pretrained:stylegan9", "-o", str(tmp_path / "x.png"))
        assert code == 2, output
        assert "unknown pretrained generator 'stylegan9'; available: dcgan, vanilla+ema, wgan-gp" in output
    assert not (tmp_path / "x.png").exists()


# -- truncation ---------------------------------------------------------------------------------------------

def test_truncated_normal_is_redrawn_not_clamped() -> None:
    psi = 1.0
    z = draw_latents(1000, 100, torch.Generator().manual_seed(0), truncation=psi)
    assert z.shape == (1000, 100) and z.abs().max() <= psi
    assert not (z.abs() == psi).any()  # clamping would put 32% of the values exactly at ±psi
    # the truncated normal's variance, 1 - 2 psi phi(psi) / (2 Phi(psi) - 1) = 0.2911 (clamped: 0.5166)
    phi = math.exp(-psi * psi / 2) / math.sqrt(2 * math.pi)
    assert z.var().item() == pytest.approx(1 - 2 * psi * phi / math.erf(psi / math.sqrt(2)), abs=0.005)
    edge, centre = ((z.abs() > 0.9).float().mean(), (z.abs() < 0.1).float().mean())
    assert edge / centre == pytest.approx(math.exp(-0.95**2 / 2), rel=0.05)  # the density falls to the edge
    plain = draw_latents(1000, 100, torch.Generator().manual_seed(0))
    assert torch.equal(plain, torch.randn(1000, 100, generator=torch.Generator().manual_seed(0)))


def test_truncation_samples_and_errors(conditional_run: Path, tmp_path: Path) -> None:
    wide = ganzoo.sample("pretrained:dcgan", n=16)
    narrow = ganzoo.sample("pretrained:dcgan", n=16, truncation=0.5)
    assert not torch.equal(wide, narrow) and torch.equal(narrow, ganzoo.sample("pretrained:dcgan", n=16,
                                                                               truncation=0.5))
    threes = ganzoo.sample(conditional_run, n=4, labels=3, truncation=0.7)
    assert threes.shape == (4, 1, 28, 28)
    code, output = _cli("sample", str(conditional_run), "--class", "3", "--truncation", "0.7", "-n", "4", "-o",
                        str(tmp_path / "t.png"))
    assert code == 0, output
    for psi in ("0", "-1", "nan", "0.001"):
        code, output = _cli("sample", "pretrained:dcgan", "--truncation", psi, "-o", str(tmp_path / "x.png"))
        assert code == 2 and "--truncation" in output, output
    for psi in (0.0, -0.5, math.nan, 0.009):
        with pytest.raises(ganzoo.ConfigError, match="must be at least 0.01"):
            ganzoo.sample("pretrained:dcgan", n=2, truncation=psi)


# -- slerp and latent walks ---------------------------------------------------------------------------------

def test_slerp_hand_computed() -> None:
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    assert torch.allclose(slerp(a, b, 0.0), a) and torch.allclose(slerp(a, b, 1.0), b)
    mid = slerp(a, b, 0.5)
    assert torch.allclose(mid, torch.tensor([0.5**0.5, 0.5**0.5]))  # norm 1, 45 degrees from each end
    assert torch.allclose(slerp(2 * a, 2 * b, 1 / 3), 2 * torch.tensor([math.cos(math.pi / 6), 0.5]))
    assert torch.linalg.vector_norm(torch.lerp(a, b, 0.5)) == pytest.approx(0.5**0.5)  # the chord dips inside
    assert torch.allclose(slerp(a, 3 * a, 0.5), 2 * a)  # parallel: linear
    ends = torch.randn(2, 3, 1, 100, generator=torch.Generator().manual_seed(0))
    walk = slerp(ends[0], ends[1], torch.linspace(0, 1, 7)[None, :, None])
    assert walk.shape == (3, 7, 100)
    assert torch.allclose(walk[:, 0], ends[0, :, 0], atol=1e-5) and torch.allclose(walk[:, -1], ends[1, :, 0],
                                                                                   atol=1e-5)


def test_interpolate_writes_one_walk_per_row(tmp_path: Path) -> None:
    code, output = _cli("interpolate", "pretrained:dcgan", "--rows", "3", "--steps", "5", "--seed", "2", "-o",
                        str(tmp_path / "walk.png"))
    assert code == 0, output
    assert _size(tmp_path / "walk.png") == (5 * 30 + 2, 3 * 30 + 2)
    walk = ganzoo.interpolate("pretrained:dcgan", rows=3, steps=5, seed=2)
    line = ganzoo.interpolate("pretrained:dcgan", rows=3, steps=5, seed=2, linear=True)
    assert walk.shape == (15, 1, 28, 28)
    ends = [0, 4, 5, 9, 10, 14]
    assert torch.allclose(walk[ends], line[ends], atol=1e-5) and not torch.allclose(walk[2], line[2])


def test_interpolate_conditional_keeps_a_class_per_row(conditional_run: Path, tmp_path: Path) -> None:
    default = ganzoo.interpolate(conditional_run, rows=2, steps=3)
    threes = ganzoo.interpolate(conditional_run, rows=2, steps=3, labels=3)
    G, cfg = ganzoo.load_generator(conditional_run)
    z = draw_latents(4, cfg.latent_dim, torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(default[3], G(z[1:2], torch.tensor([1])), atol=1e-5)  # walk 1 is class 1
        assert torch.allclose(threes[3], G(z[1:2], torch.tensor([3])), atol=1e-5)
    code, output = _cli("interpolate", str(conditional_run), "--class", "3", "--rows", "2", "-o",
                        str(tmp_path / "w.png"))
    assert code == 0, output


def test_interpolate_errors_are_usage_errors(conditional_run: Path, tmp_path: Path) -> None:
    for args, message in ((["--steps", "1"], "--steps"), (["--rows", "0"], "--rows"),
                          (["-o", str(tmp_path / "walk.txt")], "name an image file"),
                          (["--class", "10"], "labels must lie in 0..9")):
        code, output = _cli("interpolate", str(conditional_run), "-o", str(tmp_path / "w.png"), *args)
        assert code == 2 and message in output, output
    code, output = _cli("interpolate", "pretrained:dcgan", "--class", "1", "-o", str(tmp_path / "w.png"))
    assert code == 2 and "not conditional" in output, output
    with pytest.raises(ganzoo.ConfigError, match="steps >= 2"):
        ganzoo.interpolate("pretrained:dcgan", steps=1)
