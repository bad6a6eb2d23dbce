"""Consumer lag and stalls per assigned partition on /metrics, read from the watchdog at scrape.

A custom collector rather than labelled gauges set by the loop: the values are the watchdog's
live state at the moment of the scrape, and a partition no longer assigned simply stops being
reported (no label removal to remember on each revocation). Both services export the same
names, told apart by Prometheus' `job` and `instance`:

* `sunspot_consumer_lag{topic,partition}`: records waiting (the last stable offset minus what
  the loop consumed), once both are known;
* `sunspot_consumer_stalled{topic,partition}`: 1 while the partition is reported stalled;
* `sunspot_consumer_stalls_total`: stalls reported since the process started.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from consumer.watchdog import PartitionState

LABELS = ["topic", "partition"]


class Watched(Protocol):
    """What the collector reads: `consumer.watchdog.Watchdog`."""

    stalls_total: int

    def snapshot(self) -> list[PartitionState]: ...


class LagCollector(Collector):
    """The watchdog's partitions as metrics, registered in `registry`."""

    def __init__(self, watchdog: Watched, registry: CollectorRegistry) -> None:
        self.watchdog = watchdog
        registry.register(self)

    def collect(self) -> Iterable[Metric]:
        """Each watched partition's lag (when known) and stalled flag, and the stalls counted so
        far."""
        lag, stalled, total = self._families()
        for state in self.watchdog.snapshot():
            labels = [state.tp.topic, str(state.tp.partition)]
            if state.lag is not None:
                lag.add_metric(labels, state.lag)
            stalled.add_metric(labels, 1.0 if state.stalled else 0.0)
        total.add_metric([], self.watchdog.stalls_total)
        return [lag, stalled, total]

    def describe(self) -> Iterable[Metric]:
        return self._families()

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily, CounterMetricFamily]:
        return (
            GaugeMetricFamily(
                "sunspot_consumer_lag",
                "Records waiting on an assigned partition: its last stable offset minus the "
                "offset the loop consumed",
                labels=LABELS,
            ),
            GaugeMetricFamily(
                "sunspot_consumer_stalled",
                "1 while an assigned partition has records waiting and has made no progress "
                "for the stall timeout",
                labels=LABELS,
            ),
            CounterMetricFamily(
                "sunspot_consumer_stalls", "Stalled partitions reported since start", labels=[]
            ),
        )
