"""Client-side helpers that the tests, the benchmarks and the demo share: the services run as
subprocesses (`services`), a run's own topics and reading them back (`topics`), the services'
HTTP endpoint seen from outside (`http`), waiting with a deadline (`polling`), how far a
run has got as the broker sees it: offsets and open transactions (`progress`), and which
SILSO file to read when none is named (`datafile`).

Not part of the wheel: it is imported from the repository root, where pytest (pythonpath),
`python -m bench` and `python -m demo` run.
"""
