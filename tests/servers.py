"""Real servers for the tests, on loopback only: MariaDB (Debian mariadb-server) and Milvus (the `milvus` package).

Both start in a throwaway directory and stop when the test session ends. MariaDB binds 127.0.0.1.
The `milvus` 2.3.5 server binds its ports on every interface and cannot be told otherwise, so it is
only started inside a network namespace that holds nothing but loopback (``make test`` runs pytest
in one, see tests/isolated.sh). Without the server binaries or such a namespace the tests that need
them skip, saying why; with ``REC_REQUIRE_SERVERS=1`` (CI) they fail instead.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

REQUIRE_SERVERS = os.environ.get("REC_REQUIRE_SERVERS") == "1"
APP_USER, APP_PASSWORD, APP_DATABASE = "rec_lib", "rec-lib-test-pw", "rec_lib_test"


def unavailable(reason: str) -> None:
    if REQUIRE_SERVERS:
        pytest.fail(f"REC_REQUIRE_SERVERS=1 but {reason}")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def only_loopback() -> bool:
    """Whether this process's network namespace has no interface but ``lo``."""
    lines = Path("/proc/net/dev").read_text().splitlines()[2:]  # /proc/net follows the namespace; /sys may not
    return [line.split(":")[0].strip() for line in lines] == ["lo"]


class MariaDB:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.port = free_port()
        self.socket = base / "mysqld.sock"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"mysql+pymysql://{APP_USER}:{APP_PASSWORD}@127.0.0.1:{self.port}/{APP_DATABASE}?charset=utf8mb4"

    def start(self) -> None:
        data = self.base / "data"
        subprocess.run(
            ["mariadb-install-db", "--no-defaults", f"--datadir={data}", "--user=root",
             "--auth-root-authentication-method=normal", "--skip-test-db"],
            check=True, capture_output=True,
        )  # fmt: skip
        self.process = subprocess.Popen(self._args())
        self.wait()
        self.sql(
            f"CREATE DATABASE {APP_DATABASE} CHARACTER SET utf8mb4;"
            + "".join(
                f"CREATE USER '{APP_USER}'@'{host}' IDENTIFIED BY '{APP_PASSWORD}';"
                f"GRANT ALL ON {APP_DATABASE}.* TO '{APP_USER}'@'{host}';"
                for host in ("localhost", "127.0.0.1")
            )
        )

    def wait(self, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            ping = subprocess.run(
                ["mariadb-admin", "--no-defaults", f"--socket={self.socket}", "-uroot", "ping"], capture_output=True
            )
            if ping.returncode == 0:
                return
            if self.process.poll() is not None:
                raise RuntimeError(f"mariadbd exited: {(self.base / 'err.log').read_text()[-2000:]}")
            time.sleep(0.2)
        raise RuntimeError("mariadbd did not answer within 60 s")

    def sql(self, statements: str) -> None:
        subprocess.run(
            ["mariadb", "--no-defaults", f"--socket={self.socket}", "-uroot", "-e", statements],
            check=True, capture_output=True,
        )  # fmt: skip

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=60)

    def restart(self) -> None:
        self.stop()
        self.process = None
        self.process = subprocess.Popen(self._args())
        self.wait()

    def _args(self) -> list[str]:
        return [
            "mariadbd", "--no-defaults", f"--datadir={self.base / 'data'}", f"--socket={self.socket}",
            f"--port={self.port}", "--bind-address=127.0.0.1", f"--pid-file={self.base / 'pid'}",
            f"--log-error={self.base / 'err.log'}", "--user=root", "--character-set-server=utf8mb4",
            "--collation-server=utf8mb4_unicode_ci",
        ]  # fmt: skip


def start_mariadb(base: Path) -> MariaDB:
    missing = [b for b in ("mariadbd", "mariadb-install-db", "mariadb-admin", "mariadb") if not shutil.which(b)]
    if missing:
        unavailable(f"MariaDB is not installed ({', '.join(missing)} missing): apt-get install mariadb-server")
    server = MariaDB(base)
    server.start()
    return server


class MilvusServer:
    def __init__(self, base: Path) -> None:
        from milvus import MilvusServer as Server

        self.server = Server()
        self.server.set_base_dir(str(base))
        for component in ("proxy", "rootCoord", "dataCoord", "queryCoord", "queryNode", "dataNode", "indexNode"):
            self.server.config.set(f"{component}.ip", "127.0.0.1")

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.server.listen_port}"

    def start(self) -> None:
        self.server.start()

    def stop(self) -> None:
        self.server.stop()


def start_milvus_server(base: Path) -> MilvusServer:
    try:
        import milvus  # noqa: F401
    except ImportError:
        unavailable("the `milvus` package is not installed (pip install -e '.[dev]')")
    if not only_loopback():
        unavailable(
            "the milvus 2.3.5 server binds every interface; run the tests through `make test`, which puts them "
            "in a loopback-only network namespace"
        )
    server = MilvusServer(base)
    server.start()
    return server
