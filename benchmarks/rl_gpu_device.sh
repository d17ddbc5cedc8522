#!/usr/bin/env bash
# The RL hook's GPU check in one command on the device machine (it has PyTorch, transformers, peft and
# accelerate; no internet, no TRL or datasets): install the carried wheels (wheels/, see
# notes/rl-gpu-benchmarks-README.md), then benchmarks/rl_gpu.py on CUDA. Sized for ~5 minutes on one H200;
# the training folders stay in /tmp, and only the JSON and the log come back under $OUT.
#   run(command="bash benchmarks/rl_gpu_device.sh", carry=["wheels"], timeout_s=600)
set -uo pipefail
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
OUT=${OUT:-results/rl_gpu-device}
mkdir -p "$OUT"
{
  python -V; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python -c "import torch, transformers, peft, accelerate; print(torch.__version__, transformers.__version__, peft.__version__, accelerate.__version__)"
  python -m pip install --quiet --no-index --find-links wheels wheels/*.whl \
    || python -m pip install --quiet --no-index --no-deps wheels/*.whl
  # opro itself (its presets and templates are package data): offline, setuptools from wheels/
  python -m pip install --quiet --no-index --find-links wheels --no-deps -e . \
    || python -m pip install --quiet --no-deps --no-build-isolation -e .
  timeout "${BENCH_TIMEOUT:-500}" python benchmarks/rl_gpu.py --device auto --out /tmp/rl_gpu --steps "${STEPS:-8}"
  echo "exit $?"
  cp /tmp/rl_gpu/rl_gpu-*.json "$OUT"/ 2>/dev/null
} 2>&1 | grep -v -i "warn" | tee "$OUT/rl_gpu_device.log"
