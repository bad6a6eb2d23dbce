"""Container healthcheck: exit 0 when the service's `/healthz` answers 200, else 1.

The slim Python image has neither curl nor wget, so the check is a few lines of standard
library. It asks the port the service listens on, so one image serves both consumers: the
service's own `SUNSPOTS_METRICS_PORT` when set, else the default port of the mode that PID 1
runs (`sunspots-consumer classify` listens on 8001, `forecast` on 8000), taken from the
service's registry of modes.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

PORT_ENV = "SUNSPOTS_METRICS_PORT"
SERVICE_CMDLINE = Path("/proc/1/cmdline")


def check(port: int, host: str = "127.0.0.1", timeout: float = 3.0) -> int:
    """0 when the service's /healthz on `port` answers 200, else 1 with the reason on stderr."""
    url = f"http://{host}:{port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (OSError, ValueError) as exc:
        sys.stderr.write(f"{url}: {exc}\n")
        return 1
    if status != 200:
        sys.stderr.write(f"{url}: HTTP {status}\n")
        return 1
    return 0


def service_port(env: dict[str, str], cmdline: list[str]) -> int:
    """The port the service listens on: its variable, else its mode's default."""
    if env.get(PORT_ENV):
        return int(env[PORT_ENV])
    from consumer.modes import FORECAST, MODES

    mode = next((MODES[word] for word in cmdline if word in MODES), FORECAST)
    return mode.default_port


def main() -> int:
    """The check on the port of the service that runs as PID 1, from its command line and
    environment."""
    try:
        cmdline = SERVICE_CMDLINE.read_bytes().decode(errors="replace").split("\0")
    except OSError:
        cmdline = []
    return check(service_port(dict(os.environ), cmdline))


if __name__ == "__main__":
    sys.exit(main())
