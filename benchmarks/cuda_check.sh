#!/usr/bin/env bash
# The CUDA paths on one GPU host, in one short run: the CUDA tests (AMP), each fast-path switch timed on the GPU
# (fused Adam, channels-last, the joint discriminator pass), AMP and torch.compile training runs, and a DDP run
# on NCCL under torchrun. Writes its reports under OUT (default runs/cuda-check); committed ones go to
# benchmarks/results/*-cuda.json. Usage: bash benchmarks/cuda_check.sh [OUT]
set -uo pipefail
out=${1:-${OUT:-runs/cuda-check}}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
log() { echo "== $*" | tee -a "$out/log"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee -a "$out/log"
python3 -c "import torch, ganzoo; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'ganzoo', ganzoo.version())" \
  | tee -a "$out/log"
log "CUDA tests"
timeout 240 python3 -P -m pytest -q -p no:cacheprovider tests/test_fast_paths.py 2>&1 | tail -15 | tee -a "$out/log"
log "fast paths on cuda"
timeout 300 python3 benchmarks/throughput.py --device cuda --fast-paths --variants vanilla,dcgan,wgan-gp \
  --switches fused_optimizer,channels_last,discriminator_pass --seconds 2 --rounds 2 --warmup 20 \
  --out "$out/fast-paths-cuda.json" 2>&1 | tee -a "$out/log"
for run in "fp32:" "bf16:--set amp=bf16" "fp16:--set amp=fp16" "compile:--set compile=true" \
           "bf16-compile:--set amp=bf16 --set compile=true"; do
  name=${run%%:*}; sets=${run#*:}
  log "train dcgan on cuda ($name)"
  # shellcheck disable=SC2086
  timeout 240 ganzoo train dcgan --steps 600 --set device=cuda --set sample_every=0 $sets --out "/tmp/cuda-$name" \
    2>&1 | tail -3 | tee -a "$out/log"
  python3 - "$name" "/tmp/cuda-$name" "$out/train-cuda.jsonl" <<'PY' 2>&1 | tee -a "$out/log"
import json, sys
from pathlib import Path
name, run, dest = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
result = json.loads((run / "result.json").read_text())
keep = {k: result[k] for k in result if k not in ("config",)}
with open(dest, "a") as f:
    f.write(json.dumps({"run": name, **keep}) + "\n")
print(name, {k: keep[k] for k in list(keep)[:12]})
PY
done
log "DDP on NCCL (torchrun, 1 process per GPU)"
timeout 180 torchrun --standalone --nproc_per_node "$(nvidia-smi -L | wc -l)" "$(command -v ganzoo)" train dcgan \
  --steps 300 --set device=cuda --set sample_every=0 --out /tmp/cuda-ddp 2>&1 | tail -5 | tee -a "$out/log"
cp /tmp/cuda-ddp/result.json "$out/ddp-nccl-result.json" 2>/dev/null || log "no DDP result"
log done
