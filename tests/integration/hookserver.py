"""A local webhook receiver for tests: records each POST and answers from a script of statuses."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class HookServer:
    """Serves 127.0.0.1 on a free port; ``statuses`` are answered in order (the last one repeats), each with
    ``body``; any path is served."""

    def __init__(self, statuses: list[int] | None = None, hang_s: float = 0.0, body: bytes = b"ok") -> None:
        self.statuses = list(statuses or [200])
        self.hang_s = hang_s
        self.body = body
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.received: list[float] = []  # when each request arrived (epoch s), in the order of ``requests``
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                hook.received.append(time.time())
                hook.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                if hook.hang_s:
                    time.sleep(hook.hang_s)
                status = hook.statuses.pop(0) if len(hook.statuses) > 1 else hook.statuses[0]
                self.send_response(status)
                self.send_header("Content-Length", str(len(hook.body)))
                self.end_headers()
                self.wfile.write(hook.body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> HookServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
