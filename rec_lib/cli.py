"""Command line: ``python -m rec_lib <step>``, one step per notebook, plus ``pipeline`` (all of them).

This module only parses flags and prints; every step it runs is a call of :mod:`rec_lib.steps`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

from rec_lib import steps
from rec_lib.config import DEFAULT_DATASET
from rec_lib.contracts import QUERY_MODES, SET_PRIOR_TICKS
from rec_lib.data.preprocess import TIE_RULES, PreprocessConfig
from rec_lib.errors import RecLibError
from rec_lib.evaluation.config import EASE_L2, TICK_DRAWS, EvalConfig


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        code = args.handler(args)
    except RecLibError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if getattr(args, "report_peak", False):
        print(peak_memory_line(), flush=True)
    return code


def peak_memory_line() -> str:
    """This process's peak resident memory, and its peak CUDA memory when it used the GPU.

    >>> peak_memory_line().startswith("peak memory: ")
    True
    """
    import resource

    line = f"peak memory: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GB"
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        line += f", GPU {torch.cuda.max_memory_allocated() / 2**30:.2f} GB"
    return line


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m rec_lib", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(required=True, metavar="step")

    pre = commands.add_parser("preprocess", help="load, split and cache a dataset; print its statistics")
    _data_arguments(pre)
    pre.add_argument("--force", action="store_true", help="recompute even when cached artefacts match")
    pre.set_defaults(handler=_preprocess, report_peak=True)

    pipe = commands.add_parser(
        "pipeline", help="the whole pipeline without notebooks: preprocess, train, evaluate, export, load, recommend"
    )
    _data_arguments(pipe)
    _train_arguments(pipe)
    pipe.add_argument("--ease-l2", type=float, default=EASE_L2, help="EASE regularisation")
    pipe.set_defaults(handler=_pipeline, report_peak=True)

    tr = commands.add_parser("train", help="train PinSage on a preprocessed dataset (resumes a matching run)")
    _data_arguments(tr)
    _train_arguments(tr)
    tr.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint of the same run")
    tr.set_defaults(handler=_train, report_peak=True)

    ev = commands.add_parser("evaluate", help="PinSage and the baselines under both protocols: one table, also as JSON")
    _run_arguments(ev)
    ev.add_argument("--out", type=Path, default=None, help="JSON file (default: <run dir>/evaluation.json)")
    ev.add_argument("--ease-l2", type=float, default=EASE_L2, help="EASE regularisation")
    ev.add_argument(
        "--device", choices=("auto", "cpu", "cuda"), default="auto", help="where to score (default auto: CUDA if seen)"
    )
    ev.set_defaults(handler=_evaluate, report_peak=True)

    tune = commands.add_parser("tune", help="run the ablation search and write reports/tuning/<dataset>.json")
    _data_arguments(tune)
    _train_arguments(tune)
    tune.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds per ablation (default 0)")
    tune.add_argument("--out", type=Path, default=None, help="JSON file (default: reports/tuning/<dataset>.json)")
    tune.set_defaults(handler=_tune, report_peak=True)

    export = commands.add_parser("export", help="compute, check and save every movie's vector from the trained model")
    _run_arguments(export)
    export.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="default auto")
    export.set_defaults(handler=_export, report_peak=True)

    load = commands.add_parser("load", help="load the exported vectors into Milvus and movie details into SQL")
    _run_arguments(load)
    load.set_defaults(handler=_load, report_peak=True)

    add = commands.add_parser(
        "add-movies", help="add new movies (movies.csv format) to the loaded stores with vectors from the trained model"
    )
    _run_arguments(add)
    add.add_argument("--file", type=Path, required=True, help="new movies: movieId,title,genres (MovieLens format)")
    add.add_argument("--ratings", type=Path, default=None, help="their first ratings: userId,movieId,rating,timestamp")
    add.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="default auto")
    add.set_defaults(handler=_add_movies, report_peak=True)

    cold = commands.add_parser(
        "cold-start", help="train without the newest movies and rank them with 0-10 revealed ratings (split cold-test)"
    )
    _data_arguments(cold)
    _train_arguments(cold)
    cold.add_argument("--share", type=float, default=None, help="share of eligible movies held out (default 0.1)")
    cold.set_defaults(handler=_cold_start, report_peak=True)

    sas = commands.add_parser(
        "sasrec", help="SASRec, the sequential baseline: trained per seed, early-stopped on validation, both protocols"
    )
    _data_arguments(sas)
    _config_arguments(sas, _sasrec_config_class(), skip=("seed",))
    sas.add_argument("--seeds", type=int, nargs="+", default=[0], help="one run per seed (default 0)")
    sas.add_argument(
        "--out", type=Path, default=None, help="JSON file (default: <reports>/tuning/<dataset>-sasrec.json)"
    )
    sas.set_defaults(handler=_sasrec, report_peak=True)

    liked = commands.add_parser(
        "liked-set",
        help="the liked-set table: users held out of training tick liked movies in a random order; PinSage and the "
        "baselines rank their other liked movies",
    )
    _data_arguments(liked)
    _train_arguments(liked)
    liked.add_argument("--share", type=float, default=0.2, help="share of users held out (default 0.2)")
    liked.add_argument("--split-seed", type=int, default=0, help="which users are held out (default 0)")
    liked.add_argument("--split", choices=("val", "test"), default="test", help="the held-out half scored")
    liked.add_argument("--seeds", type=int, nargs="+", default=None, help="one PinSage run per seed (default --seed)")
    liked.add_argument(
        "--folds",
        type=int,
        nargs="+",
        default=[0],
        help="the held-out groups of users in turn (default 0, the tables' split; 0 1 2 3 4 with --share 0.2: every "
        "fold's test users at once, the settings still those fold 0's val users chose)",
    )
    liked.add_argument(
        "--set-rule",
        choices=("fixed", "learned", "transformed"),
        default="fixed",
        help="PinSage's headline row: the fixed set rule with --prior-ticks, the learned one, or the learned one "
        "with a full transform; the one this dataset's validation users chose (--split val prints fixed or learned; "
        "bench/set_rule_variants.py --split val compares the learned one with and without the transform); default "
        "fixed",
    )
    liked.add_argument(
        "--prior-ticks",
        type=float,
        default=SET_PRIOR_TICKS,
        help="the fixed set rule's prior: the one this dataset's validation users chose (--split val prints it); "
        f"default {SET_PRIOR_TICKS:g}, the product's",
    )
    liked.add_argument(
        "--draws",
        type=int,
        default=TICK_DRAWS,
        help=f"draws of each held-out user's ticks per query size, their scores averaged (default {TICK_DRAWS})",
    )
    liked.add_argument(
        "--ease-l2",
        type=float,
        default=EASE_L2,
        help=f"EASE's λ in the table: the one this dataset's validation users chose (--split val prints it); "
        f"default {EASE_L2:g}",
    )
    liked.add_argument(
        "--out",
        type=Path,
        default=None,
        help="JSON file (default: <reports>/tuning/<dataset>-liked-set.json, -liked-set-val.json for --split val, "
        "-liked-set-folds.json for folds beyond 0)",
    )
    liked.set_defaults(handler=_liked_set, report_peak=True)

    grid = commands.add_parser(
        "tune-baselines", help="item-kNN's recency decay and EASE's λ × decay on a small grid, chosen on validation"
    )
    _data_arguments(grid)
    grid.add_argument("--out", type=Path, default=None, help="default: <reports>/tuning/<dataset>-baseline-grid.json")
    grid.set_defaults(handler=_tune_baselines, report_peak=True)

    lead = commands.add_parser(
        "intervals",
        help="PinSage's paired bootstrap intervals against every other model of the committed timeline results",
    )
    lead.add_argument("--dataset", default=DEFAULT_DATASET, help=f"dataset name (default {DEFAULT_DATASET})")
    lead.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples over users (default 2000)")
    lead.add_argument("--out", type=Path, default=None, help="default: <reports>/tuning/<dataset>-intervals.json")
    lead.set_defaults(handler=_intervals)

    rec = commands.add_parser("recommend", help="recommend movies for liked MovieLens ids from the loaded stores")
    rec.add_argument("--liked", type=int, nargs="*", default=[], help="MovieLens ids (none: popular movies)")
    rec.add_argument(
        "--mode",
        choices=QUERY_MODES,
        default=QUERY_MODES[0],
        help="set: liked in no order (default); history: oldest first, the latest counts most",
    )
    rec.add_argument("-k", type=int, default=10, help="how many movies (default 10)")
    rec.add_argument("--genres", nargs="*", default=None, help="keep movies with any of these genres")
    rec.add_argument("--years", type=int, nargs=2, default=None, metavar=("FIRST", "LAST"), help="inclusive range")
    rec.add_argument("--artefacts-dir", default=None, help="where the embedded stores live (default artefacts/)")
    rec.set_defaults(handler=_recommend)

    lite = commands.add_parser(
        "milvus-lite", help="serve the Milvus Lite data dir on 127.0.0.1 so several processes can share it"
    )
    lite.add_argument("--data-dir", default=None, help="default: <artefacts>/milvus.db")
    lite.add_argument("--artefacts-dir", default=None)
    lite.add_argument("--port", type=int, default=19530)
    lite.set_defaults(handler=_milvus_lite)

    rep = commands.add_parser(
        "report", help="run notebooks 01-06 headlessly into reports/<dataset>/<run id>/ and compare with the baseline"
    )
    _data_arguments(rep)
    rep.add_argument("--profile", default="default", help="parameter set: default (full training) or smoke")
    rep.add_argument("--out-dir", type=Path, default=None, help="default: reports/<dataset>/<run id>")
    rep.add_argument("--baseline", type=Path, default=None, help="default: reports/baselines/<dataset>-<profile>.json")
    rep.add_argument(
        "--accept", type=Path, default=None, metavar="RUN_DIR", help="make this run's metrics the baseline"
    )
    rep.set_defaults(handler=_report)

    serve = commands.add_parser("serve", help="the HTTP API and web page over the loaded stores (127.0.0.1 by default)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--artefacts-dir", default=None, help="where the embedded stores live (default artefacts/)")
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes, each with its own store clients; above 1 needs MILVUS_URI (a Milvus server)",
    )
    serve.add_argument(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="a line per request on stdout (uvicorn's access log); --no-access-log where a proxy logs requests "
        "(its cost per request: reports/speed.md)",
    )
    serve.set_defaults(handler=_serve)

    synth = commands.add_parser("synthesize", help="write a synthetic dataset in the exact ml-1m file format")
    synth.add_argument("--out", type=Path, required=True, help="folder to write ratings.dat, movies.dat, users.dat")
    synth.add_argument("--users", type=int, default=6040)
    synth.add_argument("--movies", type=int, default=3706)
    synth.add_argument("--ratings", type=int, default=1_000_209)
    synth.add_argument("--seed", type=int, default=0)
    synth.set_defaults(handler=_synthesize, report_peak=True)
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
    parser.add_argument(
        "--ties",
        choices=TIE_RULES,
        default=PreprocessConfig.ties,
        help="order of a user's ratings in the same second: by a fixed seeded hash of (user, movie) that no model "
        "can learn, or by movie id (the earlier rule, to compare with earlier tables)",
    )


def _run_arguments(parser: argparse.ArgumentParser) -> None:
    """Which trained run a step works on: the latest one of the dataset unless ``--run`` names one."""
    parser.add_argument("--dataset", default=DEFAULT_DATASET, help=f"dataset name (default {DEFAULT_DATASET})")
    parser.add_argument("--artefacts-dir", default=None, help="default: $REC_ARTEFACTS_DIR, artefacts/")
    parser.add_argument("--run", default=None, help="run directory name or path (default: the latest trained run)")


def _train_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field (``--hidden-dims 64``, ``--use-bias false``), defaulting to its default."""
    from rec_lib.pinsage.config import TrainConfig

    _config_arguments(parser, TrainConfig, skip=("dataset",))


