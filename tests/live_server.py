"""The API served by uvicorn in a background thread on a free loopback port, for browser and load tests."""

from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager

import uvicorn

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
