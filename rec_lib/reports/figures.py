"""Figures for the notebooks and reports. Each function returns a matplotlib Figure."""

from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np

from rec_lib.data.preprocess import Preprocessed
from rec_lib.serving.recommend import POPULAR


def dataset_overview(prep: Preprocessed) -> plt.Figure:
    """Rating distribution, long-tail popularity and interactions per user, side by side."""
    ratings = prep.interactions
    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(14, 3.8))

    values, counts = np.unique(ratings["rating"].to_numpy(), return_counts=True)
    left.bar(values, counts, width=0.4 if len(values) > 5 else 0.8, color="#4c72b0")
    left.set(title="Rating distribution", xlabel="rating", ylabel="ratings")

    popularity = np.sort(np.bincount(ratings["movie_idx"].to_numpy(), minlength=prep.n_movies))[::-1]
    share = np.cumsum(popularity) / popularity.sum()
    head = int(np.searchsorted(share, 0.5)) + 1
    middle.loglog(np.arange(1, len(popularity) + 1), popularity, color="#dd8452")
    middle.axvline(head, color="grey", linestyle="--", linewidth=1)
    middle.set(
        title=f"Long tail: top {head} of {len(popularity)} movies get half the ratings",
        xlabel="movie rank",
        ylabel="ratings",
    )
    middle.title.set_fontsize(10)

    per_user = np.bincount(ratings["user_idx"].to_numpy(), minlength=prep.n_users)
    bins = np.logspace(np.log10(max(per_user.min(), 1)), np.log10(per_user.max() + 1), 30)
    right.hist(per_user, bins=bins, color="#55a868")
    right.set_xscale("log")
    right.set(title=f"Interactions per user (median {int(np.median(per_user))})", xlabel="ratings", ylabel="users")
    fig.tight_layout()
    return fig


def training_curves(history) -> plt.Figure:
    """Training loss and validation HR@K / NDCG@K per epoch (``history``: a list of EpochResult)."""
    epochs = [h.epoch + 1 for h in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.4))
    left.plot(epochs, [h.loss for h in history], marker="o", color="#4c72b0")
    left.set(title="Training loss", xlabel="epoch", ylabel="loss")
    right.plot(epochs, [h.val_hr for h in history], marker="o", label="HR", color="#dd8452")
    right.plot(epochs, [h.val_ndcg for h in history], marker="s", label="NDCG", color="#55a868")
    right.set(title="Validation, protocol B", xlabel="epoch", ylabel="metric @ K")
    right.legend()
    for axis in (left, right):
        axis.xaxis.get_major_locator().set_params(integer=True)
    fig.tight_layout()
    return fig


def evaluation_bars(table) -> plt.Figure:
    """Test HR@K and NDCG@K per model, protocols side by side (``table`` from evaluate_all)."""
    test = table[table["split"] == "test"]
    models = list(dict.fromkeys(test["model"]))
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.4))
    width = 0.38
    for axis, metric in zip(axes, ("hr", "ndcg"), strict=True):
        for offset, protocol, color in ((-width / 2, "A", "#8172b3"), (width / 2, "B", "#4c72b0")):
            values = [
                float(test[(test["model"] == m) & (test["protocol"] == protocol)][metric].iloc[0]) for m in models
            ]
            axis.bar(np.arange(len(models)) + offset, values, width, label=f"protocol {protocol}", color=color)
        axis.set_xticks(np.arange(len(models)), models)
        axis.set(title=f"test {metric.upper()}@{int(test['k'].iloc[0])}", ylabel=metric)
        axis.legend()
    fig.tight_layout()
    return fig


