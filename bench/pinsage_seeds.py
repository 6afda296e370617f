"""PinSage's test HR@10 over several seeds on one split, to tell a real gap from seed noise.

    python bench/pinsage_seeds.py --data-dir ../shared/data --device cuda --seeds 0 1 2 [--out seeds.jsonl]

The baselines are deterministic; only PinSage is retrained per seed. Each finished seed is appended to --out.
"""

from __future__ import annotations

import argparse
import json
import statistics
from dataclasses import replace
from pathlib import Path

from rec_lib.data.preprocess import PreprocessConfig, run_preprocess
from rec_lib.pinsage.baselines import ItemKNN, MostPopular
from rec_lib.pinsage.config import TrainConfig
from rec_lib.pinsage.evaluation import EmbeddingScorer, build_queries, evaluate
from rec_lib.pinsage.graph import build_graph
from rec_lib.pinsage.train import train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", default="ml-latest-small")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--num-epochs", type=int, default=TrainConfig.num_epochs)
    parser.add_argument("--patience", type=int, default=TrainConfig.patience)
    args = parser.parse_args()
    prep = run_preprocess(PreprocessConfig(args.dataset), data_dir=args.data_dir)
    graph = build_graph(prep)
    base = TrainConfig(dataset=args.dataset, device=args.device, num_epochs=args.num_epochs, patience=args.patience)
    queries = build_queries(prep, base.history_len)
    for scorer in (MostPopular(prep), ItemKNN(prep)):
        hr = {p: evaluate(scorer, queries, p, prep.n_movies, base.eval)["test"].hr for p in ("A", "B")}
        print(f"{scorer.name:<14} test HR@10  A {hr['A']:.4f}  B {hr['B']:.4f}")
    rows = []
    for seed in args.seeds:
        result = train(prep, graph, replace(base, seed=seed))
        scorer = EmbeddingScorer("pinsage", result.vectors, result.bias)
        row = {"seed": seed, "best_epoch": result.best_epoch + 1, "val_B": result.best_val_hr}
        for protocol in ("A", "B"):
            row[f"test_{protocol}"] = evaluate(scorer, queries, protocol, prep.n_movies, base.eval)["test"].hr
        rows.append(row)
        print(json.dumps(row), flush=True)
        if args.out:
            with args.out.open("a") as handle:
                handle.write(json.dumps(row) + "\n")
    for key in ("val_B", "test_A", "test_B"):
        values = [r[key] for r in rows]
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        print(f"pinsage {key}: mean {statistics.mean(values):.4f}  sd {spread:.4f}  over {len(values)} seeds")


if __name__ == "__main__":
    main()
