"""The gateway benchmark's gateway: ``zsched serve --no-worker`` (uvicorn, the real app) in a process of its own,
with its open-file limit raised first so it can hold 10,000 sockets.

    python -m bench.gateway_proc --redis-url redis://127.0.0.1:6379/0 --prefix zb-gw --port 8000
"""

from __future__ import annotations

import sys

from zsched.cli.main import main as zsched_main

from .gateway_load import raise_fd_limit

if __name__ == "__main__":
    raise_fd_limit()
    sys.exit(zsched_main(["serve", "--no-worker", "--host", "127.0.0.1", "--log-level", "warning", *sys.argv[1:]]))
