"""Fencing: the one Kafka error a consumer must not retry.

Another process took over this instance's id (a zombie of this one, or a misconfigured twin),
or the broker aborted a transaction that outlived its timeout during a long outage. Carrying
on would fence the other process back and forth, so a fencing stops the service (exit code 3);
a restarted instance re-initialises its transactional id and resumes exactly once.
"""

from __future__ import annotations

from sunspots.kafka.errors import FencedInstanceIdError, ProducerFencedError

FATAL_ERRORS = (ProducerFencedError, FencedInstanceIdError)
MAX_DEPTH = 8  # links of causes and wrapped errors followed (a chain may loop)


class Fenced(RuntimeError):
    """This instance was fenced by another one with the same instance id; it must stop."""


def is_fenced(exc: BaseException) -> bool:
    """kafka-python often reports a fencing wrapped in a plain KafkaError (as its second
    argument, or as the cause), so look inside as well; and once its transaction manager is in
    an error state, a transaction step raises a KafkaError whose message alone names the error
    ("... in an error state: [Error 90] ProducerFencedError"). Missing that one would have a
    zombie replace its producer, whose start fences the instance that took over. Each error
    looked inside is judged the same way, the message included, down to `MAX_DEPTH` links."""
    return any(_names_fencing(e) for e in _chain(exc))


def _names_fencing(exc: BaseException) -> bool:
    """Whether `exc` is a fencing, or its message names one."""
    if isinstance(exc, FATAL_ERRORS):
        return True
    told = _told(exc)
    return any(error.__name__ in told for error in FATAL_ERRORS)


def _chain(exc: BaseException) -> list[BaseException]:
    """`exc` and the errors inside it: its cause, its context and exceptions among its
    arguments, breadth first, each once, at most `MAX_DEPTH` links deep."""
    seen: list[BaseException] = []
    level = [exc]
    for _ in range(MAX_DEPTH):
        inner: list[BaseException] = []
        for e in level:
            if any(e is s for s in seen):
                continue
            seen.append(e)
            inner += [
                x
                for x in (e.__cause__, e.__context__, *getattr(e, "args", ()))
                if isinstance(x, BaseException)
            ]
        if not inner:
            break
        level = inner
    return seen


def _told(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:  # an error whose message itself fails
        return ""
