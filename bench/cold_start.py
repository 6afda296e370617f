"""The cold-start evaluation (rec_lib.evaluation.coldstart) over several seeds, in parallel processes.

    python bench/cold_start.py --data-dir ../shared/data --seeds 0 1 2 3 4 --workers 2 \
        --out reports/coldstart/ml-latest-small.json

Each seed trains the default model on the warm data (no interaction with a new movie) and scores the
new movies with 0, 1, 3 and 10 revealed interactions each; its rows are appended to ``<out>.jsonl`` as
soon as it finishes. The deterministic baselines are computed once. At the end every row goes to
``--out`` (split ``cold-test``), with the warm validation and test metrics of each seed's model.

Settings are chosen on split ``cold-val`` (``--split cold-val``: the next-newest movies, trained on the
warm data without them and without any cold-test interaction); ``--val-slices 3`` adds the two slices
before it (rolling origin, ``cold_validation_slices``: rows carry ``slice``, 0 the newest), each trained
on its own warm data; the jobs run slice by slice, so the settings of one slice finish together.
``--id-dropout 0.1 0.3 0.5`` and ``--new-movie-loss 0 0.5 1`` run every seed at each combination of values.
``--content-weight 0 1 2 4`` scores each trained model at every content weight (``TrainConfig.content_weight``
changes scoring only, so one training serves them all; its early stopping used the default weight); rows carry
``content_weight``, and the warm validation HR@10 at each weight is computed on vectors drawn with the run's seed.
``--save-models DIR`` keeps each training's checkpoints in ``DIR/<split>-slice<i>-seed<s>/`` (a rerun resumes
from them) for ``bench/cold_start_diagnosis.py``; it is meant for one setting per seed and slice.
"""

from __future__ import annotations

import argparse
import itertools
import json
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, replace
from multiprocessing import get_context
from pathlib import Path

import pandas as pd
from cold_start_diagnosis import saved_model_dir
from common import seeded_run_arguments

from rec_lib.data.preprocess import PreprocessConfig, run_preprocess
from rec_lib.evaluation.coldstart import (
    COLD_SHARE,
    COLD_SPLIT,
    COLD_VAL_SPLIT,
    cold_start_split,
    cold_validation_slices,
)
from rec_lib.experiments.coldstart import cold_start_rows, summarise_cold
from rec_lib.experiments.runs import write_table
from rec_lib.pinsage.config import TrainConfig

_STATE: dict = {}


def _start(
    dataset: str, data_dir: str | None, artefacts_dir: str | None, share: float, split: str, val_slices: int
) -> None:
    import torch

    torch.set_num_threads(1)
    prep = run_preprocess(PreprocessConfig(dataset), data_dir=data_dir, artefacts_dir=artefacts_dir)
    test = cold_start_split(prep, share)
    _STATE["splits"] = cold_validation_slices(test, val_slices) if split == COLD_VAL_SPLIT else [test]


