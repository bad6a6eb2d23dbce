"""The consumer loop's own health on /metrics: a sensor (`consumer.sensors`) that counts.

Without it the loop's troubles exist only as log lines: how often it rewinds and why, how many
transactions it aborted, how long a rebalance's restore took, what each transaction step and
each batch cost, whether the instance is ready. Both services export the same names, told apart
by Prometheus' `job` and `instance`:

* `sunspot_consumer_rewinds_total{cause}`: rewinds to the committed offsets, by cause
  (`failed_publish`, `failed_restore`); each cause is exported from the start, at 0;
* `sunspot_consumer_aborts_total`: batches whose publish failed and was taken back (exactly
  once: the transaction aborted);
* `sunspot_consumer_fenced_total`: fencings (the service then stops with exit code 3, so it
  shows only if a scrape lands before the exit; the log line and the exit code are the signal);
* `sunspot_consumer_restore_seconds` (histogram) and `sunspot_consumer_restored_records_total`:
  each restore of state from the changelog (after an assignment or in a rewind), and the
  records it applied: the latest of each key it read (a series' state, or a tombstone), as
  compaction would leave them;
* `sunspot_consumer_publish_step_seconds{step}` (histogram): each step of publishing a batch
  (`consumer.sensors.PUBLISH_STEPS`; `commit` is the transaction's commit);
* `sunspot_consumer_batch_seconds` (histogram): from the poll that returned a batch to its
  commit, the latency the loop adds to each record;
* `sunspot_consumer_ready`: 1 while /readyz would answer 200, read at each scrape.

The registry is a parameter, so tests use a fresh `CollectorRegistry()`.
"""

from __future__ import annotations

from collections.abc import Collection

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from consumer.health import Health
from consumer.sensors import PUBLISH_STEPS, REWIND_CAUSES, Sensor

# A local broker answers a transaction step in about a millisecond; a lost node costs seconds,
# and a step gives up after 20 s (consumer.publishing).
STEP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0)
# A batch adds its processing to the steps: a full 2000-record batch takes about 0.1 s.
BATCH_BUCKETS = (0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# A restore costs about 0.34 s + 38 µs per changelog record (docs/scaling.md); past the group's
# max.poll.interval (300 s) the member is evicted.
RESTORE_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


class LoopMetrics(Sensor):
    """The loop's events as Prometheus metrics in `registry` (see the module); readiness is
    read from `health` at each scrape."""

    def __init__(self, registry: CollectorRegistry, health: Health) -> None:
        self.rewinds = Counter(
            "sunspot_consumer_rewinds",
            "Rewinds to the committed offsets, by cause (failed_publish, failed_restore)",
            ["cause"],
            registry=registry,
        )
        for cause in REWIND_CAUSES:
            self.rewinds.labels(cause)
        self.aborts = Counter(
            "sunspot_consumer_aborts",
            "Batches whose publish failed and was taken back (exactly once: the transaction "
            "aborted)",
            registry=registry,
        )
        self.fenced = Counter(
            "sunspot_consumer_fenced",
            "Fencings by another process with this instance id (the service then stops)",
            registry=registry,
        )
        self.restore_seconds = Histogram(
            "sunspot_consumer_restore_seconds",
            "Restores of state from the changelog (an assignment or a rewind), in seconds",
            buckets=RESTORE_BUCKETS,
            registry=registry,
        )
        self.restored_records = Counter(
            "sunspot_consumer_restored_records",
            "Changelog records applied by restores: the latest of each key read",
            registry=registry,
        )
        self._latencies(registry)
        self.ready = Gauge(
            "sunspot_consumer_ready",
            "1 while /readyz answers 200: this instance is doing its work",
            registry=registry,
        )
        self.ready.set_function(lambda: 1.0 if health.ready else 0.0)

    def _latencies(self, registry: CollectorRegistry) -> None:
        self.step_seconds = Histogram(
            "sunspot_consumer_publish_step_seconds",
            "Steps of publishing a batch (send, offsets, commit, abort), in seconds",
            ["step"],
            buckets=STEP_BUCKETS,
            registry=registry,
        )
        for step in PUBLISH_STEPS:
            self.step_seconds.labels(step)
        self.batch_seconds = Histogram(
            "sunspot_consumer_batch_seconds",
            "From the poll that returned a batch to its commit, in seconds",
            buckets=BATCH_BUCKETS,
            registry=registry,
        )

    def on_rewind(self, cause: str) -> None:
        self.rewinds.labels(cause).inc()

    def on_abort(self) -> None:
        self.aborts.inc()

    def on_fenced(self) -> None:
        self.fenced.inc()

    def on_restored(self, partitions: Collection[int], records: int, seconds: float) -> None:
        self.restore_seconds.observe(seconds)
        self.restored_records.inc(records)

    def on_transaction(self, step: str, seconds: float) -> None:
        self.step_seconds.labels(step).observe(seconds)

    def on_batch(self, records: int, seconds: float) -> None:
        self.batch_seconds.observe(seconds)