def _config_arguments(parser: argparse.ArgumentParser, config_class, skip: tuple[str, ...] = ()) -> None:
    """One flag per field of the dataclass ``config_class`` but ``skip``: a Literal field's values are its choices,
    a bool reads true/false."""
    from dataclasses import MISSING, fields
    from typing import get_args, get_type_hints

    hints = get_type_hints(config_class)
    for field in fields(config_class):
        if field.name in skip or field.default is MISSING:
            continue
        options: dict = {"default": field.default, "help": f"default {field.default}"}
        choices = get_args(hints[field.name])
        if choices:
            options["choices"] = choices
        else:
            options["type"] = parse_bool if hints[field.name] is bool else hints[field.name]
        parser.add_argument(f"--{field.name.replace('_', '-')}", **options)


def _config_from(args: argparse.Namespace, config_class, skip: tuple[str, ...] = (), **fixed):
    """The ``config_class`` the flags of :func:`_config_arguments` describe, with ``fixed`` fields, validated."""
    from dataclasses import fields

    values = {f.name: getattr(args, f.name) for f in fields(config_class) if f.name not in skip}
    config = config_class(**values, **fixed)
    config.validate()
    return config


def parse_bool(text: str) -> bool:
    """A command-line boolean: true/false, yes/no, on/off or 1/0, any case.

    >>> parse_bool("False"), parse_bool("YES"), parse_bool("0")
    (False, True, False)
    """
    value = text.strip().lower()
    if value in ("true", "yes", "on", "1"):
        return True
    if value in ("false", "no", "off", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _train_config(args: argparse.Namespace):
    from rec_lib.pinsage.config import TrainConfig

    return _config_from(args, TrainConfig, skip=("dataset",), dataset=args.dataset)


def _print_epoch(config):
    def report(epoch) -> None:
        print(
            f"epoch {epoch.epoch + 1}: loss {epoch.loss:.4f}  val HR@{config.eval_k} {epoch.val_hr:.4f}  "
            f"NDCG {epoch.val_ndcg:.4f}  {epoch.batches_per_s:.1f} batches/s  {epoch.seconds:.0f} s",
            flush=True,
        )

    return report


def _train_and_print(args: argparse.Namespace, prep, *, fresh: bool = False, graph=None):
    from rec_lib.experiments.runs import run_dir

    config = _train_config(args)
    print(f"training on {config.resolved_device()} into {run_dir(prep, config, args.artefacts_dir)}", flush=True)
    result = steps.train(
        prep, config, graph=graph, artefacts_dir=args.artefacts_dir, resume=not fresh, callbacks=[_print_epoch(config)]
    )
    print(
        f"best epoch {result.best_epoch + 1}: val HR@{config.eval_k} {result.best_val_hr:.4f}"
        + (" (stopped early)" if result.stopped_early else "")
    )
    return result


def _train(args: argparse.Namespace) -> int:
    _train_and_print(args, _run_preprocess(args), fresh=args.fresh)
    return 0


def _print_table(table) -> None:
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))


