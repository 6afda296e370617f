"""The API on a free loopback port: in a background thread (browser and protocol tests) or as the `serve`
command's own process (soak and command tests)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import uvicorn
from servers import free_port

from rec_lib.serving.api import create_app
from rec_lib.serving.guard import LIMITS, ServeLimits, server_config
from rec_lib.serving.stores import StoreSettings


@contextmanager
def serve(settings: StoreSettings, limits: ServeLimits = LIMITS):
    """The app over ``settings`` as ``serve`` runs it (the guarded protocol held to ``limits``); yields its URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app = create_app(settings)
    server = uvicorn.Server(server_config(app, host="127.0.0.1", port=port, log_level="warning", limits=limits))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the API server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@contextmanager
def served_process(artefacts_dir: Path, env: dict[str, str], *args: str):
    """``python -m rec_lib serve *args`` over the stores loaded under ``artefacts_dir`` (and ``env``'s
    MILVUS_URI / MYSQL_URL), up and answering /health; yields the process and its base URL, stops it at the end."""
    port = free_port()
    inherited = {k: v for k, v in os.environ.items() if k not in ("MILVUS_URI", "MYSQL_URL")}
    env = {**inherited, "REC_ARTEFACTS_DIR": str(artefacts_dir), **env}
    server = subprocess.Popen(
        [sys.executable, "-m", "rec_lib", "serve", "--port", str(port), *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline and server.poll() is None, "the server did not come up"
            time.sleep(0.3)
        yield server, base
    finally:
        server.terminate()
        server.wait(timeout=30)
