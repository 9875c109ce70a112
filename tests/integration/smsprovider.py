"""A local stand-in for an SMS provider's HTTP API, shaped like Twilio's Messages API: records each message and
answers from a script of statuses per number (429 and 5xx included), with Twilio-shaped JSON bodies."""

from __future__ import annotations

import base64
import itertools
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

SID, TOKEN = "AC" + "0" * 32, "test-auth-token"
ERRORS = {  # what Twilio says with each status (its error codes)
    400: (21211, "The 'To' number {to} is not a valid phone number."),
    401: (20003, "Authenticate"),
    429: (20429, "Too Many Requests"),
    500: (20500, "Internal Server Error"),
    503: (20503, "Service Unavailable"),
}


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # socketserver's 5 drops connects from a client sending several at once


class SmsProvider:
    """Serves 127.0.0.1 on a free port. ``answers[number]`` are statuses to answer in order before 201 (``[429]``:
    once rate limited, then accepted); ``hang_s`` delays every answer. Only ``SID``/``TOKEN`` may send."""

    def __init__(self, hang_s: float = 0.0) -> None:
        self.answers: dict[str, list[int]] = {}
        self.hang_s = hang_s
        self.accepted: list[dict[str, str]] = []  # the form of each message answered 201
        self.requests: list[tuple[str, dict[str, str]]] = []  # (path, form) of every POST
        self._ids = itertools.count(1)
        self.in_flight = self.most_at_once = 0  # requests being answered now, and the most there ever were
        self._lock = threading.Lock()
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                form = {k: v[0] for k, v in parse_qs(raw).items()}
                with provider._lock:
                    provider.in_flight += 1
                    provider.most_at_once = max(provider.most_at_once, provider.in_flight)
                status, body = provider.answer(self.path, self.headers.get("Authorization", ""), form)
                if provider.hang_s:
                    time.sleep(provider.hang_s)
                with provider._lock:
                    provider.in_flight -= 1
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    if status == 429:
                        self.send_header("Retry-After", "1")
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up waiting (a timeout test)
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = _Server(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def answer(self, path: str, authorization: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """The status and JSON body for one POST."""
        with self._lock:
            self.requests.append((path, form))
            expected = "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
            to = form.get("To", "")
            if path != f"/2010-04-01/Accounts/{SID}/Messages.json":
                status = 404
            elif authorization != expected:
                status = 401
            elif self.answers.get(to):
                status = self.answers[to].pop(0)
            else:
                sid = f"SM{next(self._ids):032d}"
                self.accepted.append(form)
                return 201, {"sid": sid, "status": "queued", "to": to, "body": form.get("Body")}
            code, message = ERRORS.get(status, (20404, "The requested resource was not found"))
            return status, {"code": code, "message": message.format(to=to), "status": status}

    def __enter__(self) -> SmsProvider:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