def _evaluate_and_print(args: argparse.Namespace, run, prep=None, out: Path | None = None) -> None:
    evaluation = steps.evaluate(run, prep=prep, ease_l2=args.ease_l2, device=args.device, out=out)
    _print_table(evaluation.table.drop(columns=["users"]))
    print(f"wrote {evaluation.path}")


def _evaluate(args: argparse.Namespace) -> int:
    _evaluate_and_print(args, steps.find_run(args.dataset, args.artefacts_dir, args.run), out=args.out)
    return 0


def _tune(args: argparse.Namespace) -> int:
    from rec_lib.experiments.tuning import run_search
    from rec_lib.pinsage.graph import build_graph

    prep = _run_preprocess(args)
    table = run_search(prep, build_graph(prep), _train_config(args), seeds=tuple(args.seeds), save_to=args.out)
    _print_table(table)
    return 0


def _run_preprocess(args: argparse.Namespace, force: bool = False):
    config = PreprocessConfig(dataset=args.dataset, short_users=args.short_users, ties=args.ties)
    return steps.preprocess(
        config, data_dir=args.data_dir, artefacts_dir=args.artefacts_dir, download=not args.no_download, force=force
    )


def _print_dataset(prep) -> None:
    from rec_lib.reports.tables import dataset_summary

    print(f"dataset {prep.manifest.get('dataset')} -> {prep.path}")
    print(dataset_summary(prep).to_string())
    for note in prep.stats.notes():
        print(f"note: {note}")