def _seed_rows(
    base: TrainConfig, seed: int, slice_index: int, content_weights: list[float] | None, save_models: Path | None
) -> list[dict]:
    from rec_lib.evaluation.protocol import EmbeddingScorer, build_queries, evaluate
    from rec_lib.pinsage.graph import TEST_TIME_GRAPH, build_graph
    from rec_lib.pinsage.inference import seeded_vectors
    from rec_lib.pinsage.train import train

    split = _STATE["splits"][slice_index]
    config = replace(base, seed=seed)
    graph = build_graph(split.warm)
    checkpoints = None if save_models is None else saved_model_dir(save_models, split.name, slice_index, seed)
    test_graph = build_graph(split.warm, TEST_TIME_GRAPH, graph.features.vocab)
    result = train(split.warm, graph, config, checkpoint_dir=checkpoints, test_graph=test_graph)
    queries = build_queries(split.warm, config.history_len)
    out = []
    for weight in content_weights or [config.content_weight]:
        scored = replace(config, content_weight=weight)
        result.model.content_weight = weight
        rows = cold_start_rows(split, result.model, scored, baselines=False, progress=False)
        rows["seed"] = seed
        rows["slice"] = slice_index
        rows["id_dropout"] = config.id_dropout
        rows["new_movie_loss"] = config.new_movie_loss
        rows["content_weight"] = weight
        rows["best_epoch"] = result.best_epoch + 1
        if content_weights is None:
            warm = evaluate(result.scorer(), queries, "B", split.warm.n_movies, config.eval)
        else:
            vectors = seeded_vectors(result.model, scored, graph, next(result.model.parameters()).device)
            scorer = EmbeddingScorer("pinsage", vectors, result.bias, result.query_rule)
            warm = evaluate(scorer, queries, "B", split.warm.n_movies, config.eval, ("val",))
        for name, metrics in warm.items():
            rows[f"warm_{name}_hr_B"] = metrics.hr
        out += rows.to_dict(orient="records")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    seeded_run_arguments(parser)
    parser.add_argument("--share", type=float, default=COLD_SHARE)
    parser.add_argument("--num-epochs", type=int, default=TrainConfig.num_epochs, help="shorter for a smoke run")
    parser.add_argument("--batches-per-epoch", type=int, default=TrainConfig.batches_per_epoch)
    parser.add_argument("--split", choices=(COLD_SPLIT, COLD_VAL_SPLIT), default=COLD_SPLIT)
    parser.add_argument("--val-slices", type=int, default=1, help="cold-val slices back in time (--split cold-val)")
    parser.add_argument("--id-dropout", type=float, nargs="+", default=[TrainConfig.id_dropout])
    parser.add_argument("--new-movie-loss", type=float, nargs="+", default=[TrainConfig.new_movie_loss])
    parser.add_argument("--content-weight", type=float, nargs="+", default=None, help="score each model at each")
    parser.add_argument("--save-models", type=Path, default=None, help="keep each training's checkpoints here")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    base = TrainConfig(
        dataset=args.dataset, device=args.device, num_epochs=args.num_epochs, batches_per_epoch=args.batches_per_epoch
    )
    if args.val_slices > 1 and args.split != COLD_VAL_SPLIT:
        parser.error("--val-slices needs --split cold-val")
    if args.save_models and len(args.id_dropout) * len(args.new_movie_loss) > 1:
        parser.error("--save-models keeps one training per seed and slice: give one --id-dropout and --new-movie-loss")
    initargs = (args.dataset, args.data_dir, args.artefacts_dir, args.share, args.split, args.val_slices)
    _start(*initargs)
    baselines = []
    for index, split in enumerate(_STATE["splits"]):
        baselines += cold_start_rows(split, None, base).assign(slice=index).to_dict(orient="records")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    partial = args.out.with_suffix(".jsonl")
    rows = list(baselines)
    with ProcessPoolExecutor(
        args.workers, mp_context=get_context("spawn"), initializer=_start, initargs=initargs
    ) as pool:
        jobs = [
            pool.submit(
                _seed_rows,
                replace(base, id_dropout=dropout, new_movie_loss=weight),
                seed,
                index,
                args.content_weight,
                args.save_models,
            )
            for index in range(len(_STATE["splits"]))
            for seed in args.seeds
            for dropout, weight in itertools.product(args.id_dropout, args.new_movie_loss)
        ]
        for future in as_completed(jobs):
            finished = future.result()
            rows += finished
            with partial.open("a") as handle:
                handle.writelines(json.dumps(row) + "\n" for row in finished)
            for row in finished:
                print(
                    f"id dropout {row['id_dropout']} new-movie loss {row['new_movie_loss']} "
                    f"content weight {row['content_weight']} seed {row['seed']} "
                    f"slice {row['slice']} "
                    f"revealed {row['revealed']:>2}  "
                    f"{args.split} HR@10 {row['hr']:.4f}  warm val HR@10 {row['warm_val_hr_B']:.4f}",
                    flush=True,
                )
    metadata = {"dataset": args.dataset, "share": args.share, "config": asdict(base), "seeds": args.seeds}
    metadata["id_dropout"] = args.id_dropout
    metadata["new_movie_loss"] = args.new_movie_loss
    metadata["content_weight"] = args.content_weight or [base.content_weight]
    metadata["split"] = [split.warm.manifest["cold_start"] for split in _STATE["splits"]]
    table = pd.DataFrame(rows)
    write_table(table, args.out, metadata)
    grid = ["id_dropout", "new_movie_loss", "content_weight"]
    for by in ([*grid, "slice"], grid) if len(_STATE["splits"]) > 1 else (grid,):
        print(summarise_cold(table, args.split, by=by).to_string(index=False, float_format="{:.4f}".format))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
