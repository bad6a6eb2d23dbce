"""Development tools that are not part of the service: the local Kafka broker and cluster the
tests, benchmarks and demo run against (`python -m devtools.broker`, `make kafka`). Kept out
of the `sunspots` package so that the wheel and the image ship none of it."""
