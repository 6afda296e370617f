"""Command line: ``python -m rec_lib <step>``, one step per notebook, plus ``demo``."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from rec_lib.config import DEFAULT_DATASET
from rec_lib.errors import RecLibError


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except RecLibError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m rec_lib", description=__doc__)
    steps = parser.add_subparsers(required=True, metavar="step")

    pre = steps.add_parser("preprocess", help="load, split and cache a dataset; print its statistics")
    _data_arguments(pre)
    pre.add_argument("--force", action="store_true", help="recompute even when cached artefacts match")
    pre.set_defaults(handler=_preprocess)

    demo = steps.add_parser("demo", help="run the pipeline as far as it exists on one dataset")
    _data_arguments(demo)
    demo.set_defaults(handler=_demo)

    synth = steps.add_parser("synthesize", help="write a synthetic dataset in the exact ml-1m file format")
    synth.add_argument("--out", type=Path, required=True, help="folder to write ratings.dat, movies.dat, users.dat")
    synth.add_argument("--users", type=int, default=6040)
    synth.add_argument("--movies", type=int, default=3706)
    synth.add_argument("--ratings", type=int, default=1_000_209)
    synth.add_argument("--seed", type=int, default=0)
    synth.set_defaults(handler=_synthesize)
    return parser


def _data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", default=DEFAULT_DATASET, help=f"dataset name (default {DEFAULT_DATASET})")
    parser.add_argument("--data-dir", default=None, help="folder holding <dataset>/ (default: $REC_DATA_DIR, data/raw)")
    parser.add_argument("--artefacts-dir", default=None, help="default: $REC_ARTEFACTS_DIR, artefacts/")
    parser.add_argument("--no-download", action="store_true", help="fail instead of downloading a missing dataset")
    parser.add_argument(
        "--short-users",
        choices=("train", "drop"),
        default="train",
        help="users with fewer than 3 ratings: keep in training only, or drop",
    )


def _run_preprocess(args: argparse.Namespace, force: bool = False):
    from rec_lib.preprocess import PreprocessConfig, run_preprocess

    config = PreprocessConfig(dataset=args.dataset, short_users=args.short_users)
    return run_preprocess(
        config, data_dir=args.data_dir, artefacts_dir=args.artefacts_dir, download=not args.no_download, force=force
    )


def _print_dataset(prep) -> None:
    from rec_lib.reporting import dataset_summary

    print(f"dataset {prep.manifest.get('dataset')} -> {prep.path}")
    print(dataset_summary(prep).to_string())
    for note in prep.stats.notes():
        print(f"note: {note}")


def _preprocess(args: argparse.Namespace) -> int:
    _print_dataset(_run_preprocess(args, force=args.force))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from rec_lib.graph import MOVIE, USER, WATCHED, build_graph

    started = time.perf_counter()
    prep = _run_preprocess(args)
    _print_dataset(prep)
    graph = build_graph(prep)
    print(
        f"graph: {graph.graph.num_nodes[USER]} users, {graph.graph.num_nodes[MOVIE]} movies, "
        f"{graph.graph.num_edges(WATCHED)} training edges each way; "
        f"{len(graph.features.genre_vocab)} genres, {len(graph.features.title_vocab)} title tokens"
    )
    print(f"demo finished in {time.perf_counter() - started:.1f} s")
    return 0


def _synthesize(args: argparse.Namespace) -> int:
    from rec_lib.synthetic import SyntheticConfig, generate_ml1m

    config = SyntheticConfig(n_users=args.users, n_movies=args.movies, n_ratings=args.ratings, seed=args.seed)
    folder = generate_ml1m(args.out, config)
    print(f"wrote {config.n_ratings} ratings of {config.n_users} users on {config.n_movies} movies to {folder}")
    return 0
