"""Regression reports: notebooks 01→06 run headlessly, gathered into one folder, compared with a baseline.

``python -m rec_lib report --dataset ml-latest-small [--profile default|smoke]`` runs every notebook
with papermill (a per-cell execution timeout, and an outer timeout per notebook because nbclient can
hang on widget cells): 01 first, then 02-05 and 06 side by side (:data:`LANES`). It writes
``reports/<dataset>/<run id>/``:

* ``notebooks/NN_name.ipynb`` and ``html/NN_name.html``: the executed notebooks and their rendering;
* ``figures/NN_name-<cell>.png``: every figure the notebooks drew;
* ``logs/NN_name.log``: papermill's log of each notebook;
* ``metrics.json``: what the notebooks recorded (:mod:`rec_lib.reports.nbtools`) plus step timings;
* ``summary.md``: metrics next to the baseline, step timings, sample recommendations, the verdict.

The baseline, ``reports/baselines/<dataset>-<profile>.json``, holds the expected value of each
checked metric with its tolerance and direction, and an upper bound for each step's seconds. A run
fails (exit code 1, the differences printed) when a metric is worse than its value minus its
tolerance or a step is slower than its bound. To accept a run's numbers on purpose:
``python -m rec_lib report --accept reports/<dataset>/<run id>`` rewrites the baseline from it,
keeping the tolerances, and the change is reviewed in git like any other.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from rec_lib.config import PROJECT_ROOT, resolve_reports_dir
from rec_lib.data.preprocess import git_commit
from rec_lib.errors import ConfigError, RecLibError
from rec_lib.files import write_json, write_text
from rec_lib.reports.nbtools import jsonable, read_notebook

NOTEBOOKS = ("01_preprocess", "02_train", "03_export_embeddings", "04_load", "05_recommend", "06_cold_start")
LANES = (("02_train", "03_export_embeddings", "04_load", "05_recommend"), ("06_cold_start",))
"""After notebook 01, two lanes run side by side, each kernel on its share of the cores: the product's model and
the notebooks that use it, and the cold-start experiment, which trains its own model from 01's data. On 2 CPU cores
two one-thread trainings get through half as many batches again as one training on both cores."""
CELL_TIMEOUT_S = 1800
"""Per-cell limit: full training on 2 CPU cores is the longest cell (about 10 minutes)."""
NOTEBOOK_TIMEOUT_S = 3600
POLL_S = 0.5
"""How often a running notebook is checked for its timeout and for a failure beside it."""
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
"""What sets a kernel's torch and numpy threads (a value the caller set is kept)."""

PROFILES: dict[str, dict] = {
    "default": {},
    "smoke": {"train_overrides": {"hidden_dims": 16, "num_epochs": 2, "batches_per_epoch": 30, "batch_size": 64}},
}
"""Notebook parameters per profile: ``default`` is the notebooks' own defaults; ``smoke`` trains for seconds.

Notebook 02 trains the product's model; notebooks 03-05 find its run by themselves (``latest-run.json``), so the
training settings of a profile, whatever they are, flow through to export, load and recommend. Notebook 06 trains
its own cold-start model with the same settings."""

CHECKED_METRICS = {
    "n_ratings": "01_preprocess",
    "pinsage_test_hr_B": "02_train",
    "pinsage_test_hr_A": "02_train",
    "consistent": "04_load",
    "milvus_count": "04_load",
    "n_recommendations": "05_recommend",
}


@dataclass(frozen=True)
class Check:
    """One expectation: ``higher`` (must not fall below value - tolerance), ``lower``, or ``equal``."""

    value: float
    tolerance: float = 0.0
    direction: Literal["higher", "lower", "equal"] = "higher"

    def passes(self, observed: float) -> bool:
        if self.direction == "higher":
            return observed >= self.value - self.tolerance
        if self.direction == "lower":
            return observed <= self.value + self.tolerance
        return abs(observed - self.value) <= self.tolerance


