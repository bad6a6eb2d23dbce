"""The services' HTTP endpoint (consumer.health) seen from outside: is it ready, what does
/metrics say. The demo, the benchmarks and the tests all ask it the same way."""

from __future__ import annotations

import subprocess
import time
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from sunspots.process.deadline import Deadline

LOCALHOST = "127.0.0.1"

# A /metrics exposition as {(sample name, sorted label items): value}.
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def get(port: int, path: str, host: str = LOCALHOST, timeout: float = 5.0) -> tuple[int, str]:
    """(status, body) of GET `path`; an error status is an answer too, not an exception."""
    try:
        with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def wait_ready(
    port: int,
    process: subprocess.Popen[bytes] | None = None,
    timeout: float = 60.0,
    path: str = "/readyz",
    host: str = LOCALHOST,
) -> None:
    """Wait until `path` (a service's /readyz unless told) answers 200. Raises RuntimeError
    with the last answer, or at once if `process` exits first."""
    deadline = Deadline(timeout)
    last = "no answer yet"
    while not deadline.expired():
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the service exited with {process.returncode}")
        try:
            status, body = get(port, path, host, timeout=2)
        except OSError as exc:
            last = str(exc)
        else:
            if status == 200:
                return
            last = f"{status} {body.strip()}"
        time.sleep(0.2)
    raise RuntimeError(f"{path} on :{port} not 200 within {timeout:.0f} s ({last})")


def metrics_text(port: int, host: str = LOCALHOST) -> str:
    """A service's /metrics exposition as it is served."""
    status, body = get(port, "/metrics", host)
    if status != 200:
        raise RuntimeError(f"/metrics on :{port} answered {status}")
    return body


def scrape(port: int, host: str = LOCALHOST) -> Samples:
    """A service's /metrics as {(sample name, sorted label items): value}."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(metrics_text(port, host))
        for s in family.samples
    }


def sample(samples: Samples, name: str, **labels: str) -> float:
    """The sample `name` with exactly these labels; 0 while the series does not exist yet."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples: Samples, name: str) -> float:
    """The samples `name` summed over all their labels."""
    return sum(value for (n, _), value in samples.items() if n == name)
