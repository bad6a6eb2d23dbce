"""The consumers' HTTP endpoint: `/metrics`, `/healthz` (loop alive) and `/readyz` (serving).

`/healthz` answers 200 while the poll loop has turned within `stale_after` seconds, so an
orchestrator restarts a wedged process. `/readyz` answers 200 only when the model is loaded,
partitions are assigned and the broker answered the last poll, while no problem is reported
(`problem(key, text)`: a stalled partition, a topic that went away; each shown in the body until
it is cleared), and never once the service stops on its own (`refused=` names the cause: the
brokers refused it, authentication, authorization, TLS, or a `consumer.stops.ServiceStop`). The client side (waiting for
/readyz, reading /metrics) is in the repository's `support` package, for the tests, the
benchmarks and the demo.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest


class Health:
    """Liveness and readiness facts, written by the poll loop, read by the HTTP thread."""

    def __init__(self, stale_after: float = 30.0) -> None:
        self.stale_after = stale_after
        self.last_poll = time.monotonic()
        self.model_loaded = False
        self.assigned = False
        self.connected = False
        self.refused: str | None = None  # the refusal's (or the stop's) one line
        # What keeps the service unready while it lasts, by who reported it.
        self.problems: dict[str, str] = {}

    def polled(self, connected: bool) -> None:
        self.last_poll = time.monotonic()
        self.connected = connected

    def problem(self, key: str, text: str | None) -> None:
        """Report a problem under `key` (unready while it lasts); None clears it."""
        if text is None:
            self.problems.pop(key, None)
        else:
            self.problems[key] = text

    @property
    def alive(self) -> bool:
        return time.monotonic() - self.last_poll < self.stale_after

    @property
    def ready(self) -> bool:
        """True only while the loop is alive, the model loaded, partitions assigned, the broker
        reachable, nothing refused and no problem reported."""
        return (
            self.alive
            and self.model_loaded
            and self.assigned
            and self.connected
            and self.refused is None
            and not self.problems
        )

    def describe(self) -> str:
        """The facts as one line of `key=value`, the body of /healthz and /readyz."""
        refused = f" refused={self.refused}" if self.refused else ""
        problems = "".join(f" {key}={text}" for key, text in sorted(self.problems.items()))
        return (
            f"alive={self.alive} model_loaded={self.model_loaded} "
            f"assigned={self.assigned} connected={self.connected}{problems}{refused}\n"
        )


def serve(
    registry: CollectorRegistry, health: Health, port: int, host: str = "0.0.0.0"
) -> ThreadingHTTPServer:
    """Start the endpoint on a daemon thread; `shutdown()` the returned server to stop it."""

    class Handler(BaseHTTPRequestHandler):
        """The HTTP handler of /healthz and /readyz: the loop's liveness and readiness as a status
        code and one line."""

        def do_GET(self) -> None:
            """/metrics; /healthz, 200 while alive, else 503; /readyz, 200 while ready, else 503;
            any other path 404."""
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                self._send(200 if health.alive else 503, health.describe().encode())
            elif path == "/readyz":
                self._send(200 if health.ready else 503, health.describe().encode())
            else:
                self._send(404, b"not found\n")

        def _send(self, status: int, body: bytes, ctype: str = "text/plain") -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass  # scrapes every few seconds would drown the service log

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    return server