@dataclass
class Baseline:
    metrics: dict[str, Check]
    max_seconds: dict[str, float]
    source: str = ""

    @classmethod
    def read(cls, path: Path) -> Baseline:
        if not path.is_file():
            raise RecLibError(f"no baseline at {path}: run a report and accept it (--accept <run dir>)")
        raw = json.loads(path.read_text())
        try:
            metrics = {name: Check(**spec) for name, spec in raw["metrics"].items()}
            return cls(metrics, {k: float(v) for k, v in raw["max_seconds"].items()}, raw.get("source", ""))
        except (KeyError, TypeError) as exc:
            raise RecLibError(f"{path}: not a baseline file ({exc})") from exc

    def write(self, path: Path) -> None:
        payload = {
            "source": self.source,
            "metrics": {name: vars(check) for name, check in self.metrics.items()},
            "max_seconds": self.max_seconds,
        }
        write_json(path, payload)


@dataclass
class Comparison:
    rows: list[dict] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(row["ok"] for row in self.rows)

    def failures(self) -> list[str]:
        return [
            f"{row['name']}: {row['observed']} vs baseline {row['expected']} ({row['rule']})"
            for row in self.rows
            if not row["ok"]
        ]

    def markdown(self) -> str:
        lines = ["| check | observed | baseline | rule | |", "|---|---|---|---|---|"]
        for row in self.rows:
            mark = "ok" if row["ok"] else "**FAIL**"
            lines.append(
                f"| {row['name']} | {_fmt(row['observed'])} | {_fmt(row['expected'])} | {row['rule']} | {mark} |"
            )
        return "\n".join(lines)


def compare(metrics: dict, baseline: Baseline) -> Comparison:
    """Each checked metric and each step's time against the baseline."""
    comparison = Comparison()
    for name, check in baseline.metrics.items():
        observed = metrics.get("checked", {}).get(name)
        ok = observed is not None and check.passes(float(observed))
        sign = {"higher": "≥", "lower": "≤", "equal": "="}[check.direction]
        bound = check.value - check.tolerance if check.direction == "higher" else check.value + check.tolerance
        rule = f"{sign} {_fmt(bound)}" if check.direction != "equal" else f"= {_fmt(check.value)} ± {check.tolerance}"
        comparison.rows.append({"name": name, "observed": observed, "expected": check.value, "rule": rule, "ok": ok})
    for step, bound in baseline.max_seconds.items():
        observed = metrics.get("seconds", {}).get(step)
        ok = observed is not None and observed <= bound
        comparison.rows.append(
            {"name": f"{step} seconds", "observed": observed, "expected": bound, "rule": f"≤ {bound:g}", "ok": ok}
        )
    return comparison


def baseline_from(metrics: dict, previous: Baseline | None, source: str, slack: float = 3.0) -> Baseline:
    """A baseline from a run's metrics, keeping the previous tolerances and directions where there were some."""
    checks = {}
    for name, value in metrics["checked"].items():
        old = previous.metrics.get(name) if previous else None
        if isinstance(value, bool) or (old is None and name in ("consistent", "milvus_count", "n_ratings")):
            checks[name] = Check(float(value), 0.0, "equal")
        elif old is not None:
            checks[name] = Check(float(value), old.tolerance, old.direction)
        else:
            checks[name] = Check(float(value), 0.0 if name == "n_recommendations" else 0.02, "higher")
    seconds = {step: round(max(60.0, value * slack), 0) for step, value in metrics["seconds"].items()}
    return Baseline(checks, seconds, source)


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 10 else f"{value:g}"
    return str(value)


