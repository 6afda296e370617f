"""The ablation search (rec_lib.experiments.tuning.ABLATIONS) over several seeds, in parallel processes.

    python bench/pinsage_ablation.py --data-dir ../shared/data --device cuda --seeds 0 1 2 3 4 --workers 12 \
        --out reports/tuning/ml-latest-small.json

Each finished (ablation, seed) row is appended to ``<out>.jsonl`` at once, so a run cut short keeps what it
finished; at the end the rows are written to ``--out`` in the format notebook 02 reads, and the baselines'
deterministic metrics (same split, same protocols) to ``<out stem>-baselines.json``. Settings are chosen
on the validation columns; the test columns are for the report.
"""

from __future__ import annotations

import argparse
import json
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict
from multiprocessing import get_context
from pathlib import Path

from common import seeded_run_arguments

from rec_lib.data.preprocess import PreprocessConfig, run_preprocess
from rec_lib.experiments.tuning import ABLATIONS, ablation_row, summarise, write_search
from rec_lib.files import write_json
from rec_lib.pinsage.config import TrainConfig

_STATE: dict = {}


def _start(dataset: str, data_dir: str | None, artefacts_dir: str | None) -> None:
    import torch

    from rec_lib.pinsage.graph import build_graph

    torch.set_num_threads(1)
    prep = run_preprocess(PreprocessConfig(dataset), data_dir=data_dir, artefacts_dir=artefacts_dir)
    _STATE.update(prep=prep, graph=build_graph(prep))


def _run(base: TrainConfig, name: str, change: dict, seed: int) -> dict:
    return ablation_row(_STATE["prep"], _STATE["graph"], base, name, change, seed)


def baseline_rows(prep, base: TrainConfig) -> list[dict]:
    from rec_lib.evaluation.protocol import build_queries, evaluate, per_user_ranks
    from rec_lib.experiments.intervals import per_user_columns
    from rec_lib.experiments.runs import baseline_scorers

    queries = build_queries(prep, base.history_len)
    rows = []
    for scorer in baseline_scorers(prep):
        for protocol in ("A", "B"):
            for split, m in evaluate(scorer, queries, protocol, prep.n_movies, base.eval).items():
                row = {"model": scorer.name, "protocol": protocol, "split": split, **m.__dict__}
                if (protocol, split) == ("B", "test"):
                    row |= per_user_columns(per_user_ranks(scorer, queries, "B", prep.n_movies, base.eval))
                rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    seeded_run_arguments(parser)
    parser.add_argument("--only", nargs="*", default=None, help="ablation names to run (default: all)")
    parser.add_argument("--by-row", action="store_true", help="every seed of a row before the next row")
    parser.add_argument(
        "--num-epochs", type=int, default=TrainConfig.num_epochs, help="a shorter budget for a smoke run"
    )
    parser.add_argument("--batches-per-epoch", type=int, default=TrainConfig.batches_per_epoch)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    base = TrainConfig(
        dataset=args.dataset, device=args.device, num_epochs=args.num_epochs, batches_per_epoch=args.batches_per_epoch
    )
    prep = run_preprocess(PreprocessConfig(args.dataset), data_dir=args.data_dir, artefacts_dir=args.artefacts_dir)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    baselines = args.out.with_name(f"{args.out.stem}-baselines.json")
    metadata = {"dataset": args.dataset, "ties": prep.stats.tie_rule, "eval": asdict(base.eval)}
    write_json(baselines, {"metadata": metadata, "rows": baseline_rows(prep, base)})
    names = args.only or list(ABLATIONS)
    jobs = [(name, ABLATIONS[name], seed) for seed in args.seeds for name in names]
    if args.by_row:
        jobs.sort(key=lambda job: names.index(job[0]))
    partial = args.out.with_suffix(".jsonl")
    rows = []

    def keep(row: dict) -> None:
        rows.append(row)
        with partial.open("a") as handle:
            handle.write(json.dumps(row) + "\n")
        print(f"{row['name']:<42} seed {row['seed']}  val B {row['val_hr_B']:.4f}  test B {row['test_hr_B']:.4f}")

    if args.workers == 1:
        _start(args.dataset, args.data_dir, args.artefacts_dir)
        for job in jobs:
            keep(_run(base, *job))
    else:
        initargs = (args.dataset, args.data_dir, args.artefacts_dir)
        with ProcessPoolExecutor(
            args.workers, mp_context=get_context("spawn"), initializer=_start, initargs=initargs
        ) as pool:
            for future in as_completed([pool.submit(_run, base, *job) for job in jobs]):
                keep(future.result())
    write_search(rows, base, args.out)
    print(summarise(rows).to_string(index=False, float_format=lambda v: f"{v:.4f}"))


if __name__ == "__main__":
    main()
