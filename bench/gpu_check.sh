#!/usr/bin/env bash
# The prepared device check (issue 22: grouped-equals-alone on CUDA; issue 21: the paper
# grid's measured rate). One call of the device tool, about 8 minutes of an H100/H200:
#
#   here, once:   bash bench/gpu_check.sh --prepare      # copies ../shared/data into .gpu_data/
#   device tool:  run(command="bash bench/gpu_check.sh", carry=[".gpu_data"], timeout_s=560)
#
# .gpu_data/ (49 MB: CIFAR-10 JPEGs 19 MB, Fashion-MNIST 30 MB) is ignored by git
# (.git/info/exclude) and travels with the 14 MB tree, under the tool's 64 MiB. The device
# image's python3 holds torch, numpy, scipy, matplotlib, pytest and tqdm; the library runs
# from src/ without installing. Logs go to $OUT (the tool returns them).
set -uo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--prepare" ]; then
  grep -qx '/.gpu_data/' .git/info/exclude 2>/dev/null || echo '/.gpu_data/' >> .git/info/exclude
  mkdir -p .gpu_data && cp -r ../shared/data/cifar10-jpeg.tar.gz ../shared/data/fashion-mnist .gpu_data/
  du -sh .gpu_data; exit 0
fi
OUT=${OUT:-/tmp/gpu_check}; mkdir -p "$OUT"
export PYTHONPATH=$PWD/src SGDTEMP_DATA=$PWD/.gpu_data PYTHONUNBUFFERED=1 SGDTEMP_RESULTS=$(mktemp -d)
PY=python3
{ nvidia-smi; $PY -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))"; } \
  2>&1 | tee "$OUT/device.txt"
# 1. The CUDA cases of the engine tests (grouped equals alone, under bf16 autocast).
timeout 240 $PY -m pytest -q -p no:cacheprovider -k cuda tests/test_multirun.py \
  tests/test_paper_gpu_script.py 2>&1 | tee "$OUT/cuda_tests.txt"
# 2. The paper grid's first runs, two epochs each, into a scratch store: the measured
#    training images/s replaces the script's assumed 80,000 in the GPU budget.
timeout 240 $PY bench/paper_cifar10_gpu.py --store "$OUT/store" -p n_seeds 2 -p epochs 2 -p plateau_epochs 3 \
  -p break_betas "[]" -p decay_arm "[]" 2>&1 | tee "$OUT/paper_rate.txt"
rm -rf "$OUT/store"  # a 2-epoch store is not a result; only the rate and the tests come back