def run_notebooks(
    dataset: str,
    profile: str,
    out_dir: Path,
    *,
    data_dir: str | None = None,
    artefacts_dir: str | None = None,
    extra: dict | None = None,
    cell_timeout_s: int = CELL_TIMEOUT_S,
    notebook_timeout_s: int = NOTEBOOK_TIMEOUT_S,
    after_each: Callable[[str, dict[str, dict], dict[str, float]], None] | None = None,
) -> dict:
    """Execute notebook 01, then the :data:`LANES` side by side, into ``out_dir``; returns the gathered metrics (also
    written to metrics.json). When a notebook fails, the other lane is stopped and the failure raised.

    ``after_each(name, recorded, seconds)`` runs as each notebook ends, one at a time, with what every notebook so
    far recorded and took: how ``make demo`` shows the warm result while notebook 06 is still training."""
    if profile not in PROFILES:
        raise ConfigError(f"profile={profile!r}: expected one of {sorted(PROFILES)}")
    for sub in ("notebooks", "logs", "html", "figures"):
        (out_dir / sub).mkdir(parents=True, exist_ok=True)
    offered = {"dataset": dataset, "data_dir": data_dir, "artefacts_dir": artefacts_dir, **PROFILES[profile]}
    offered.update(extra or {})
    recorded: dict[str, dict] = {}
    seconds: dict[str, float] = {}
    shown = threading.Lock()
    cancel = threading.Event()
    failures: list[Exception] = []

    def run_lane(names: tuple[str, ...], threads: int | None) -> None:
        try:
            for name in names:
                if cancel.is_set():
                    return
                declared = notebook_parameters(name)
                parameters = {key: value for key, value in offered.items() if key in declared}
                started = time.perf_counter()
                executed = _execute(name, out_dir, parameters, cell_timeout_s, notebook_timeout_s, threads, cancel)
                took = round(time.perf_counter() - started, 1)
                record = read_notebook(executed)
                _render(executed, out_dir)
                with shown:
                    seconds[name], recorded[name] = took, record
                    print(f"{name}: {took:.0f} s", flush=True)
                    if after_each is not None:
                        after_each(name, recorded, seconds)
        except Exception as exc:
            with shown:
                if not cancel.is_set():
                    failures.append(exc)
                cancel.set()

    started = time.perf_counter()
    threads = lane_threads()
    run_lane(NOTEBOOKS[:1], None)
    if not failures:
        with ThreadPoolExecutor(max_workers=len(LANES)) as pool:
            for lane in [pool.submit(run_lane, lane, threads) for lane in LANES]:
                lane.result()
    if failures:
        raise failures[0]
    wall = round(time.perf_counter() - started, 1)
    metrics = {
        "dataset": dataset,
        "profile": profile,
        "parameters": {key: value for key, value in offered.items() if key not in ("data_dir", "artefacts_dir")},
        "git_commit": git_commit(),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": {name: seconds[name] for name in NOTEBOOKS},
        "wall_seconds": wall,
        "checked": {name: recorded[notebook].get(name) for name, notebook in CHECKED_METRICS.items()},
        "notebooks": {name: recorded[name] for name in NOTEBOOKS},
    }
    write_json(out_dir / "metrics.json", jsonable(metrics))
    return metrics


def notebook_parameters(name: str) -> set[str]:
    """The names a notebook's ``parameters`` cell declares: a report passes each notebook only those."""
    import papermill

    return set(papermill.inspect_notebook(str(PROJECT_ROOT / "notebooks" / f"{name}.ipynb")))


