"""Pipeline steps of two checkouts side by side on the same synthetic data: what a change does at scale.

    git worktree add ../before <commit>
    .venv/bin/python bench/bench_checkouts.py --before ../before --after . [--size 25m] [--steps train evaluate]

The data are synthesized once (by the ``--after`` checkout); then each step runs for the code before, then after,
each in its own process started in its checkout's folder (so ``python -m rec_lib`` imports that checkout's code,
under this same Python and packages) and with its own artefacts dir. Each step is the one
``bench/bench_scale.py`` runs; the table gives seconds, peak memory and the after / before ratio, and for
``evaluate`` how far apart the two evaluation tables are, model by model (0 for the baselines when the change
left their inputs alone; PinSage's metrics also move with the float sums of a multi-threaded training).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from bench_scale import SHAPES, STEPS, commands, run_step

VERSIONS = ("before", "after")
METRICS = ("hr", "ndcg", "coverage", "popularity")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--before", type=Path, required=True, help="a checkout of the code before the change")
    parser.add_argument("--after", type=Path, default=Path("."), help="a checkout of the code after it (default: .)")
    parser.add_argument("--size", default="10m", choices=list(SHAPES))
    parser.add_argument("--steps", nargs="+", default=list(STEPS[1:]), choices=list(STEPS[1:]))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batches", type=int, default=100, help="batches in the one short training epoch")
    parser.add_argument("--work-dir", type=Path, default=None, help="default: a temporary folder")
    args = parser.parse_args()
    checkouts = {"before": args.before.resolve(), "after": args.after.resolve()}
    for version, folder in checkouts.items():
        if not (folder / "rec_lib" / "__main__.py").is_file():
            parser.error(f"--{version} {folder.name}: not a rec_lib checkout (no rec_lib/__main__.py)")
    env = {k: v for k, v in os.environ.items() if k not in ("MILVUS_URI", "MYSQL_URL")}
    env["TQDM_DISABLE"] = "1"
    with tempfile.TemporaryDirectory(dir=args.work_dir) as tmp:
        work = Path(tmp).resolve()  # the steps run in the checkouts' folders
        steps = {v: commands(args.size, work / "data", work / v, args.device, args.batches) for v in VERSIONS}
        seconds, peak, _, code, note = run_step(steps["after"]["synthesize"], env, cwd=checkouts["after"])
        print(f"{args.size} synthesize (once) {seconds:.1f} s", flush=True)
        if code != 0:
            print(f"synthesize failed: {note}")
            return 1
        needed = ["preprocess", *[s for s in args.steps if s != "preprocess"]]
        rows = []
        for step in needed:
            measured = {}
            for version in VERSIONS:
                seconds, peak, _, code, note = run_step(steps[version][step], env, cwd=checkouts[version])
                measured[version] = (seconds, peak)
                print(f"{step:<10} {version:<6} {seconds:8.1f} s  peak {peak:6.2f} GB  {note}", flush=True)
                if code != 0:
                    print(f"{step} failed for the code {version}: {note}")
                    return 1
            if step in args.steps:
                rows.append((step, measured))
        print(f"\n| step ({args.size}) | before s / GB | after s / GB | after / before |")
        print("|---|---:|---:|---:|")
        for step, measured in rows:
            (b_s, b_gb), (a_s, a_gb) = measured["before"], measured["after"]
            print(f"| {step} | {b_s:.1f} / {b_gb:.1f} | {a_s:.1f} / {a_gb:.1f} | {a_s / b_s:.2f} |")
        if "evaluate" in args.steps:
            print_table_differences(work, args.size)
    return 0


def print_table_differences(work: Path, size: str) -> None:
    """Per model and metric, the largest absolute difference between the two evaluation tables."""
    tables = {}
    for version in VERSIONS:
        (path,) = (work / version / f"synthetic-{size}").glob("pinsage-*/evaluation.json")
        tables[version] = json.loads(path.read_text())["rows"]
    largest: dict[str, dict[str, float]] = {}
    for before, after in zip(tables["before"], tables["after"], strict=True):
        gaps = largest.setdefault(after["model"], dict.fromkeys(METRICS, 0.0))
        for metric in METRICS:
            gaps[metric] = max(gaps[metric], abs(before[metric] - after[metric]))
    print("\nlargest difference between the two evaluation tables (popularity is a percentile, 0-100):")
    for model, gaps in largest.items():
        print(f"  {model}: " + ", ".join(f"{metric} {gap:.2g}" for metric, gap in gaps.items()))


if __name__ == "__main__":
    sys.exit(main())