def _preprocess(args: argparse.Namespace) -> int:
    _print_dataset(_run_preprocess(args, force=args.force))
    return 0


def _pipeline(args: argparse.Namespace) -> int:
    """Every step once, each handed what the one before returned: the data is read once."""
    from rec_lib.pinsage.graph import MOVIE, USER, WATCHED, build_graph

    started = time.perf_counter()
    prep = _run_preprocess(args)
    _print_dataset(prep)
    graph = build_graph(prep)
    print(
        f"graph: {graph.graph.num_nodes[USER]} users, {graph.graph.num_nodes[MOVIE]} movies, "
        f"{graph.graph.num_edges(WATCHED)} training edges each way; "
        f"{len(graph.features.vocab.genres)} genres, {len(graph.features.vocab.title_words)} title tokens"
    )
    _train_and_print(args, prep, graph=graph)
    run = steps.find_run(args.dataset, args.artefacts_dir)
    _evaluate_and_print(args, run, prep)
    _print_export(run, steps.export(run, prep=prep, device=args.device))
    _print_load(*steps.load(prep, _embeddings(run), artefacts_dir=args.artefacts_dir))
    liked, table = steps.sample_recommendations(prep, artefacts_dir=args.artefacts_dir)
    print(f"recommendations for liked movies {liked}:")
    print(_recommendation_text(table))
    print(f"pipeline finished in {time.perf_counter() - started:.1f} s")
    return 0