def embedding_projection(points: np.ndarray, genres: list[list[str]], top: int = 8) -> plt.Figure:
    """A 2-D projection of movie vectors, coloured by each movie's first genre (the ``top`` most common)."""
    first = np.array([g[0] if g else "(none)" for g in genres])
    names, counts = np.unique(first, return_counts=True)
    shown = list(names[np.argsort(-counts)][:top])
    fig, axis = plt.subplots(figsize=(7.5, 5.5))
    other = ~np.isin(first, shown)
    axis.scatter(points[other, 0], points[other, 1], s=4, color="#cccccc", label="other", alpha=0.6)
    colours = plt.get_cmap("tab10")
    for i, name in enumerate(shown):
        mask = first == name
        axis.scatter(points[mask, 0], points[mask, 1], s=5, color=colours(i), label=name, alpha=0.7)
    axis.set(title="Movie vectors, first two principal components", xlabel="PC 1", ylabel="PC 2")
    axis.legend(markerscale=3, fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def query_weights(rule, decay: float) -> plt.Figure:
    """How much each of the latest movies counts in a query: the model's rule against ``decay ** age``."""
    learned = np.asarray(rule.position_weights, dtype=float)
    learned = learned / learned.sum()
    fixed = decay ** np.arange(len(learned))
    fixed = fixed / fixed.sum()
    ages = np.arange(len(learned))
    fig, axis = plt.subplots(figsize=(7.5, 3.2))
    axis.bar(ages - 0.2, learned, 0.4, label="PinSage's query rule", color="#4c72b0")
    axis.bar(ages + 0.2, fixed, 0.4, label=f"fixed rule ({decay}^age)", color="#cccccc")
    axis.set(title="Weight of each history movie in the query", xlabel="age (0 = the latest movie)", ylabel="weight")
    axis.set_xticks(ages[:: max(1, len(ages) // 10)])
    axis.legend()
    fig.tight_layout()
    return fig


def recommendation_scores(result) -> plt.Figure:
    """Recommended movies as horizontal bars of their score, coloured by the liked movie they came from.

    The axis starts at 0 (or below, for negative scores), so bar lengths compare honestly. The legend sits below
    the bars with each liked title whole (wrapped, never cut). With nothing liked the bars are the most popular
    movies and the axis says it counts ratings.
    """
    popular = bool(len(result)) and (result["because"] == POPULAR).all()
    reasons = list(dict.fromkeys(result["because"].fillna("")))
    colours = plt.get_cmap("tab10")
    fig, axis = plt.subplots(figsize=(8, 0.34 * len(result) + 2.2))
    titles = [textwrap.shorten(t, 60, placeholder="…") for t in result["title"]]
    scores = result["score"].to_numpy(dtype=float)
    axis.barh(titles[::-1], scores[::-1],
              color=[colours(reasons.index(r) % 10) for r in result["because"].fillna("")][::-1])  # fmt: skip
    if len(scores):
        axis.set_xlim(min(0.0, float(scores.min()) * 1.05), max(0.0, float(scores.max())) * 1.05 or 1.0)
    axis.tick_params(labelsize=9)
    if popular:
        axis.set(xlabel="number of ratings (nothing liked: the most popular movies)", title="Most popular movies")
    else:
        handles = [plt.Rectangle((0, 0), 1, 1, color=colours(i % 10)) for i in range(len(reasons))]
        labels = [textwrap.fill(f"because you liked {r}", 45) for r in reasons]
        axis.legend(handles, labels, fontsize=9, loc="upper center", ncol=2, frameon=False,
                    bbox_to_anchor=(0.5, -0.12 - 0.6 / max(len(result), 1)))  # fmt: skip
        axis.set(xlabel="score (higher: more like the liked movies)", title="Recommendations")
    fig.tight_layout()
    plt.close(fig)
    return fig


def cold_start_curve(summary) -> plt.Figure:
    """HR@K of each model against the new movies' revealed interactions (a band of ±1 sd over seeds)."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for model, rows in summary.groupby("model", sort=False):
        rows = rows.sort_values("revealed")
        x = rows["revealed"].to_numpy()
        mean, sd = rows["hr_mean"].to_numpy(), rows["hr_sd"].to_numpy()
        (line,) = ax.plot(x, mean, marker="o", linewidth=2.5 if model == "pinsage" else 1.2, label=model)
        if (sd > 0).any():
            ax.fill_between(x, mean - sd, mean + sd, alpha=0.2, color=line.get_color())
    ax.set_xscale("symlog", linthresh=1)
    ticks = sorted(summary["revealed"].unique())
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.set(xlabel="revealed interactions per new movie", ylabel="HR@10 among the new movies", ylim=(0, None))
    ax.set_title("Cold start: ranking new movies the model never trained on")
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    return fig
