"""/metrics in Prometheus format, right with two Daphne processes."""

from __future__ import annotations

import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.support.sse_client import open_stream


def scrape(server) -> dict[tuple[str, tuple], float]:
    response = requests.get(server.url + "/metrics", timeout=5)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def by_name(samples, name: str) -> dict[tuple, float]:
    return {labels: value for (n, labels), value in samples.items() if n == name}


async def test_metrics_are_service_wide_across_processes(daphne_pair):
    first, second = daphne_pair
    waiting = await open_stream(first.url, params={"userId": "mw", "interests": "M1,M2"})
    await waiting.next_event()
    arriving = await open_stream(second.url, params={"userId": "ma", "interests": "M2,M1"})
    await arriving.next_event()
    await waiting.next_change()
    fb1 = await open_stream(
        first.url, params={"userId": "f1", "interests": "Q", "fallbackAfter": "0"}
    )
    await fb1.next_event()
    fb2 = await open_stream(
        second.url, params={"userId": "f2", "interests": "R", "fallbackAfter": "0"}
    )
    assert (await fb2.next_event())["fallback"] is True
    lonely = await open_stream(second.url, params={"userId": "lonely", "interests": "NONE"})
    await lonely.next_event()

    for server in (first, second):
        samples = scrape(server)
        matches = by_name(samples, "animochat_matches_total")
        assert matches[(("fallback", "false"), ("shared_interests", "2"))] == 1
        assert matches[(("fallback", "true"), ("shared_interests", "0"))] == 1
        assert samples[("animochat_time_to_match_seconds_count", ())] == 2
        assert samples[("animochat_time_to_match_seconds_bucket", (("le", "+Inf"),))] == 2
        assert samples[("animochat_time_to_match_seconds_bucket", (("le", "600"),))] == 2
        assert samples[("animochat_users_waiting", ())] == 1
        assert samples[("animochat_active_sessions", ())] == 2
    streams = [
        sum(by_name(scrape(server), "animochat_open_streams").values())
        for server in (first, second)
    ]
    assert streams == [0, 1]  # the lonely stream is open on the second process
    await lonely.close()
