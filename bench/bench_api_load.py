"""A bounded load test of the HTTP API on loopback, embedded stores and servers side by side.

    tests/isolated.sh python bench/bench_api_load.py --data-dir ../shared/data [--seconds 20] \
        [--concurrency 8 32] [--workers N]

The same vectors and movies are loaded into Milvus Lite + SQLite (one API process: a Lite data dir
allows one) and into a Milvus server + MariaDB (``--workers`` API processes, default one per core),
both started here on loopback (run it through ``tests/isolated.sh``: the Milvus 2.3.5 server binds every
interface, and inside that namespace every interface is loopback). Each is served by ``python -m
rec_lib serve --no-access-log`` as its own process; ``--concurrency`` clients (one keep-alive connection each,
requests encoded once: see :class:`Connection`) send requests back to back for ``--seconds``: 70% POST
/recommend (a real user's last 1-5 movies), 20% GET /movies/search, 10% GET /movies/{id}. It prints
requests/s, p50/p99 and errors per set-up and client count, the CPU each role spent per request (read from
/proc: the load clients, the API processes, the Milvus server, MariaDB, ...), then the server path's
requests/s over the embedded one's. Exits 1 on any error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import httpx
import numpy as np
from bench_recommend import embeddings_for, liked_sets

from rec_lib.contracts import load_embeddings
from rec_lib.data.preprocess import PreprocessConfig, run_preprocess
from rec_lib.serving.metadata_store import movie_rows
from rec_lib.serving.stores import StoreSettings, close_stores, load_stores, open_stores

TARGET_RATIO = 5
"""The issue's target: the server path's requests/s over the embedded store's."""
SEARCHES = ["star", "the", "love", "man", "war", "matrix", "toy", "king", "night", "life"]


class Connection:
    """One keep-alive HTTP/1.1 connection that sends prepared requests and reads answers that carry a
    Content-Length (every answer of this API does). The load clients share 2 cores with the API and the servers,
    so they are kept lean: ~0.2 ms of CPU per request where httpx spent 1.0-1.3 ms."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, base: str) -> Connection:
        host, port = urlsplit(base).hostname, urlsplit(base).port
        return cls(*await asyncio.open_connection(host, port))

    async def send(self, request: bytes) -> tuple[int, bytes]:
        """The status and body of the answer to one prepared request."""
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        length = None
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length is None:
            raise RuntimeError(f"an answer without Content-Length: {head[:200]!r}")
        return int(head[9:12]), await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


def prepared_requests(base: str, queries: list[list[int]], ids) -> dict[str, list[bytes]]:
    """Every request the clients send, encoded once, by endpoint."""
    host = urlsplit(base).netloc
    bodies = [json.dumps({"liked": [int(i) for i in liked], "k": 10}).encode() for liked in queries]
    return {
        "POST /recommend": [
            f"POST /recommend HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
            for body in bodies
        ],
        "GET /movies/search": [
            f"GET /movies/search?{urlencode({'q': q})} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode() for q in SEARCHES
        ],
        "GET /movies/{id}": [f"GET /movies/{int(i)} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode() for i in ids],
    }


MIX = [(0.7, "POST /recommend"), (0.9, "GET /movies/search"), (1.0, "GET /movies/{id}")]
"""70% recommend, 20% title search, 10% movie details (cumulative shares)."""


async def client(base: str, deadline: float, rng: np.random.Generator, requests, samples, errors) -> None:
    connection = await Connection.open(base)
    try:
        while time.perf_counter() < deadline:
            draw = rng.random()
            endpoint = next(name for share, name in MIX if draw < share)
            prepared = requests[endpoint]
            started = time.perf_counter()
            status, body = await connection.send(prepared[rng.integers(len(prepared))])
            samples.setdefault(endpoint, []).append(time.perf_counter() - started)
            if status != 200:
                errors.append(f"{endpoint}: {status} {body[:200].decode(errors='replace')}")
    finally:
        connection.close()


async def load(base: str, seconds: float, concurrency: int, requests) -> tuple[dict, list, float]:
    samples: dict[str, list[float]] = {}
    errors: list[str] = []
    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(
        *(client(base, deadline, np.random.default_rng(i), requests, samples, errors) for i in range(concurrency))
    )
    return samples, errors, time.perf_counter() - started


def cpu_seconds_by_process() -> dict[int, tuple[int, str, float]]:
    """Every process's parent pid, command name and CPU seconds so far (user + system, all its threads)."""
    ticks = os.sysconf("SC_CLK_TCK")
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # exited while we looked
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        table[int(entry.name)] = (int(fields[1]), name, (int(fields[11]) + int(fields[12])) / ticks)
    return table


def cpu_by_role(before: dict, after: dict, api_pid: int) -> dict[str, float]:
    """CPU seconds spent between two snapshots by the load clients (this process), the API process tree, and
    every other process by command name (the Milvus server, MariaDB, ...)."""
    api = {api_pid}
    for _ in range(4):  # the serve process, its worker processes, and anything they start
        api |= {pid for pid, (ppid, _, _) in after.items() if ppid in api}
    spent: dict[str, float] = {}
    for pid, (_, name, seconds) in after.items():
        delta = seconds - before.get(pid, (0, name, 0.0))[2]
        if delta <= 0:
            continue
        role = "clients" if pid == os.getpid() else "API" if pid in api else name
        spent[role] = spent.get(role, 0.0) + delta
    return spent


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


