"""Container healthcheck: exit 0 when the service's `/healthz` answers 200, else 1.

The slim Python image has neither curl nor wget, so the check is a few lines of standard
library. The port is the service's own METRICS_PORT, so one image serves both consumers.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

DEFAULT_PORT = "8000"


def check(port: str, host: str = "127.0.0.1", timeout: float = 3.0) -> int:
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


def main() -> int:
    return check(os.environ.get("METRICS_PORT") or DEFAULT_PORT)


if __name__ == "__main__":
    sys.exit(main())
