"""Generators that ship with ganzoo: the seed-0 trials of the committed ``default`` benchmark section
(``benchmarks/results/default``), one per row, stored in fp16 and sampled in fp32 as ``pretrained:ROW``
(``ganzoo sample pretrained:dcgan``). ``benchmarks/pretrained.py`` writes them from a re-run of that section."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import UnknownNameError

#: How a source names a bundled generator: ``pretrained:dcgan``.
PREFIX = "pretrained:"
DIRECTORY = Path(__file__).parent
#: The export metadata key that says where a bundled generator comes from (section, row, seed, config hash, FID).
METADATA_KEY = "pretrained"


def _files() -> dict[str, Path]:
    return {path.name.removesuffix(".safetensors"): path for path in sorted(DIRECTORY.glob("*.safetensors"))}


def list_pretrained() -> list[dict[str, Any]]:
    """Each bundled generator: its ``name`` (the benchmark row), the ``source`` and ``command`` that sample it,
    and what its file records of its trial (``section``, ``row``, ``seed``, ``config_hash``, ``steps``, ``fid``...)."""
    from safetensors import safe_open
    found = []
    for name, path in _files().items():
        with safe_open(path, "pt") as f:
            origin = json.loads(f.metadata()[METADATA_KEY])
        found.append({"name": name, "source": PREFIX + name, "command": f"ganzoo sample {PREFIX}{name} -n 64 -o "
                      "grid.png", **origin})
    return found


def resolve(source: str | Path) -> tuple[Path, bool]:
    """``(path, bundled)``: the file of a ``pretrained:NAME`` source, else ``source`` as a path, and whether it is a
    bundled file (fp16, cast to fp32 on load); an unknown NAME is an :class:`~ganzoo.errors.UnknownNameError`."""
    path = Path(source)
    if str(source).startswith(PREFIX):
        name, files = str(source)[len(PREFIX):], _files()
        if name not in files:
            raise UnknownNameError("pretrained generator", name, list(files))
        path = files[name]
    return path, path.parent.resolve() == DIRECTORY.resolve()
