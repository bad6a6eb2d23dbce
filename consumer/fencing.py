"""Fencing: the one Kafka error a consumer must not retry.

Another process took over this instance's id (a zombie of this one, or a misconfigured twin),
or the broker aborted a transaction that outlived its timeout during a long outage. Carrying
on would fence the other process back and forth, so a fencing stops the service (exit code 3);
a restarted instance re-initialises its transactional id and resumes exactly once.
"""

from __future__ import annotations

from sunspots.kafka.errors import FencedInstanceIdError, ProducerFencedError

FATAL_ERRORS = (ProducerFencedError, FencedInstanceIdError)


class Fenced(RuntimeError):
    """This instance was fenced by another one with the same instance id; it must stop."""


def is_fenced(exc: BaseException) -> bool:
    """kafka-python often reports a fencing wrapped in a plain KafkaError (as its second
    argument, or as the cause), so look inside as well; and once its transaction manager is in
    an error state, a transaction step raises a KafkaError whose message alone names the error
    ("... in an error state: [Error 90] ProducerFencedError"). Missing that one would have a
    zombie replace its producer, whose start fences the instance that took over."""
    inner = [exc, exc.__cause__, exc.__context__, *getattr(exc, "args", ())]
    if any(isinstance(e, FATAL_ERRORS) for e in inner):
        return True
    told = str(exc)
    return any(error.__name__ in told for error in FATAL_ERRORS)
