"""Start-up: the package and the CLI import no torch and no plugin until a command needs them."""

from __future__ import annotations

import subprocess
import sys


def run_python(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout


def test_import_and_help_load_neither_torch_nor_plugins() -> None:
    out = run_python(
        "import sys, ganzoo, ganzoo.cli\n"
        "from click.testing import CliRunner\n"
        "result = CliRunner().invoke(ganzoo.cli.cli, ['--help'])\n"
        "assert result.exit_code == 0 and 'train' in result.output, result.output\n"
        "version = CliRunner().invoke(ganzoo.cli.cli, ['--version'])\n"
        "assert version.exit_code == 0 and ganzoo.__version__ in version.output\n"
        "heavy = sorted(m for m in ('torch', 'torchvision', 'torch_fidelity', 'matplotlib', 'ganzoo_plugins')\n"
        "               if m in sys.modules)\n"
        "print(heavy)\n")
    assert out.strip() == "[]"


def test_lazy_names_resolve_and_bench_stays_the_function() -> None:
    out = run_python(
        "import ganzoo, ganzoo.bench, ganzoo.bench.reproduction, ganzoo.sweep.spec\n"
        "from ganzoo.bench import load_profile\n"
        "print(callable(ganzoo.bench), ganzoo.bench.__module__, ganzoo.reproduce.__module__, callable(ganzoo.sweep),\n"
        "      ganzoo.Generator.__module__, 'evaluate' in dir(ganzoo))\n")
    assert out.split() == ["True", "ganzoo.bench.harness", "ganzoo.bench.reproduction", "True", "ganzoo.components",
                          "True"]
