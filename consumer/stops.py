"""Why a consumer service stops on its own, and the exit code its supervisor sees.

Most of what goes wrong in the loop is waited out (a broker away) or costs one record (a dead
letter). A few conditions neither waiting nor a dead letter can mend: input the client cannot
read or a topic change the state cannot follow (`EXIT_INPUT`), or a loop that has stopped making
progress (`EXIT_STALLED`). Code deep in the loop raises `ServiceStop` with the one line that says
what happened and what to do; the service's edge (`consumer.__main__`) tells the line once, in
the log and on `/readyz`, and exits with its code, so a supervisor can act on it.
"""

from __future__ import annotations

# Input the service cannot read or follow: a record batch the client cannot decode (a codec, a
# corrupt batch), or a change to a topic it reads or writes that its state cannot follow. The
# line names the topic, the partition, the offset where it applies, and the cause.
EXIT_INPUT = 8
# No progress: a partition with records waiting made none past the stall limit, or the service
# was still busy when its shutdown grace ran out. What was not committed is processed again
# after a restart.
EXIT_STALLED = 9


class ServiceStop(Exception):
    """Stop the service: `line` says why, once; `exit_code` is what the process exits with."""

    def __init__(self, line: str, exit_code: int) -> None:
        super().__init__(line)
        self.line = line
        self.exit_code = exit_code
