"""Several API processes on one port, each with its own listening socket (``SO_REUSEPORT``).

uvicorn's own ``--workers`` shares one listening socket: whichever process wakes first accepts every pending
connection, so a few keep-alive clients all land on one process and the others idle (reports/speed.md). With
one ``SO_REUSEPORT`` socket per process the kernel spreads new connections across them. Each process builds the
app with :func:`rec_lib.serving.api.create_app` and so opens its own store clients once, from the environment
(``MILVUS_URI``, ``MYSQL_URL``, ``REC_ARTEFACTS_DIR``).
"""

from __future__ import annotations

import multiprocessing
import signal
import socket
import sys

APP_FACTORY = "rec_lib.serving.api:create_app"


def run_workers(host: str, port: int, workers: int, *, access_log: bool = True) -> int:
    """Run ``workers`` API processes on ``host:port`` until interrupted; the exit code is the first failure's."""
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_worker, args=(host, port, access_log), daemon=False) for _ in range(workers)]
    for process in processes:
        process.start()

    def stop(signum, frame) -> None:
        for process in processes:
            if process.is_alive():
                process.terminate()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for process in processes:
            process.join()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return next((p.exitcode for p in processes if p.exitcode not in (0, -signal.SIGTERM)), 0)


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` that other processes may bind too (``SO_REUSEPORT``)."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(address)
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _worker(host: str, port: int, access_log: bool) -> None:
    import uvicorn

    from rec_lib.serving.guard import server_config

    sock = reuse_port_socket(host, port)
    config = server_config(APP_FACTORY, factory=True, host=host, port=port, access_log=access_log)
    server = uvicorn.Server(config)
    server.run(sockets=[sock])
    if not server.started:
        sys.exit(1)
