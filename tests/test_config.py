"""Config resolution: precedence, safe YAML, strict keys and types, exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest

import ganzoo
from ganzoo.cli import cli
from ganzoo.errors import ConfigError


def test_variant_defaults_then_file_then_overrides_then_keywords(tmp_path: Path) -> None:
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("lr_g: 3.0e-4\nbatch_size: 32\nloss_options:\n  gp_lambda: 5\n")
    cfg = ganzoo.build_config("wgan", config=cfg_file, overrides=["batch_size=8", "lr_d=1e-3"], steps=7)
    assert cfg.variant == "wgan-gp"  # alias resolved
    assert (cfg.n_critic, cfg.betas) == (5, (0.0, 0.9))  # variant defaults
    assert cfg.lr_g == pytest.approx(3e-4)  # file
    assert cfg.batch_size == 8 and cfg.lr_d == pytest.approx(1e-3)  # overrides beat the file
    assert cfg.loss_options == {"gp_lambda": 5}
    assert cfg.steps == 7


def test_nested_override_and_list_value() -> None:
    cfg = ganzoo.build_config("dcgan", overrides=["loss_options.generator_loss=minimax", "betas=[0.1, 0.2]"])
    assert cfg.loss_options["generator_loss"] == "minimax"
    assert cfg.betas == (0.1, 0.2)


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("stepz=10", "stepz"),
        ("steps=-1", "steps"),
        ("steps=ten", "steps"),
        ("n_critic=0", "n_critic"),
        ("lr_g=0", "lr_g"),
        ("lr_d=-1e-4", "lr_d"),
        ("betas=[0.5, 1.5]", "betas"),
        ("optimizer=adamw", "optimizer"),
    ],
)
def test_bad_values_name_the_key(override: str, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        ganzoo.build_config("vanilla", overrides=[override])
    assert str(info.value).splitlines()[1].strip().startswith(f"{key}:")


def test_unknown_key_in_file_names_file_and_key(tmp_path: Path) -> None:
    cfg_file = tmp_path / "bad.yaml"
    cfg_file.write_text("steps: 5\nlearning_rate: 0.1\n")
    with pytest.raises(ConfigError, match=r"bad.yaml.*\n.*learning_rate: unknown key"):
        ganzoo.build_config("vanilla", config=cfg_file)


def test_python_tags_are_never_constructed(tmp_path: Path, runner) -> None:
    marker = tmp_path / "pwned"
    cfg_file = tmp_path / "evil.yaml"
    cfg_file.write_text(f"steps: !!python/object/apply:os.system ['touch {marker}']\n")
    result = runner.invoke(cli, ["train", "vanilla", "--config", str(cfg_file), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2, result.output
    assert "not valid safe YAML" in result.output
    assert not marker.exists()
    assert "Traceback" not in result.output


def test_cli_usage_errors_exit_2(tmp_path: Path, runner) -> None:
    result = runner.invoke(cli, ["train", "vanilla", "--set", "n_critic=0", "--out", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert "n_critic" in result.output
    result = runner.invoke(cli, ["train", "vanilla", "--set", "nokey"])
    assert result.exit_code == 2
    assert "key=value" in result.output
    result = runner.invoke(cli, ["train", "vanilla", "--config", str(tmp_path / "missing.yaml")])
    assert result.exit_code == 2
    assert "missing.yaml" in result.output


def test_unknown_variant_exits_2_and_lists_available(runner) -> None:
    result = runner.invoke(cli, ["train", "stylegan9"])
    assert result.exit_code == 2
    assert "unknown variant 'stylegan9'" in result.output
    for name in ("dcgan", "vanilla", "wgan-gp"):
        assert name in result.output


def test_yaml_floats_and_out_from_the_config_file(tmp_path: Path, runner) -> None:
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text(f"out: {tmp_path / 'from-file'}\nlr_g: 1e-4\nloss_options:\n  gp_lambda: 1e1\n")
    cfg = ganzoo.build_config("wgan", config=cfg_file, overrides=["lr_d=3e-4"])
    assert cfg.lr_g == 1e-4 and cfg.lr_d == 3e-4 and cfg.loss_options == {"gp_lambda": 10.0}
    result = runner.invoke(cli, ["train", "vanilla", "--config", str(cfg_file), "--steps", "1", "--no-progress",
                                 "--set", "loss_options={}"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "from-file" / "samples.png").is_file()
    assert ganzoo.build_config("dcgan").out == Path("runs/dcgan")
