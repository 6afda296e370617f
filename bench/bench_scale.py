"""Every pipeline step at growing scale: seconds and peak memory per step, and how each grows with ratings.

    .venv/bin/python bench/bench_scale.py [--sizes 1m 10m 25m] [--device cpu] [--batches 100]

Each size is synthetic data in ml-1m's file format with the user, movie and rating counts of ml-1m,
ml-10m and ml-25m. Each step is the CLI's own command (``python -m rec_lib <step>``) in its own process,
so its peak resident memory (``wait4``'s ``ru_maxrss``) is that step's alone, and so is its peak GPU memory (which
the step prints) on a GPU: synthesize, preprocess, train (one short epoch of ``--batches`` batches), evaluate
(PinSage and the three baselines under both protocols), export (every movie's vector) and load (Milvus Lite +
SQLite). A step that refuses to start
(for example EASE above its memory limit) is reported with its message. The growth exponent between two
sizes is ``log(t2 / t1) / log(r2 / r1)``: 1 is linear in ratings.
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

SHAPES = {
    "1m": (6_040, 3_706, 1_000_209),
    "10m": (69_878, 10_677, 10_000_054),
    "25m": (162_541, 59_047, 25_000_095),
}
STEPS = ("synthesize", "preprocess", "train", "evaluate", "export", "load")


@dataclass
class StepResult:
    size: str
    step: str
    seconds: float
    peak_gb: float
    gpu_gb: float | None
    ok: bool
    note: str


def run_step(command: list[str], env: dict, cwd: Path | None = None) -> tuple[float, float, float | None, int, str]:
    """Run one CLI step (in ``cwd``, default this process's folder); its wall seconds, its own peak RSS in GB, its
    peak GPU memory in GB (from the step's own ``peak memory:`` line; None when it used no GPU), exit code and a
    note: the last stderr line when it failed, the training speed (batches/s: sampling and steps, without the
    validation) when it trained."""
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as stdout:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=stdout, stderr=subprocess.PIPE, text=True)
        stderr = process.stderr.read()
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        stdout.seek(0)
        printed = stdout.read()
        gpu = re.findall(r"^peak memory: .*, GPU ([0-9.]+) GB$", printed, flags=re.MULTILINE)
        rate = re.findall(r"([0-9.]+) batches/s", printed)
    seconds = time.perf_counter() - started
    lines = [line for line in stderr.splitlines() if line.strip() and "%|" not in line] or [""]
    note = lines[-1] if process.returncode != 0 else (f"{rate[-1]} batches/s" if rate else "")
    return seconds, usage.ru_maxrss / 2**20, float(gpu[-1]) if gpu else None, process.returncode, note


def commands(size: str, data_dir: Path, artefacts: Path, device: str, batches: int) -> dict[str, list[str]]:
    users, movies, ratings = SHAPES[size]
    name = f"synthetic-{size}"
    cli = [sys.executable, "-m", "rec_lib"]
    data = ["--dataset", name, "--data-dir", str(data_dir), "--artefacts-dir", str(artefacts)]
    run = ["--dataset", name, "--artefacts-dir", str(artefacts)]
    short = ["--num-epochs", "1", "--batches-per-epoch", str(batches), "--device", device]
    return {
        "synthesize": [*cli, "synthesize", "--out", str(data_dir / name), "--users", str(users), "--movies",
                       str(movies), "--ratings", str(ratings)],
        "preprocess": [*cli, "preprocess", *data, "--no-download"],
        "train": [*cli, "train", *data, "--no-download", *short],
        "evaluate": [*cli, "evaluate", *run, "--device", device],
        "export": [*cli, "export", *run, "--device", device],
        "load": [*cli, "load", *run],
    }  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", nargs="+", default=["1m", "10m", "25m"], choices=list(SHAPES))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batches", type=int, default=100, help="batches in the one short training epoch")
    parser.add_argument("--work-dir", type=Path, default=None, help="default: a temporary folder")
    args = parser.parse_args()
    results: list[StepResult] = []
    with tempfile.TemporaryDirectory(dir=args.work_dir) as tmp:
        env = {k: v for k, v in os.environ.items() if k not in ("MILVUS_URI", "MYSQL_URL")}
        env["TQDM_DISABLE"] = "1"
        for size in args.sizes:
            data_dir, artefacts = Path(tmp) / "data", Path(tmp) / f"artefacts-{size}"
            for step, command in commands(size, data_dir, artefacts, args.device, args.batches).items():
                seconds, peak, gpu, code, last = run_step(command, env)
                results.append(StepResult(size, step, seconds, peak, gpu, code == 0, last))
                print(f"{size:>4} {step:<11} {seconds:8.1f} s  peak {peak:6.2f} GB"
                      + ("" if gpu is None else f"  GPU {gpu:6.2f} GB")
                      + (f"  {last}" if code == 0 and last else "")
                      + ("" if code == 0 else f"  FAILED: {last}"), flush=True)  # fmt: skip
                if code != 0 and step in ("synthesize", "preprocess", "train"):
                    break
    print_table(results, args.sizes)
    return 0 if all(r.ok for r in results) else 1


def print_table(results: list[StepResult], sizes: list[str]) -> None:
    """A markdown table: seconds and peak GB per step and size, and the growth exponent between sizes."""
    by = {(r.size, r.step): r for r in results}
    pairs = list(itertools.pairwise(sizes))
    header = [f"{s} s / GB" for s in sizes] + [f"exponent {a}→{b}" for a, b in pairs]
    print("\n| step | " + " | ".join(header) + " |")
    print("|---|" + "---:|" * len(header))
    for step in STEPS:
        cells = []
        for size in sizes:
            r = by.get((size, step))
            gpu = "" if r is None or r.gpu_gb is None else f" / GPU {r.gpu_gb:.1f}"
            cells.append("—" if r is None else (f"{r.seconds:.1f} / {r.peak_gb:.1f}{gpu}" if r.ok else "refused"))
        for a, b in pairs:
            ra, rb = by.get((a, step)), by.get((b, step))
            if ra and rb and ra.ok and rb.ok and ra.seconds > 0:
                growth = math.log(rb.seconds / ra.seconds) / math.log(SHAPES[b][2] / SHAPES[a][2])
                cells.append(f"{growth:.2f}")
            else:
                cells.append("—")
        print(f"| {step} | " + " | ".join(cells) + " |")
    for r in results:
        if not r.ok:
            print(f"\n{r.size} {r.step}: {r.note}")


if __name__ == "__main__":
    sys.exit(main())