def _embeddings(run):
    from rec_lib.contracts import load_embeddings

    return load_embeddings(run.directory)


def _print_export(run, embeddings) -> None:
    print(
        f"exported {len(embeddings.movie_ids)} movie vectors ({embeddings.dim}-d, finite) "
        f"fingerprint {embeddings.fingerprint} -> {run.directory}"
    )


def _export(args: argparse.Namespace) -> int:
    run = steps.find_run(args.dataset, args.artefacts_dir, args.run)
    _print_export(run, steps.export(run, device=args.device))
    return 0


def _print_load(report, milvus: str, sql: str) -> None:
    print(f"Milvus {milvus}: collection {report.collection} ({report.index_type}, {report.dim}-d)")
    print(f"SQL {sql}: {report.movies} movies")
    _print_consistency(report)


def _print_consistency(report) -> None:
    check = report.consistency
    print(f"consistent: {check.milvus_count} ids in Milvus = {check.sql_count} rows in SQL, none missing either way")


def _load(args: argparse.Namespace) -> int:
    run = steps.find_run(args.dataset, args.artefacts_dir, args.run)
    _print_load(*steps.load(run.load_data(), _embeddings(run), artefacts_dir=args.artefacts_dir))
    return 0


def _add_movies(args: argparse.Namespace) -> int:
    run = steps.find_run(args.dataset, args.artefacts_dir, args.run)
    added = steps.add_movies(run, args.file, args.ratings, artefacts_dir=args.artefacts_dir, device=args.device)
    new = added.new
    if new.already_trained:
        print(f"left as they are: {len(new.already_trained)} movies the model trained on: {new.already_trained[:20]}")
    if added.report is None:
        print("nothing to add")
        return 0
    print(
        f"added {len(new.movie_ids)} movies with {len(new.first_ratings)} first ratings: {new.movie_ids[:20].tolist()}"
    )
    report = added.report
    print(f"Milvus {added.milvus}: collection {report.collection} ({report.index_type}, {report.dim}-d)")
    _print_consistency(report)
    return 0


