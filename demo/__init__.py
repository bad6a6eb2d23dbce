"""`python -m demo`: the end-to-end replay demo behind `make demo`."""
