#!/usr/bin/env bash
# The GPU check, run once on a lent GPU machine (no network there): notebook 02 under papermill on CUDA,
# training throughput on CUDA, and the tests that need a GPU. Prepare it here first, where the network is:
#   python3 bench/device_prepare.py     # .whl/ (wheels that machine lacks) and .devdata/ml-latest-small/
# then call the device tool with carry [".whl", ".devdata"] (49 MiB of the 64 a call may carry). Everything it writes
# goes to $OUT. With GPU_CHECK=scale it runs the scale bench instead (bench_scale.py on CUDA at SCALE_SIZES, default
# "10m 25m": synthesize, preprocess, one short training epoch, evaluate, export, load), which needs its own call.
# Synthesizing 25M ratings takes 181 s on this project's 2 cores and draws on every core (it took 434 s in one
# thread); the other 25M steps took 755-923 s here on the CPU, evaluate 558-694 s of it. On a 15-minute budget run
# SCALE_SIZES=10m first (its steps took about 190 s here), then 25m in a second call if time is left.
set -euo pipefail
python3 -m pip install -q --upgrade --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD TQDM_MININTERVAL=30 PYTHONUNBUFFERED=1
export JUPYTER_CONFIG_DIR=/tmp/jupyter JUPYTER_DATA_DIR=/tmp/jupyter/data JUPYTER_RUNTIME_DIR=/tmp/jupyter/run
OUT=${OUT:-/tmp/out}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
if [ "${GPU_CHECK:-}" = scale ]; then
    # shellcheck disable=SC2086
    cd bench && python3 bench_scale.py --device cuda --sizes ${SCALE_SIZES:-10m 25m} --work-dir /tmp \
        2>&1 | tee "$OUT/scale.txt"
    exit
fi
python3 -c "import torch, numpy, pandas; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'numpy', numpy.__version__, 'pandas', pandas.__version__)"
python3 -m pytest -q -o addopts="" -p no:cacheprovider tests/unit/test_sampler.py tests/unit/test_train.py tests/unit/test_evaluation.py -k "cuda or device" 2>&1 | grep -E "^E |passed|failed" | head -12 || true
start=$(date +%s)
python3 -m papermill notebooks/02_train.ipynb "$OUT/02_train_cuda.ipynb" -k python3 --execution-timeout 400 \
    -p data_dir "$PWD/.devdata" -p artefacts_dir /tmp/artefacts -p device cuda "$@" > "$OUT/papermill.log" 2>&1 \
    || { tail -40 "$OUT/papermill.log"; exit 1; }
echo "notebook 02 on CUDA: $(( $(date +%s) - start )) s wall"
python3 - "$OUT/02_train_cuda.ipynb" <<'PY'
import json, sys
from rec_lib.reports.nbtools import read_notebook
r = read_notebook(sys.argv[1])
print(json.dumps({k: r[k] for k in ("device", "batches_per_s", "train_seconds", "best_epoch", "pinsage_test_hr_A", "pinsage_test_hr_B")}))
PY
cd bench && python3 bench_training.py --device cuda --batches 50 2>&1 | grep -v Warn