def _cold_start(args: argparse.Namespace) -> int:
    import pandas as pd

    from rec_lib.experiments.runs import run_dir

    prep = _run_preprocess(args)
    config = _train_config(args)
    done = steps.cold_start(prep, config, share=args.share, artefacts_dir=args.artefacts_dir, warm_table=True)
    split = done.split
    print(
        f"held out {len(split.new_movies)} new movies ({split.warm.manifest['cold_start']['new_movie_interactions']} "
        f"ratings); trained on the rest"
    )
    _print_table(done.rows.drop(columns=["protocol", "split"]))
    _write(
        pd.concat([done.warm, done.rows], ignore_index=True),
        run_dir(split.warm, config, args.artefacts_dir) / "evaluation.json",
        {"dataset": args.dataset, "cold_start": split.warm.manifest["cold_start"], "eval": asdict(config.eval)},
    )
    return 0


def _write(table, out: Path, metadata: dict) -> None:
    from rec_lib.experiments.runs import write_table

    print(f"wrote {write_table(table, out, metadata)}")


def _tuning_file(args: argparse.Namespace, name: str) -> Path:
    from rec_lib.experiments.tuning import tuning_dir

    return args.out or tuning_dir() / f"{args.dataset}-{name}.json"


def _sasrec_config_class():
    from rec_lib.evaluation.config import SASRecConfig

    return SASRecConfig


def _sasrec(args: argparse.Namespace) -> int:
    config = _config_from(args, _sasrec_config_class(), skip=("seed",))
    from rec_lib.experiments.intervals import PER_USER_COLUMNS

    table = steps.sasrec(_run_preprocess(args), config, seeds=args.seeds)
    _print_table(table.drop(columns=["users", *PER_USER_COLUMNS]))
    metadata = {"dataset": args.dataset, "ties": args.ties, "config": asdict(config)}
    _write(table, _tuning_file(args, "sasrec"), metadata)
    return 0


def _liked_set(args: argparse.Namespace) -> int:
    import pandas as pd

    from rec_lib.experiments.likedset import LIKED_SET_FILES, SetRuleChoice, recall_table

    config = _train_config(args)
    choice = SetRuleChoice(args.set_rule != "fixed", args.prior_ticks, args.set_rule == "transformed")
    seeds = args.seeds or [config.seed]
    rows, intervals, per_user = steps.liked_set(
        _run_preprocess(args), config, share=args.share, split_seed=args.split_seed, which=args.split, seeds=seeds,
        folds=args.folds, choice=choice, ease_l2=args.ease_l2, artefacts_dir=args.artefacts_dir, draws=args.draws,
    )  # fmt: skip
    _print_table(recall_table(rows).reset_index())
    _print_table(intervals[intervals["metric"] == "recall"])
    metadata = {"dataset": args.dataset, "ties": args.ties, "share": args.share, "split_seed": args.split_seed}
    metadata |= {"folds": args.folds, "draws": args.draws}
    metadata |= {"set_rule": args.set_rule, "prior_ticks": args.prior_ticks, "ease_l2": args.ease_l2}
    if args.split == "val":
        from rec_lib.experiments.likedset import chosen_ease_l2, chosen_prior_ticks, chosen_set_rule_is_learned

        metadata["chosen_prior_ticks"] = chosen_prior_ticks(per_user)
        metadata["chosen_learned_rule"] = chosen_set_rule_is_learned(per_user, metadata["chosen_prior_ticks"])
        metadata["chosen_ease_l2"] = chosen_ease_l2(per_user)
        print(
            f"set rule chosen on validation: {'learned' if metadata['chosen_learned_rule'] else 'fixed'}; the "
            f"fixed rule's prior_ticks {metadata['chosen_prior_ticks']:g} (the least prior within the users' noise "
            f"of the best); EASE's λ: {metadata['chosen_ease_l2']:g}"
        )
    table = pd.concat([rows, intervals.assign(kind="interval")], ignore_index=True)
    name = "liked-set" + LIKED_SET_FILES["folds" if args.folds != [0] else args.split]
    _write(table, _tuning_file(args, name), {**metadata, "config": asdict(config)})
    return 0


def _tune_baselines(args: argparse.Namespace) -> int:
    from rec_lib.experiments.intervals import PER_USER_COLUMNS
    from rec_lib.experiments.tuning import tune_baselines

    table = tune_baselines(_run_preprocess(args), EvalConfig())
    _print_table(table.drop(columns=list(PER_USER_COLUMNS)))
    metadata = {"dataset": args.dataset, "ties": args.ties, "eval": asdict(EvalConfig())}
    _write(table, _tuning_file(args, "baseline-grid"), metadata)
    return 0


