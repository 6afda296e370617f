#!/usr/bin/env bash
# The quality search on a lent GPU machine (no network there), in one call:
#   1. the ablation search (bench/pinsage_ablation.py: every row of rec_lib.experiments.tuning.ABLATIONS over
#      5 seeds, parallel processes sharing the GPU) on ml-latest-small, rows appended as they finish;
#   2. meanwhile, the defaults on synthetic data of ml-1m's shape: train, then evaluate against the baselines.
# Needs, in the repository root, .devdata/ holding ml-latest-small/ (carry it). Writes everything to $OUT.
#   ABLATION_SECONDS  how long the search may run before it is stopped (default 470)
set -uo pipefail
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 TQDM_DISABLE=1
OUT=${OUT:-/tmp/out}
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
synthetic() {
    python3 -m rec_lib synthesize --out /tmp/data/synthetic-ml-1m
    local flags=(--dataset synthetic-ml-1m --data-dir /tmp/data --artefacts-dir /tmp/artefacts --device cuda --no-download)
    python3 -m rec_lib train "${flags[@]}" && python3 -m rec_lib evaluate "${flags[@]}" --out "$OUT/synthetic-ml-1m.json"
}
synthetic > "$OUT/synthetic-ml-1m.log" 2>&1 &
started=$(date +%s)
timeout "${ABLATION_SECONDS:-470}" python3 bench/pinsage_ablation.py --data-dir "$PWD/.devdata" \
    --artefacts-dir /tmp/artefacts --device cuda --workers 14 --out "$OUT/ml-latest-small.json" > "$OUT/ablation.log" 2>&1
echo "ablation search stopped after $(( $(date +%s) - started )) s with $(wc -l < "$OUT/ml-latest-small.jsonl") rows"
wait
grep -v Warn "$OUT/synthetic-ml-1m.log" | tail -25
