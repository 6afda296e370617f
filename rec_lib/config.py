"""Where things live: project paths, environment variables and their resolution order.

Every path setting resolves the same way: an explicit argument wins, then the environment
variable, then the default under the project root.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

DEFAULT_DATASET = "ml-latest-small"

DATA_DIR_ENV = "REC_DATA_DIR"
ARTEFACTS_DIR_ENV = "REC_ARTEFACTS_DIR"
REPORTS_DIR_ENV = "REC_REPORTS_DIR"

DEFAULT_DATA_DIR = PROJECT_ROOT / "data" / "raw"
DEFAULT_ARTEFACTS_DIR = PROJECT_ROOT / "artefacts"
DEFAULT_REPORTS_DIR = PROJECT_ROOT / "reports"


def _resolve(explicit: str | os.PathLike[str] | None, env_var: str, default: Path) -> Path:
    if explicit is not None and str(explicit) != "":
        return Path(explicit).expanduser().resolve()
    from_env = os.environ.get(env_var, "")
    if from_env:
        return Path(from_env).expanduser().resolve()
    return default


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The folder that holds one sub-folder per dataset (``<data_dir>/ml-1m/ratings.dat``).

    >>> resolve_data_dir("/tmp/movielens").as_posix()
    '/tmp/movielens'
    """
    return _resolve(data_dir, DATA_DIR_ENV, DEFAULT_DATA_DIR)


def resolve_artefacts_dir(artefacts_dir: str | os.PathLike[str] | None = None) -> Path:
    """The folder that preprocessing, training and export write their artefacts to."""
    return _resolve(artefacts_dir, ARTEFACTS_DIR_ENV, DEFAULT_ARTEFACTS_DIR)


def resolve_reports_dir(reports_dir: str | os.PathLike[str] | None = None) -> Path:
    """The folder of the committed results (``tuning/``, ``coldstart/``, ``baselines/``) and of generated reports:
    the checkout's ``reports/``, or ``REC_REPORTS_DIR`` where rec_lib is installed from a wheel."""
    return _resolve(reports_dir, REPORTS_DIR_ENV, DEFAULT_REPORTS_DIR)