def _intervals(args: argparse.Namespace) -> int:
    from rec_lib.experiments.intervals import timeline_intervals, timeline_models
    from rec_lib.experiments.tuning import tuning_dir

    table = timeline_intervals(timeline_models(tuning_dir(), args.dataset), resamples=args.resamples)
    _print_table(table)
    _write(table, _tuning_file(args, "intervals"), {"dataset": args.dataset, "resamples": args.resamples})
    return 0


def _recommend(args: argparse.Namespace) -> int:
    from rec_lib.serving.recommend import Recommender
    from rec_lib.serving.stores import StoreSettings, open_stores

    stores = open_stores(StoreSettings.from_env(args.artefacts_dir))
    years = tuple(args.years) if args.years else None
    table = Recommender(stores).recommend(args.liked, args.k, mode=args.mode, genres=args.genres, years=years)
    print(_recommendation_text(table))
    return 0


def _recommendation_text(table) -> str:
    shown = table[["title", "year", "genres", "score", "because"]]
    return shown.to_string(index=False, float_format=lambda v: f"{v:.3f}", max_colwidth=48)


def _milvus_lite(args: argparse.Namespace) -> int:
    import shutil

    from rec_lib.config import resolve_artefacts_dir
    from rec_lib.serving.stores import LITE_DATA_DIR_NAME, MILVUS_URI_ENV

    data_dir = args.data_dir or str(resolve_artefacts_dir(args.artefacts_dir) / LITE_DATA_DIR_NAME)
    executable = shutil.which("milvus-lite") or str(Path(sys.executable).parent / "milvus-lite")
    print(f"serving {data_dir}; in every other process: export {MILVUS_URI_ENV}=http://127.0.0.1:{args.port}")
    sys.stdout.flush()
    command = [executable, "server", "--data-dir", data_dir, "--host", "127.0.0.1", "--port", str(args.port)]
    os.execv(executable, command)
    return 0


def _report(args: argparse.Namespace) -> int:
    import json

    from rec_lib.config import PROJECT_ROOT, resolve_reports_dir
    from rec_lib.reports.runner import (
        Baseline,
        baseline_from,
        baseline_path,
        compare,
        new_run_id,
        run_notebooks,
        write_summary,
    )

    target = args.baseline or baseline_path(args.dataset, args.profile)
    if args.accept:
        metrics = json.loads((args.accept / "metrics.json").read_text())
        target = args.baseline or baseline_path(metrics["dataset"], metrics["profile"])
        previous = Baseline.read(target) if target.is_file() else None
        run = args.accept.resolve()
        source = run.relative_to(PROJECT_ROOT) if run.is_relative_to(PROJECT_ROOT) else run
        baseline = baseline_from(metrics, previous, source=str(source))
        if previous:
            print(compare(metrics, previous).markdown())
        baseline.write(target)
        print(f"wrote {target}: review it with git diff and commit it")
        return 0
    out_dir = args.out_dir or resolve_reports_dir() / args.dataset / new_run_id()
    metrics = run_notebooks(
        args.dataset,
        args.profile,
        out_dir,
        data_dir=args.data_dir,
        artefacts_dir=args.artefacts_dir,
        extra={"short_users": args.short_users, "ties": args.ties},
        after_each=_warm_result_before_cold_start,
    )
    comparison = compare(metrics, Baseline.read(target)) if target.is_file() else None
    summary = write_summary(out_dir, metrics, comparison, target)
    print(f"report: {out_dir}\nsummary: {summary}")
    if comparison is None:
        print(f"no baseline at {target}; accept this run with: python -m rec_lib report --accept {out_dir}")
        return 0
    if not comparison.passed:
        print("REGRESSION against the baseline:", file=sys.stderr)
        for line in comparison.failures():
            print(f"  {line}", file=sys.stderr)
        return 1
    print("all checks passed against the baseline")
    return 0


