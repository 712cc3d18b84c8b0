"""How long the CLI takes to answer: `ganzoo --help`, `ganzoo --version` and `ganzoo list`, wall seconds.

Each command runs once to warm the file cache, then ``--rounds`` times; the median is reported with the
machine, and ``--update-doc`` rewrites the table in docs/performance.md between its markers.

    python benchmarks/startup.py --rounds 5 --update-doc
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "benchmarks" / "results" / "startup-cpu.json"
DOC = ROOT / "docs" / "performance.md"
MARKERS = ("<!-- startup:begin -->", "<!-- startup:end -->")
COMMANDS = [["--help"], ["--version"], ["list"]]


def measure(ganzoo: str, args: list[str], rounds: int) -> list[float]:
    subprocess.run([ganzoo, *args], check=True, capture_output=True)  # warm the file cache
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        subprocess.run([ganzoo, *args], check=True, capture_output=True)
        times.append(round(time.perf_counter() - start, 3))
    return times


def render_table(report: dict) -> str:
    lines = [MARKERS[0],
             f"Measured {report['date']} on {report['cpu']} ({report['cores']} cores, load average "
             f"{report['load_average']:.2f} before the run), Python {report['python']}, ganzoo "
             f"{report['ganzoo']}; median of {report['rounds']} runs after one warm-up.",
             "",
             "| Command | Median wall time | All runs |",
             "|---|---|---|"]
    for row in report["commands"]:
        lines.append(f"| `ganzoo {' '.join(row['args'])}` | {row['median_s']:.2f} s | "
                     f"{', '.join(f'{t:.2f}' for t in row['seconds'])} |")
    lines.append(MARKERS[1])
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--update-doc", action="store_true", help="Also rewrite the table in docs/performance.md.")
    args = parser.parse_args()
    ganzoo = shutil.which("ganzoo", path=str(Path(sys.executable).parent)) or "ganzoo"
    from ganzoo.bench.trial import hardware
    from ganzoo.meta import version

    report = {"date": datetime.date.today().isoformat(), "cpu": hardware()["cpu"], "cores": os.cpu_count(),
              "load_average": os.getloadavg()[0], "python": sys.version.split()[0], "ganzoo": version(),
              "rounds": args.rounds, "commands": []}
    for command in COMMANDS:
        seconds = measure(ganzoo, command, args.rounds)
        report["commands"].append({"args": command, "seconds": seconds, "median_s": statistics.median(seconds)})
    RESULT.write_text(json.dumps(report, indent=2) + "\n")
    table = render_table(report)
    print(table)
    if args.update_doc:
        text = DOC.read_text()
        start, end = text.index(MARKERS[0]), text.index(MARKERS[1]) + len(MARKERS[1])
        DOC.write_text(text[:start] + table + text[end:])


if __name__ == "__main__":
    main()
