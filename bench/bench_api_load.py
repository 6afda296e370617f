"""A bounded load test of the HTTP API on loopback: requests/s, p50/p99 per endpoint, and errors (must be 0).

    python bench/bench_api_load.py --data-dir ../shared/data [--seconds 30] [--concurrency 8]

The stores are loaded into a temporary artefacts dir from the default run's export (or a short
training run), then ``python -m rec_lib serve`` runs as its own process on 127.0.0.1 and
``--concurrency`` clients send requests back to back for ``--seconds``: 70% POST /recommend (a real
user's last 1-5 movies), 20% GET /movies/search, 10% GET /movies/{id}. Exits 1 on any error.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from bench_recommend import embeddings_for, liked_sets

from rec_lib.data.preprocess import PreprocessConfig, run_preprocess
from rec_lib.serving.embeddings import load_embeddings
from rec_lib.serving.metadata_store import movie_rows
from rec_lib.serving.stores import StoreSettings, close_stores, load_stores, open_stores

SEARCHES = ["star", "the", "love", "man", "war", "matrix", "toy", "king", "night", "life"]


async def client(base: str, deadline: float, rng: np.random.Generator, queries, ids, samples, errors) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        while time.perf_counter() < deadline:
            draw = rng.random()
            started = time.perf_counter()
            if draw < 0.7:
                endpoint = "POST /recommend"
                response = await http.post("/recommend", json={"liked": queries[rng.integers(len(queries))], "k": 10})
            elif draw < 0.9:
                endpoint = "GET /movies/search"
                response = await http.get("/movies/search", params={"q": SEARCHES[rng.integers(len(SEARCHES))]})
            else:
                endpoint = "GET /movies/{id}"
                response = await http.get(f"/movies/{int(ids[rng.integers(len(ids))])}")
            samples.setdefault(endpoint, []).append(time.perf_counter() - started)
            if response.status_code != 200:
                errors.append(f"{endpoint}: {response.status_code} {response.text[:200]}")


async def load(base: str, seconds: float, concurrency: int, queries, ids) -> tuple[dict, list, float]:
    samples: dict[str, list[float]] = {}
    errors: list[str] = []
    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(
        *(client(base, deadline, np.random.default_rng(i), queries, ids, samples, errors) for i in range(concurrency))
    )
    return samples, errors, time.perf_counter() - started


def wait_until_up(base: str, process: subprocess.Popen, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the API server exited: {process.stderr.read()[-2000:]}")
        try:
            if httpx.get(base + "/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the API server did not answer /health")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", default="ml-latest-small")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--artefacts-dir", default=None)
    parser.add_argument("--run-dir", type=Path, default=None)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    prep = run_preprocess(PreprocessConfig(args.dataset), data_dir=args.data_dir, artefacts_dir=args.artefacts_dir)
    embeddings = load_embeddings(args.run_dir) if args.run_dir else embeddings_for(args, prep)
    queries = liked_sets(prep, 1000)
    with tempfile.TemporaryDirectory() as tmp:
        settings = StoreSettings(str(Path(tmp) / "milvus.db"), f"sqlite:///{Path(tmp) / 'movies.sqlite'}")
        load_stores(open_stores(settings), embeddings, movie_rows(prep))
        close_stores(settings)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if k not in ("MILVUS_URI", "MYSQL_URL")}
        server = subprocess.Popen(
            [sys.executable, "-m", "rec_lib", "serve", "--artefacts-dir", tmp, "--port", str(port)],
            env={**env, "REC_ARTEFACTS_DIR": tmp}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until_up(base, server)
            samples, errors, elapsed = asyncio.run(
                load(base, args.seconds, args.concurrency, queries, embeddings.movie_ids)
            )
        finally:
            server.terminate()
            server.wait(timeout=30)
    total = sum(len(v) for v in samples.values())
    print(f"{args.seconds:.0f} s at concurrency {args.concurrency} on loopback: {total} requests, "
          f"{total / elapsed:.1f} requests/s, {len(errors)} errors")  # fmt: skip
    for endpoint, values in sorted(samples.items()):
        ms = np.array(values) * 1000
        print(f"  {endpoint:<20} {len(ms):>6} requests  p50 {np.percentile(ms, 50):7.1f} ms  "
              f"p99 {np.percentile(ms, 99):7.1f} ms")  # fmt: skip
    for error in errors[:10]:
        print(f"  error: {error}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
