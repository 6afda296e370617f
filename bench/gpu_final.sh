#!/usr/bin/env bash
# Second GPU call: the device-parametrised tests on CUDA, our sampler's CUDA timings, and the tuning search.
set -euo pipefail
export PYTHONPATH=$PWD TQDM_DISABLE=1 PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/out}
python3 -m pytest -q -o addopts="" -p no:cacheprovider tests/test_sampler.py tests/test_train.py -k "cuda or device" 2>&1 | tail -2
(cd bench && python3 bench_sampler_device.py)
python3 -m rec_lib tune --dataset ml-latest-small --data-dir "$PWD/.devdata" --artefacts-dir /tmp/art --device cuda \
    --num-epochs 4 --out "$OUT/tuning-ml-latest-small.json" 2>&1 | grep -v Warn
