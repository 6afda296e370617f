"""The pipeline's steps as library calls, each returning a typed result: what the CLI, the notebooks and
``pipeline`` all call, so that a step is wired once.

Every step takes what an earlier step returned (the preprocessed data, a run) instead of reading it again, so
``pipeline`` reads the data once. Each imports its stage when called: the CLI's ``serve`` never loads torch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rec_lib.data.preprocess import PreprocessConfig, Preprocessed, run_preprocess
from rec_lib.errors import ConfigError
from rec_lib.evaluation.config import EASE_L2, TICK_DRAWS, EvalConfig

if TYPE_CHECKING:
    import pandas as pd

    from rec_lib.contracts import Embeddings
    from rec_lib.evaluation.coldstart import ColdStartSplit
    from rec_lib.evaluation.config import SASRecConfig
    from rec_lib.experiments.likedset import SetRuleChoice
    from rec_lib.experiments.runs import Run
    from rec_lib.pinsage.config import TrainConfig
    from rec_lib.pinsage.graph import UserMovieGraph
    from rec_lib.pinsage.new_movies import NewMovies
    from rec_lib.pinsage.train import EpochResult, TrainResult
    from rec_lib.serving.stores import LoadReport


def preprocess(
    config: PreprocessConfig,
    *,
    data_dir: str | Path | None = None,
    artefacts_dir: str | Path | None = None,
    download: bool = True,
    force: bool = False,
) -> Preprocessed:
    """Load, split and cache a dataset (reused when its files and settings match the cache)."""
    return run_preprocess(config, data_dir=data_dir, artefacts_dir=artefacts_dir, download=download, force=force)


def train(
    prep: Preprocessed,
    config: TrainConfig,
    *,
    graph: UserMovieGraph | None = None,
    artefacts_dir: str | Path | None = None,
    resume: bool = True,
    callbacks: Sequence[Callable[[EpochResult], None]] = (),
    latest: bool = True,
) -> TrainResult:
    """Train PinSage on ``prep`` (on ``graph``, default its training graph) into its run directory, with the
    training curves drawn beside the checkpoints; ``latest`` makes it the run later steps use by default."""
    from rec_lib.experiments.runs import CURVES_NAME, run_dir, train_run
    from rec_lib.pinsage.graph import build_graph
    from rec_lib.reports.figures import training_curves

    graph = graph if graph is not None else build_graph(prep)
    result = train_run(
        prep, graph, config, artefacts_dir=artefacts_dir, resume=resume, callbacks=list(callbacks), latest=latest
    )
    figure = training_curves(result.history)
    figure.savefig(run_dir(prep, config, artefacts_dir) / CURVES_NAME, dpi=110, bbox_inches="tight")
    return result


def find_run(dataset: str, artefacts_dir: str | Path | None = None, run: str | None = None) -> Run:
    """The run named ``run`` (a directory name or path), else the latest one trained on ``dataset``."""
    from rec_lib.experiments.runs import find_run as find

    return find(dataset, artefacts_dir, run)


@dataclass(frozen=True)
class Evaluation:
    """PinSage and the baselines under both protocols on validation and test, and where the table was written."""

    table: pd.DataFrame
    path: Path


def evaluate(
    run: Run,
    *,
    prep: Preprocessed | None = None,
    ease_l2: float = EASE_L2,
    device: str = "auto",
    out: Path | None = None,
) -> Evaluation:
    """Score ``run`` beside the baselines (fitted on ``prep``, default the run's own data) and write the table
    (default ``<run dir>/evaluation.json``)."""
    from rec_lib.experiments.runs import baseline_scorers, evaluation_table, load_scorer, write_table
    from rec_lib.pinsage.config import resolve_device

    prep = prep if prep is not None else run.load_data()
    where = resolve_device(device)
    scorers = [load_scorer(run.directory, device=where), *baseline_scorers(prep, ease_l2, where)]
    table = evaluation_table(prep, scorers, run.config.eval)
    metadata = {"dataset": run.config.dataset, "run": run.directory.name, "eval": asdict(run.config.eval)}
    path = write_table(table, out or run.directory / "evaluation.json", {**metadata, "ease_l2": ease_l2})
    return Evaluation(table, path)


def export(run: Run, *, prep: Preprocessed | None = None, device: str = "auto") -> Embeddings:
    """Every movie's vector from ``run``'s best model on the graph of every interaction, checked and saved beside
    the run with its rules: the model's for histories, and for sets the one the dataset's liked-set validation
    chose (the fixed product rule where none was run; the learned rule, with its transform where that was chosen,
    fitted to these vectors and every user's liked movies where it was chosen)."""
    from rec_lib.experiments.likedset import chosen_set_rule
    from rec_lib.pinsage.config import resolve_device
    from rec_lib.pinsage.export import export_embeddings
    from rec_lib.pinsage.graph import FULL_GRAPH, build_graph

    prep = prep if prep is not None else run.load_data()
    graph = build_graph(prep, FULL_GRAPH)
    choice = chosen_set_rule(run.config.dataset)
    return export_embeddings(
        prep, graph, run.directory, device=resolve_device(device), set_rule=choice.fixed_rule,
        learn_set_rule=choice.fit_config(run.config.seed) if choice.learned else None,
    )  # fmt: skip


def load(
    prep: Preprocessed, embeddings: Embeddings, *, artefacts_dir: str | Path | None = None
) -> tuple[LoadReport, str, str]:
    """Vectors into Milvus and movie details into SQL (the stores of the environment, else the embedded ones);
    the report and the two stores' public locations."""
    from rec_lib.serving.metadata_store import movie_rows
    from rec_lib.serving.stores import StoreSettings, load_stores, open_stores

    stores = open_stores(StoreSettings.from_env(artefacts_dir))
    return load_stores(stores, embeddings, movie_rows(prep)), stores.vectors.where, stores.metadata.where


@dataclass(frozen=True)
class AddedMovies:
    """What ``add-movies`` did: the vectors it computed, and the stores' report (None when nothing was added)."""

    new: NewMovies
    report: LoadReport | None
    milvus: str


def add_movies(
    run: Run,
    movies_file: Path,
    ratings_file: Path | None = None,
    *,
    artefacts_dir: str | Path | None = None,
    device: str = "auto",
) -> AddedMovies:
    """Add the movies of ``movies_file`` (movies.csv format, with their first ratings in ``ratings_file``) to the
    loaded stores, with vectors from ``run``'s model; movies it trained on are left as they are."""
    import pandas as pd

    from rec_lib.data.loaders import read_movies_csv, read_ratings_csv
    from rec_lib.pinsage.config import resolve_device
    from rec_lib.pinsage.new_movies import check_new_movies, new_movie_vectors
    from rec_lib.serving.metadata_store import catalogue_rows
    from rec_lib.serving.stores import StoreSettings, add_to_stores, open_loaded_stores

    movies = read_movies_csv(movies_file)
    ratings = read_ratings_csv(ratings_file) if ratings_file is not None else None
    stores = open_loaded_stores(StoreSettings.from_env(artefacts_dir))
    prep = run.load_data()
    trained = prep.movies
    in_stores = stores.metadata.details(movies["movie_id"].tolist())
    titles = pd.concat(
        [
            pd.Series({movie_id: details.title for movie_id, details in in_stores.items()}, dtype=object),
            pd.Series(trained["title"].to_numpy(), index=trained["movie_id"].to_numpy()),
        ]
    )
    check_new_movies(movies, titles[~titles.index.duplicated(keep="last")], movies_file, ratings, ratings_file)
    new = new_movie_vectors(run.directory, prep, movies, ratings, device=resolve_device(device))
    if len(new.movie_ids) == 0:
        return AddedMovies(new, None, stores.vectors.where)
    rows = catalogue_rows(new.movies, new.first_ratings)
    report = add_to_stores(stores, new.movie_ids, new.stored, rows, new.set_vectors)
    return AddedMovies(new, report, stores.vectors.where)


@dataclass(frozen=True)
class ColdStart:
    """A cold-start experiment: the split, the model trained without the new movies, and its rows."""

    split: ColdStartSplit
    result: TrainResult
    rows: pd.DataFrame
    """One row per (model, revealed k) on split ``cold-test``."""
    warm: pd.DataFrame | None
    """The warm leave-one-out table of the same model and the baselines, when asked for."""


def cold_start(
    prep: Preprocessed,
    config: TrainConfig,
    *,
    share: float | None = None,
    revealed: Sequence[int] | None = None,
    artefacts_dir: str | Path | None = None,
    warm_table: bool = False,
) -> ColdStart:
    """Hold out the newest movies, train on the rest (not made the latest run), and rank the new movies with
    each ``revealed`` count of first ratings beside the baselines."""
    from rec_lib.evaluation.coldstart import COLD_SHARE, REVEALED, cold_start_split
    from rec_lib.experiments.coldstart import cold_start_rows
    from rec_lib.experiments.runs import baseline_scorers, evaluation_table

    revealed = tuple(REVEALED if revealed is None else revealed)
    split = cold_start_split(prep, COLD_SHARE if share is None else share, revealed)
    result = train(split.warm, config, artefacts_dir=artefacts_dir, latest=False)
    rows = cold_start_rows(split, result.model, config, revealed=revealed)
    warm = None
    if warm_table:
        warm = evaluation_table(split.warm, [result.scorer(), *baseline_scorers(split.warm)], config.eval)
    return ColdStart(split, result, rows, warm)


def sample_recommendations(
    prep: Preprocessed, *, artefacts_dir: str | Path | None = None, k: int = 10
) -> tuple[list[int], pd.DataFrame]:
    """Recommendations from the loaded stores for three well-known movies of the dataset: the ids and the table."""
    from rec_lib.data.datasets import WELL_KNOWN_MOVIES
    from rec_lib.serving.recommend import Recommender
    from rec_lib.serving.stores import StoreSettings, open_stores

    present = set(prep.movies["movie_id"])
    liked = [i for i in WELL_KNOWN_MOVIES if i in present][:3] or prep.movies["movie_id"].head(3).tolist()
    return liked, Recommender(open_stores(StoreSettings.from_env(artefacts_dir))).recommend(liked, k)


def sasrec(prep: Preprocessed, config: SASRecConfig, seeds: Sequence[int] = (0,)) -> pd.DataFrame:
    """Train SASRec on ``prep``'s training split once per seed (early-stopped on validation) and score it like every
    other model: both protocols, validation and test, every user. One row per (seed, protocol, split); each seed's
    test row under protocol B also holds its per-user hits and gains (for paired intervals)."""
    from dataclasses import replace

    import pandas as pd

    from rec_lib.evaluation.protocol import build_queries, evaluate, per_user_ranks
    from rec_lib.evaluation.sasrec import SASRecScorer, train_sasrec
    from rec_lib.experiments.intervals import per_user_columns

    queries = build_queries(prep, config.max_len)
    eval_config = EvalConfig(k=config.eval_k, history_len=config.max_len)
    rows = []
    for seed in seeds:
        result = train_sasrec(prep, replace(config, seed=seed), queries=queries)
        scorer = SASRecScorer(result.model, config.max_len)
        for protocol in ("A", "B"):
            for split, metrics in evaluate(scorer, queries, protocol, prep.n_movies, eval_config).items():
                rows.append(
                    {"model": "sasrec", "seed": seed, "protocol": protocol, "split": split, "k": config.eval_k,
                     **asdict(metrics), "best_epoch": result.best_epoch + 1, "seconds": result.seconds}
                )  # fmt: skip
        ranked = per_user_ranks(scorer, queries, "B", prep.n_movies, eval_config, "test")
        test_b = next(row for row in rows if row["seed"] == seed and row["protocol"] == "B" and row["split"] == "test")
        test_b |= per_user_columns(ranked)
    return pd.DataFrame(rows)


def liked_set(
    prep: Preprocessed,
    config: TrainConfig,
    *,
    share: float = 0.2,
    split_seed: int = 0,
    which: str = "test",
    seeds: Sequence[int] | None = None,
    folds: Sequence[int] = (0,),
    choice: SetRuleChoice | None = None,
    ease_l2: float = EASE_L2,
    artefacts_dir: str | Path | None = None,
    draws: int = TICK_DRAWS,
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """The liked-set table: hold a seeded ``share`` of the users out (each of ``folds`` in turn: fold 0 the tables'
    split, folds 1 and up further groups of test users), train PinSage on the rest once per seed (default
    ``config.seed``), score the held-out users' shuffled ticks (drawn ``draws`` times) with PinSage's set rule of
    ``choice`` (default the fixed product rule) and beside it the baselines once per fold, EASE's ``ease_l2``; the
    rows (PinSage's with their seed, every row with its fold; over several folds also one row per entry over every
    fold's users, without a ``kind``), the paired intervals of PinSage's lead, and each entry's per-user scores,
    PinSage's averaged over the seeds, the folds' users one after another."""
    from dataclasses import replace

    import pandas as pd

    from rec_lib.evaluation.likedset import liked_set_split
    from rec_lib.experiments.likedset import (
        PRODUCT_RULE,
        fold_union,
        lead_intervals,
        liked_set_baselines,
        liked_set_experiment,
        seed_means,
        union_rows,
    )

    if which == "val" and any(folds):
        raise ConfigError("liked-set folds beyond 0 hold out test users only: settings are chosen on fold 0's val")
    tables, per_fold = [], []
    for fold in folds:
        split = liked_set_split(prep, share, split_seed, fold)
        per_seed = []
        for seed in seeds or [config.seed]:
            rows, per_user = liked_set_experiment(
                split, replace(config, seed=seed), which=which, artefacts_dir=artefacts_dir, choice=choice, draws=draws
            )
            tables.append(rows.assign(seed=seed, fold=fold))
            per_seed.append(per_user)
        baseline_rows, baseline_users = liked_set_baselines(
            split, which=which, ease_l2=ease_l2, config=config.eval, draws=draws
        )
        tables.append(baseline_rows.assign(fold=fold))
        per_fold.append(seed_means(per_seed) | baseline_users)
    rows = pd.concat(tables, ignore_index=True)
    per_user = fold_union(per_fold)
    if len(folds) > 1:
        rows = pd.concat([union_rows(per_user, rows), rows.assign(kind="fold")], ignore_index=True)
    return rows, lead_intervals(per_user, PRODUCT_RULE), per_user
