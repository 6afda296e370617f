"""Tables that describe a preprocessed dataset, for the CLI, notebooks and reports."""

from __future__ import annotations

import numpy as np
import pandas as pd

from rec_lib.data.preprocess import TIE_ORDER, Preprocessed


def dataset_summary(prep: Preprocessed) -> pd.DataFrame:
    """One row per statistic: sizes, density, split sizes and what was set aside."""
    s = prep.stats
    per_user = np.bincount(prep.interactions["user_idx"].to_numpy(), minlength=prep.n_users)
    rows = [
        ("users", s.users),
        ("movies rated", s.movies_rated),
        ("movies in catalogue", s.movies_in_catalogue),
        ("ratings", s.ratings),
        ("density", f"{s.ratings / (s.users * s.movies_rated):.4%}"),
        ("ratings per user (median)", int(np.median(per_user))),
        ("train / val / test", f"{s.train} / {s.val} / {s.test}"),
        ("users evaluated", s.evaluated_users),
        ("users with < 3 ratings", f"{s.short_users} ({s.short_users_policy})"),
        ("movies without ratings (not in graph)", s.movies_unrated),
        (f"ratings tied on time (ordered by {TIE_ORDER[s.tie_rule]})", s.timestamp_ties),
    ]
    return pd.DataFrame(rows, columns=["statistic", "value"]).set_index("statistic")
