"""PinSage's checkpoints: what ``last.pt`` and ``best.pt`` hold, how a run resumes, and how a model is read back.

``last.pt`` holds everything to resume (model, optimiser, generator, history, the best state so far);
``best.pt`` the best epoch's model. Both carry the config and the feature vocabulary, so a model is only
ever read back onto a graph encoded the way it was trained.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from rec_lib.errors import ConfigError, RecLibError
from rec_lib.files import write_atomically
from rec_lib.pinsage.config import ADDED_SETTINGS, TrainConfig
from rec_lib.pinsage.graph import FeatureVocab, UserMovieGraph
from rec_lib.pinsage.model import PinSageModel, build_model

if TYPE_CHECKING:
    from rec_lib.pinsage.train import TrainResult

CHECKPOINT_LAST = "last.pt"
CHECKPOINT_BEST = "best.pt"


def save_checkpoints(
    directory: Path,
    config: TrainConfig,
    model: PinSageModel,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    result: TrainResult,
    best_state: dict | None,
    epoch: int,
) -> None:
    """Write ``last.pt`` (everything to resume) and, when ``epoch`` is the best so far, ``best.pt``."""
    header = {"config": asdict(config), "vocab": model.projector.vocab.to_dict(), "epoch": epoch}
    payload = {
        **header,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "generator": generator.get_state(),
        "history": [asdict(h) for h in result.history],
        "best_epoch": result.best_epoch,
        "best_val_hr": result.best_val_hr,
        "best_model": best_state,
    }
    write_atomically(directory / CHECKPOINT_LAST, lambda handle: torch.save(payload, handle))
    if result.best_epoch == epoch and best_state is not None:
        best = {**header, "model": best_state, "val_hr": result.best_val_hr}
        write_atomically(directory / CHECKPOINT_BEST, lambda handle: torch.save(best, handle))


def resume_from(
    directory: Path,
    config: TrainConfig,
    model: PinSageModel,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    result: TrainResult,
) -> tuple[int, dict | None]:
    """Restore model, optimiser, generator and history from ``last.pt``; the next epoch and the best state."""
    payload = torch.load(directory / CHECKPOINT_LAST, map_location="cpu", weights_only=False)
    saved = TrainConfig.from_dict(payload["config"])
    if config_identity(saved) != config_identity(config):
        raise ConfigError(
            f"{directory / CHECKPOINT_LAST} was written with different settings; "
            "use another checkpoint dir or resume=False"
        )
    if payload.get("vocab") != model.projector.vocab.to_dict():
        raise ConfigError(
            f"{directory / CHECKPOINT_LAST} was trained with another feature vocabulary than this graph's "
            "(a different rec_lib or data); use another checkpoint dir or resume=False"
        )
    model.load_state_dict(payload["model"])
    optimizer.load_state_dict(payload["optimizer"])
    generator.set_state(payload["generator"])
    from rec_lib.pinsage.train import EpochResult

    result.history = [EpochResult(**h) for h in payload["history"]]
    result.best_epoch, result.best_val_hr = payload["best_epoch"], payload["best_val_hr"]
    return payload["epoch"] + 1, payload["best_model"]


def config_identity(config: TrainConfig) -> dict:
    """The settings that must match to resume: all but the epoch budget and the device, and those added since runs
    were first saved while they keep the value every earlier run had (so those runs keep their directories)."""
    values = asdict(config)
    for name in ("num_epochs", "patience", "device"):
        values.pop(name)
    for name, earlier in ADDED_SETTINGS.items():
        if values[name] == earlier:
            values.pop(name)
    return values


def load_checkpoint(path: Path, graph: UserMovieGraph) -> tuple[TrainConfig, PinSageModel]:
    """A trained model and its config from ``best.pt`` or ``last.pt``, for the movies of ``graph``.

    ``graph`` may hold more movies than the model was trained on (appended after them): those read the
    shared unseen id. Its features must be encoded under the checkpoint's vocabulary
    (:func:`checkpoint_vocab`; ``build_graph`` of the run's own data does that by itself).
    """
    payload = torch.load(path, map_location="cpu", weights_only=False)
    if "vocab" not in payload:
        raise RecLibError(f"{path} was written by an older rec_lib (no feature vocabulary in it): train again")
    if FeatureVocab.from_dict(payload["vocab"]) != graph.features.vocab:
        raise ConfigError(
            f"the graph's movie features use another vocabulary than {path}: "
            "build the graph with build_graph(..., vocab=checkpoint_vocab(path))"
        )
    config = TrainConfig.from_dict(payload["config"])
    model = build_model(config, graph, known=payload["model"][KNOWN_KEY])
    model.load_state_dict(payload["model"])
    return config, model


def checkpoint_vocab(path: Path) -> FeatureVocab:
    """The feature vocabulary a checkpoint's model was trained with."""
    payload = torch.load(path, map_location="cpu", weights_only=False)
    if "vocab" not in payload:
        raise RecLibError(f"{path} was written by an older rec_lib (no feature vocabulary in it): train again")
    return FeatureVocab.from_dict(payload["vocab"])


KNOWN_KEY = "projector.ids.known"
"""Where a state dict keeps which movies had an id embedding at training."""
