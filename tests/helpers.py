"""Small graphs for sampler, model and training tests."""

from __future__ import annotations

from pathlib import Path

from rec_lib.graph import UserMovieGraph, build_graph
from rec_lib.loaders import load_folder
from rec_lib.preprocess import Preprocessed, preprocess
from rec_lib.synthetic import SyntheticConfig, generate_ml1m

PLANTED = SyntheticConfig(n_users=400, n_movies=150, n_ratings=16_000, taste_concentration=0.1, seed=11)


def synthetic(tmp_path: Path, config: SyntheticConfig = PLANTED) -> tuple[Preprocessed, UserMovieGraph]:
    prep = preprocess(load_folder(generate_ml1m(tmp_path / "synthetic", config)))
    return prep, build_graph(prep)
