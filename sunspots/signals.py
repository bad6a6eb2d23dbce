"""Graceful shutdown: SIGTERM and SIGINT set an event that the service loops watch."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

log = logging.getLogger(__name__)


def stop_on_signals() -> threading.Event:
    """An event set by the first SIGTERM or SIGINT; loops finish their work in hand and exit."""
    stop = threading.Event()

    def handle(signum: int, _frame: Any) -> None:
        log.info("%s received: finishing the work in hand", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    return stop
