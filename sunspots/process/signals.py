"""Graceful shutdown: SIGTERM and SIGINT set an event that the service loops watch."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


def on_signals(handle: Callable[[str], None]) -> None:
    """Call `handle` with the signal's name ("SIGTERM", "SIGINT") on each SIGTERM or SIGINT.

    The handler runs on the main thread between two of its Python steps, also while that
    thread waits (a sleep, a lock, a socket), so it must not wait itself."""

    def handler(signum: int, _frame: Any) -> None:
        handle(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def stop_on_signals() -> threading.Event:
    """An event set by the first SIGTERM or SIGINT; loops finish their work in hand and exit."""
    stop = threading.Event()

    def handle(name: str) -> None:
        log.info("%s received: finishing the work in hand", name)
        stop.set()

    on_signals(handle)
    return stop
