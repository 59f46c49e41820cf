#!/usr/bin/env bash
# On the device machine, in one call:  bash benchmarks/gpu_device.sh   (with carry=[".whl"], see gpu_wheels.sh)
# Installs the carried wheels beside the image's torch, then runs the GPU comparison; the table and
# its JSON land in $OUT.
set -euo pipefail
OUT=${OUT:-.}
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv | tee "$OUT/gpu.log"
python3 -c "import torch, transformers, datasets, pyarrow, accelerate; print('torch', torch.__version__, 'transformers', transformers.__version__, 'datasets', datasets.__version__, 'pyarrow', pyarrow.__version__, 'accelerate', accelerate.__version__)" | tee -a "$OUT/gpu.log"
# 1) the table: hf-finetune (length buckets; and the stock-style group_by_length for contrast) against the
#    stock recipe in fp32 and bf16, 300 steps of 32
python3 benchmarks/run.py --mode gpu --sampling length_buckets --sampling group_by_length \
  --json "$OUT/gpu.json" 2>&1 | tee -a "$OUT/gpu.log"
# 2) torch.compile on the bucketed shapes, longer (compilation is paid once), no second baseline run
timeout 240 python3 benchmarks/run.py --mode gpu --steps 600 --compile --no-stock \
  --json "$OUT/gpu_compile.json" 2>&1 | tee -a "$OUT/gpu.log" || echo "compile run failed or timed out" | tee -a "$OUT/gpu.log"
