"""Replace some rows of a committed bench with the same rows re-run into another bench directory.

    python benchmarks/replace_rows.py benchmarks/results/long runs/long-wgan-gp

Every (row, seed) trial of NEW replaces the committed trial of the same row and seed in BENCH (its record in
``results.json`` and its run directory ``ROW/seed-K``); BENCH's other rows, its stored profile and the order of
its trials stay as they were. Both must come from the same profile. Used when a fix changes some rows' figures
and not others (the re-run rows record the ganzoo version and config they ran with).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from ganzoo.bench.records import RESULTS_FILE, load_results


def replace_rows(bench_dir: Path, new_dir: Path) -> list[tuple[str, int]]:
    """Move ``new_dir``'s trials into ``bench_dir`` and return the (row, seed) pairs replaced."""
    old, new = load_results(bench_dir), load_results(new_dir)
    if old["profile"]["name"] != new["profile"]["name"]:
        raise SystemExit(f"{bench_dir} holds profile {old['profile']['name']!r}, {new_dir} {new['profile']['name']!r}")
    fresh = {(t["variant"], t["seed"]): t for t in new["trials"] if t["status"] == "ok"}
    missing = [key for key in fresh if key not in {(t["variant"], t["seed"]) for t in old["trials"]}]
    if missing:
        raise SystemExit(f"{bench_dir} has no trial {missing}; only existing rows and seeds are replaced")
    for row, seed in fresh:
        target = bench_dir / row / f"seed-{seed}"
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(new_dir / row / f"seed-{seed}", target)
    old["trials"] = [fresh.get((t["variant"], t["seed"]), t) for t in old["trials"]]
    (bench_dir / RESULTS_FILE).write_text(json.dumps(old, indent=2) + "\n")
    return sorted(fresh)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bench", type=Path, help="The committed bench directory.")
    parser.add_argument("new", type=Path, help="A bench directory with some of its rows re-run.")
    args = parser.parse_args()
    for row, seed in replace_rows(args.bench, args.new):
        print(f"replaced {row} seed {seed}")


if __name__ == "__main__":
    main()
