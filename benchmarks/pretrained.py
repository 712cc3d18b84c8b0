"""Write the generators that ship with ganzoo (ganzoo/pretrained/ROW.safetensors) from a re-run of the committed
``default`` section's seed-0 trials, after checking that the re-run *is* the committed run:

    ganzoo bench --reproduce benchmarks/results/default --seeds 1 --out /tmp/repro
    python benchmarks/pretrained.py /tmp/repro

For each row, the re-run trial must have the committed config hash and final figures, and its exported
generator, scored by ``ganzoo.evaluate`` with the bench's protocol, must give the committed final figures bit
for bit; a row that does not is refused. The bundled file holds the weights in fp16 and the export's metadata,
with the committed config and, under ``pretrained``, the section, row, seed, config hash, steps, the committed
FID and the FID of the fp16 weights (the same protocol).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import ganzoo
from ganzoo.bench.records import read_results
from ganzoo.bench.reproduction import COMPARED
from ganzoo.checkpoint import GENERATOR_FILE
from ganzoo.pretrained import DIRECTORY, METADATA_KEY

SECTION = Path(__file__).parent / "results" / "default"


def main(rerun: Path) -> None:
    committed, new = read_results(SECTION), read_results(rerun)
    protocol = committed.profile
    torch.set_num_threads(protocol.threads or 1)  # the bench's: figures depend on the thread count
    for trial in (t for t in committed.data["trials"] if t["seed"] == 0 and t["status"] == "ok"):
        row = trial["variant"]
        again = next(t for t in new.data["trials"] if t["variant"] == row and t["seed"] == 0)
        figures = {k: trial["final"][k] for k in COMPARED if k in trial["final"]}
        if again["config_hash"] != trial["config_hash"] or any(again["final"][k] != v for k, v in figures.items()):
            sys.exit(f"{row}: the re-run is not the committed trial (config hash or final figures differ)")
        export = new.path.parent / row / "seed-0" / GENERATOR_FILE
        scored = ganzoo.evaluate(export, split=protocol.real_split, num=protocol.num_fake, progress=False)["scores"]
        if any(scored[k] != v for k, v in figures.items()):
            sys.exit(f"{row}: {export} scores {scored}, not the committed {figures}")
        with safe_open(export, "pt") as f:
            metadata = f.metadata()
        metadata["config"] = json.dumps(trial["protocol"]["config"], sort_keys=True)  # the committed run's out
        weights = {k: v.half() if v.is_floating_point() else v for k, v in load_file(export).items()}
        target = DIRECTORY / f"{row}.safetensors"
        origin = {"section": protocol.name, "results": "benchmarks/results/default/results.json", "row": row,
                  "variant": trial["protocol"]["config"]["variant"], "seed": 0, "config_hash": trial["config_hash"],
                  "steps": trial["steps"], "fid": figures["fid"], "dtype": "float16"}
        save_file(weights, target, metadata={**metadata, METADATA_KEY: json.dumps(origin)})
        half = ganzoo.evaluate(target, split=protocol.real_split, num=protocol.num_fake, progress=False)["scores"]
        origin["fid_fp16"] = half["fid"]
        save_file(weights, target, metadata={**metadata, METADATA_KEY: json.dumps(origin)})
        target.chmod(0o644)  # save_file writes 0600
        print(f"{row}: committed FID {figures['fid']:.4f}, export identical; fp16 FID {half['fid']:.4f}; "
              f"{target} {target.stat().st_size} bytes")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