def serve(settings: StoreSettings, workers: int, artefacts_dir: str) -> tuple[subprocess.Popen, str]:
    """``python -m rec_lib serve`` over ``settings`` as its own process on a free loopback port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k not in ("MILVUS_URI", "MYSQL_URL")}
    env["REC_ARTEFACTS_DIR"] = artefacts_dir
    if settings.milvus_uri.startswith("http"):
        env["MILVUS_URI"] = settings.milvus_uri
    if not settings.sql_url.startswith("sqlite"):
        env["MYSQL_URL"] = settings.sql_url
    server = subprocess.Popen(
        [sys.executable, "-m", "rec_lib", "serve", "--port", str(port), "--workers", str(workers), "--no-access-log"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    wait_until_up(base, server)
    return server, base


def measure(name: str, settings: StoreSettings, workers: int, artefacts_dir: str, args, queries, ids) -> list[dict]:
    server, base = serve(settings, workers, artefacts_dir)
    requests = prepared_requests(base, queries, ids)
    rows = []
    try:
        asyncio.run(load(base, 2, 4, requests))  # warm every worker's clients and caches
        for concurrency in args.concurrency:
            cpu_before = cpu_seconds_by_process()
            samples, errors, elapsed = asyncio.run(load(base, args.seconds, concurrency, requests))
            cpu = cpu_by_role(cpu_before, cpu_seconds_by_process(), server.pid)
            total = sum(len(v) for v in samples.values())
            recommend_ms = np.array(samples.get("POST /recommend", [0.0])) * 1000
            every_ms = np.concatenate([np.array(v) for v in samples.values()]) * 1000
            rows.append({
                "setup": name, "workers": workers, "clients": concurrency, "requests": total,
                "req_s": total / elapsed, "p50_ms": float(np.percentile(every_ms, 50)),
                "p99_ms": float(np.percentile(every_ms, 99)),
                "recommend_p50_ms": float(np.percentile(recommend_ms, 50)), "errors": len(errors),
                "cpu_ms_per_request": {role: 1000 * s / total for role, s in cpu.items()},
                "cores_busy": sum(cpu.values()) / elapsed,
            })  # fmt: skip
            row = rows[-1]
            print(
                f"{name:<30} {workers} worker(s) {concurrency:>3} clients: {row['req_s']:7.1f} req/s  "
                f"p50 {row['p50_ms']:6.1f} ms  p99 {row['p99_ms']:7.1f} ms  recommend p50 "
                f"{row['recommend_p50_ms']:6.1f} ms  errors {row['errors']}",
                flush=True,
            )
            shares = sorted(row["cpu_ms_per_request"].items(), key=lambda kv: -kv[1])
            print(f"  CPU ms per request ({row['cores_busy']:.2f} cores busy): "
                  + ", ".join(f"{role} {ms:.2f}" for role, ms in shares[:6] if ms >= 0.01))  # fmt: skip
            for error in errors[:5]:
                print(f"  error: {error}")
    finally:
        server.terminate()
        server.wait(timeout=30)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", default="ml-latest-small")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--artefacts-dir", default=None)
    parser.add_argument("--run-dir", type=Path, default=None)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="API processes on the server path")
    parser.add_argument("--embedded-only", action="store_true", help="skip the Milvus server + MariaDB path")
    args = parser.parse_args()
    prep = run_preprocess(PreprocessConfig(args.dataset), data_dir=args.data_dir, artefacts_dir=args.artefacts_dir)
    embeddings = load_embeddings(args.run_dir) if args.run_dir else embeddings_for(args, prep)
    queries = liked_sets(prep, 1000)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        embedded = StoreSettings(str(Path(tmp) / "milvus.db"), f"sqlite:///{Path(tmp) / 'movies.sqlite'}")
        load_stores(open_stores(embedded), embeddings, movie_rows(prep))
        close_stores(embedded)
        rows += measure("Milvus Lite + SQLite", embedded, 1, tmp, args, queries, embeddings.movie_ids)
        if not args.embedded_only:
            sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
            from servers import start_mariadb, start_milvus_server

            milvus, mariadb = start_milvus_server(Path(tmp) / "milvus"), start_mariadb(Path(tmp) / "mariadb")
            try:
                server = StoreSettings(milvus.uri, mariadb.url)
                load_stores(open_stores(server), embeddings, movie_rows(prep))
                close_stores(server)
                rows += measure("Milvus server + MariaDB", server, args.workers, tmp, args, queries,
                                embeddings.movie_ids)  # fmt: skip
            finally:
                milvus.stop()
                mariadb.stop()
    if not args.embedded_only:
        for concurrency in args.concurrency:
            lite, server = (next(r for r in rows if r["clients"] == concurrency and r["setup"] == s)
                            for s in ("Milvus Lite + SQLite", "Milvus server + MariaDB"))  # fmt: skip
            print(f"{concurrency} clients: the server path answers {server['req_s'] / lite['req_s']:.1f}x "
                  "the embedded store's requests/s")  # fmt: skip
            budget_ms = 1000 * server["cores_busy"] / (TARGET_RATIO * lite["req_s"])
            others_ms = sum(ms for role, ms in server["cpu_ms_per_request"].items() if role != "API")
            print(f"  {TARGET_RATIO}x would leave {budget_ms:.2f} ms of CPU per request at "
                  f"{server['cores_busy']:.2f} busy cores; every role but the API takes {others_ms:.2f}, "
                  f"the API {server['cpu_ms_per_request'].get('API', 0.0):.2f}")  # fmt: skip
    return 1 if any(r["errors"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
