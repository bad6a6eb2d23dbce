"""Another team's producer, on the real broker: observations of `{"series", "date",
"sunspot_number"}` alone are forecast like full ones.

Two series carry the same 60 real days through one forecaster: `full` as the replay sends
them (all six fields), `minimal` as a producer that knows only the three required ones sends
them (every other record with the optional fields null rather than left out). Nothing is
dead-lettered, and every forecast and evaluation of `minimal` equals that of `full` on the same
date. Both series are forecast in the same batched model calls in float32, so values are
compared within 1e-4 (tests.integration.offline.TOLERANCE).
"""

from __future__ import annotations

import json

from kafka import KafkaProducer

from sunspots.domain.data import load_daily, select_range
from sunspots.wire.schemas import Observation
from support.run_progress import Progress
from support.run_topics import read_results, read_to_end, unique_topics
from support.services import forecaster, running
from tests.integration.offline import TOLERANCE

START, END = "2003-01-01", "2003-03-01"


def _minimal(obs: Observation, nulls: bool) -> bytes:
    body = {"series": "minimal", "date": obs.date.isoformat(), "sunspot_number": obs.sunspot_number}
    if nulls:
        body |= {"std_dev": None, "observations": None, "provisional": None}
    return json.dumps(body).encode()


def test_a_minimal_observation_stream_is_forecast_like_a_full_one(
    bootstrap_servers, create_topics, unique, data_file, tmp_path
) -> None:
    topics = create_topics(unique_topics(unique))
    group = f"g-{unique}"
    frame = select_range(load_daily(data_file.path), START, END)
    producer = KafkaProducer(bootstrap_servers=bootstrap_servers, acks="all", linger_ms=5)
    for i, row in enumerate(frame.itertuples(index=False)):
        value = None if row.sunspot_number != row.sunspot_number else float(row.sunspot_number)
        std = None if row.std_dev != row.std_dev else float(row.std_dev)
        full = Observation("full", row.date.date(), value, std, int(row.observations), False)
        producer.send(topics.observations, key=b"full", value=full.encode())
        producer.send(topics.observations, key=b"minimal", value=_minimal(full, i % 2 == 1))
    producer.flush()
    producer.close()
    fc = forecaster(bootstrap_servers, topics, group, tmp_path)
    with running(fc), Progress(bootstrap_servers) as progress:
        fc.wait_ready()
        progress.wait_finished(group, topics, 2 * len(frame), 120, fc)
        forecasts, evaluations = read_results(bootstrap_servers, topics)
        assert fc.terminate() == 0
    assert read_to_end(bootstrap_servers, topics.dead_letter) == []
    for name, made, day in (
        ("forecasts", forecasts, "target_date"),
        ("evaluations", evaluations, "date"),
    ):
        by_series = {
            series: {m[day]: m for m in made if m["series"] == series}
            for series in ("full", "minimal")
        }
        full, minimal = by_series["full"], by_series["minimal"]
        assert full and sorted(minimal) == sorted(full), name
        for when, expected in full.items():
            got = minimal[when]
            for field, value in expected.items():
                if isinstance(value, float):
                    assert abs(got[field] - value) <= TOLERANCE, (name, when, field)
                elif field != "series":
                    assert got[field] == value, (name, when, field)
    assert len(forecasts) == 2 * (len(frame) - 9)  # from the 10th day on, the day after included
