#!/usr/bin/env bash
# Run a command in a private network namespace that holds only loopback, when the kernel allows it.
# Tests need no network, and the `milvus` 2.3.5 server binds every interface: inside, "every" is 127.0.0.1.
# Where unprivileged namespaces are off, the command runs as is (tests/servers.py then skips or fails the
# Milvus-server tests, saying why).
set -euo pipefail
if unshare --net --map-root-user true 2>/dev/null && command -v ip >/dev/null; then
    exec unshare --net --map-root-user bash -c 'ip link set lo up && exec "$@"' isolated "$@"
fi
echo "tests/isolated.sh: no network namespace available (unshare or ip missing); running without isolation" >&2
exec "$@"