def lane_threads() -> int:
    """Threads for each lane's kernel: an equal share of the cores this process may use."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores // len(LANES))


def _execute(
    name: str,
    out_dir: Path,
    parameters: dict,
    cell_timeout_s: int,
    notebook_timeout_s: int,
    threads: int | None = None,
    cancel: threading.Event | None = None,
) -> Path:
    source = PROJECT_ROOT / "notebooks" / f"{name}.ipynb"
    target = out_dir / "notebooks" / f"{name}.ipynb"
    params_file = out_dir / "logs" / f"{name}.parameters.json"
    params_file.write_text(json.dumps(parameters))
    command = [
        sys.executable, "-m", "papermill", str(source), str(target),
        "-f", str(params_file), "--execution-timeout", str(cell_timeout_s),
        "--kernel", "python3", "--cwd", str(out_dir), "--no-progress-bar",
    ]  # fmt: skip
    env = {**os.environ, "TQDM_DISABLE": "1", "PYTHONWARNINGS": "ignore"}
    if threads is not None:
        env.update({variable: str(threads) for variable in THREAD_VARIABLES if variable not in os.environ})
    log = out_dir / "logs" / f"{name}.log"
    deadline = time.monotonic() + notebook_timeout_s
    cancel = cancel or threading.Event()
    with log.open("w") as handle, subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=env) as done:
        while done.poll() is None:
            if cancel.wait(POLL_S):
                done.kill()
                raise RecLibError(f"{name} was stopped because a notebook beside it failed; see {log}")
            if time.monotonic() > deadline:
                done.kill()
                raise RecLibError(f"{name} ran past {notebook_timeout_s} s and was stopped; see {log}")
    if done.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-15:])
        raise RecLibError(f"{name} failed (executed notebook: {target}; log: {log}):\n{tail}")
    return target


def _render(executed: Path, out_dir: Path) -> None:
    """HTML of the executed notebook, and its figures as PNG files."""
    import nbformat
    from nbconvert import HTMLExporter

    notebook = nbformat.read(executed, as_version=4)
    html, _ = HTMLExporter().from_notebook_node(notebook)
    write_text(out_dir / "html" / f"{executed.stem}.html", html)
    for index, cell in enumerate(notebook.cells):
        for number, output in enumerate(cell.get("outputs", [])):
            png = output.get("data", {}).get("image/png")
            if png:
                figure = out_dir / "figures" / f"{executed.stem}-cell{index:02d}-{number}.png"
                figure.write_bytes(base64.b64decode(png))


def write_summary(out_dir: Path, metrics: dict, comparison: Comparison | None, baseline_path: Path) -> Path:
    """summary.md: verdict, metrics against the baseline, step timings, sample recommendations."""
    lines = [f"# Regression report: {metrics['dataset']} ({metrics['profile']})", ""]
    lines.append(f"Run `{out_dir.name}` at {metrics['created_at']}, commit `{metrics.get('git_commit')}`.")
    lines.append("")
    if comparison is None:
        lines.append(f"No baseline at `{baseline_path}`: nothing compared.")
    else:
        verdict = "PASSED" if comparison.passed else "FAILED"
        shown = baseline_path.relative_to(PROJECT_ROOT) if baseline_path.is_relative_to(PROJECT_ROOT) else baseline_path
        lines += [f"**{verdict}** against `{shown}`.", "", comparison.markdown()]
    lines += ["", "## Step timings", "", "| notebook | seconds |", "|---|---|"]
    lines += [f"| {name} | {value:.0f} |" for name, value in metrics["seconds"].items()]
    if "wall_seconds" in metrics:
        lanes = " and ".join(lane[0][:2] if len(lane) == 1 else f"{lane[0][:2]}-{lane[-1][:2]}" for lane in LANES)
        lines += ["", f"After 01, notebooks {lanes} ran side by side: {metrics['wall_seconds']:.0f} s in all."]
    recommend = metrics["notebooks"].get("05_recommend", {})
    liked = recommend.get("liked", [])
    if liked:
        lines += ["", "## Sample recommendations", "", "Liked: " + "; ".join(m["title"] for m in liked), ""]
        lines += ["| # | title | score | because you liked |", "|---|---|---|---|"]
        for rank, row in enumerate(recommend.get("recommendations", []), start=1):
            lines.append(f"| {rank} | {row['title']} | {row['score']:.3f} | {row['because']} |")
    path = out_dir / "summary.md"
    write_text(path, "\n".join(lines) + "\n")
    return path


def baseline_path(dataset: str, profile: str) -> Path:
    return resolve_reports_dir() / "baselines" / f"{dataset}-{profile}.json"


def new_run_id() -> str:
    commit = (git_commit() or "nogit")[:8]
    return f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}-{commit}"