COLD_START_PER_TRAIN = (0.8, 1.3)
"""Notebook 06 trains one more PinSage model and scores four slices: it has taken between these multiples of
notebook 02's time (it stops early after a different number of epochs; reports/quality.md has the runs)."""


def _warm_result_before_cold_start(name: str, recorded: dict[str, dict], seconds: dict[str, float]) -> None:
    """Once notebook 05 has run: the warm result and the sample recommendations, then about how long notebook 06,
    which has been training beside notebooks 02-05, still needs (if it has not ended first)."""
    if name != "05_recommend":
        return
    hr = recorded.get("02_train", {}).get("pinsage_test_hr_B")
    if hr is not None:
        print(f"PinSage test HR@10 (a viewer's recent history): {hr:.3f}")
    liked = ", ".join(m["title"] for m in recorded[name].get("liked", []))
    print(f"sample recommendations for someone who likes {liked}:")
    for rank, row in enumerate(recorded[name].get("recommendations", [])[:10], start=1):
        print(f"  {rank:2d}. {row['title']}  (because you liked {row['because']})")
    if "06_cold_start" in recorded:
        return
    beside = sum(seconds.get(step, 0.0) for step in ("02_train", "03_export_embeddings", "04_load", name))
    least, most = (max(seconds.get("02_train", 0.0) * share - beside, 60.0) / 60 for share in COLD_START_PER_TRAIN)
    span = f"{least:.0f}" if round(least) == round(most) else f"{least:.0f}-{most:.0f}"
    print(
        "notebook 06 (cold start: movies the model never trained on) has been training one more model beside "
        f"notebooks 02-05: about {span} more minutes here, judging by notebook 02",
        flush=True,
    )


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def _serve(args: argparse.Namespace) -> int:
    """Check the stores hold a load, then serve; every problem is one clear line, before "serving on"."""
    import uvicorn

    from rec_lib.config import ARTEFACTS_DIR_ENV
    from rec_lib.errors import ConfigError
    from rec_lib.serving.stores import StoreSettings, close_stores, open_loaded_stores

    if args.workers < 1:
        raise ConfigError(f"--workers {args.workers}: expected at least 1")
    settings = StoreSettings.from_env(args.artefacts_dir)
    stores = open_loaded_stores(settings)
    if args.workers > 1 and stores.vectors.is_lite:
        raise ConfigError(
            f"--workers {args.workers} needs a Milvus server: Milvus Lite allows one process per data dir. Set "
            "MILVUS_URI to a Milvus server, or share the data dir (python -m rec_lib milvus-lite) and set MILVUS_URI "
            "to the address it prints"
        )
    if args.host not in LOOPBACK_HOSTS:
        print(
            f"warning: listening on {args.host}: the API has no authentication, so anyone who can reach this port "
            "can use it. Keep the default 127.0.0.1, or put an authenticating proxy in front.",
            file=sys.stderr,
        )
    print(
        f"serving {stores.vectors.where} and {stores.metadata.where} on http://{args.host}:{args.port}/ "
        f"with {args.workers} worker(s) (API docs at /docs)",
        flush=True,
    )
    if args.workers == 1:
        from rec_lib.serving.api import create_app
        from rec_lib.serving.guard import server_config

        uvicorn.Server(
            server_config(create_app(settings), host=args.host, port=args.port, access_log=args.access_log)
        ).run()
        return 0
    from rec_lib.serving.workers import run_workers

    close_stores(settings)
    if args.artefacts_dir is not None:
        os.environ[ARTEFACTS_DIR_ENV] = str(Path(args.artefacts_dir).resolve())
    return run_workers(args.host, args.port, args.workers, access_log=args.access_log)


def _synthesize(args: argparse.Namespace) -> int:
    from rec_lib.data.synthetic import SyntheticConfig, generate_ml1m

    config = SyntheticConfig(n_users=args.users, n_movies=args.movies, n_ratings=args.ratings, seed=args.seed)
    folder = generate_ml1m(args.out, config)
    print(f"wrote {config.n_ratings} ratings of {config.n_users} users on {config.n_movies} movies to {folder}")
    return 0
