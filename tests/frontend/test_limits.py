"""Per-key rate limits and quotas (docs/frontend.md, "Named keys, rate limits and quotas"): the limiter
with an injected clock, then named keys through a real front end and replica over loopback."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from modelport.errors import UserErrorException
from modelport.frontend.limits import KeyLimiter, KeyLimiters
from modelport.frontend.routes import AuthPolicy, KeyLimits, NamedKey, ServiceRoute, key_digest
from modelport.frontend.standalone import BackgroundFrontEnd
from tests.frontend.support import ReplicaProcess, score_url

Pair = tuple[ReplicaProcess, ReplicaProcess]
T0 = 1_700_000_000.0  # a whole day in epoch seconds: 1_699_920_000 + 80_000


def outcomes(limiter: KeyLimiter, times: list[float]) -> list[str]:
    return [limiter.admit(at).outcome for at in times]


def test_bucket_allows_the_burst_then_the_rate() -> None:
    limiter = KeyLimiter("team-a", KeyLimits(rate=2.0, burst=4))
    assert outcomes(limiter, [T0] * 5) == ["admitted"] * 4 + ["rate_limited"]
    refused = limiter.admit(T0)
    assert refused.retry_after_s == 1  # half a second to the next token, rounded up to whole seconds
    assert "2 requests per second (burst 4)" in refused.message
    # Half a second gives one token back, not more.
    assert outcomes(limiter, [T0 + 0.5, T0 + 0.5]) == ["admitted", "rate_limited"]
    # Ten idle seconds refill up to the burst only.
    assert outcomes(limiter, [T0 + 10.5] * 5) == ["admitted"] * 4 + ["rate_limited"]


def test_bucket_over_a_long_run_admits_burst_plus_rate_times_duration() -> None:
    limiter = KeyLimiter("k", KeyLimits(rate=5.0, burst=10))
    times = [T0 + i * 0.01 for i in range(1000)]  # 100 requests/s for 10 s
    admitted = outcomes(limiter, times).count("admitted")
    assert admitted == 10 + int(5.0 * (times[-1] - T0))


def test_retry_after_counts_the_wait_for_one_token() -> None:
    limiter = KeyLimiter("slow", KeyLimits(rate=0.1))  # one request per 10 s, burst 1
    assert limiter.admit(T0).admitted
    assert limiter.admit(T0 + 2.0).retry_after_s == 8


def test_clock_stepping_back_refills_nothing() -> None:
    limiter = KeyLimiter("k", KeyLimits(rate=1.0, burst=1))
    assert limiter.admit(T0).admitted
    assert not limiter.admit(T0 - 100).admitted
    assert not limiter.admit(T0 + 0.5).admitted
    assert limiter.admit(T0 + 1.0).admitted


def test_quota_refuses_until_the_window_resets() -> None:
    limiter = KeyLimiter("q", KeyLimits(quota=3, window="minute"))
    start = 60 * (T0 // 60) + 10  # ten seconds into a minute
    assert outcomes(limiter, [start, start + 1, start + 2]) == ["admitted"] * 3
    refused = limiter.admit(start + 5)
    assert (refused.outcome, refused.retry_after_s) == ("quota_exceeded", 45)
    assert "3 requests per minute" in refused.message
    assert limiter.admit(start + 49.5).retry_after_s == 1
    assert outcomes(limiter, [start + 50, start + 51, start + 52, start + 53]) == ["admitted"] * 3 + [
        "quota_exceeded"
    ]


def test_day_quota_follows_utc_days() -> None:
    limiter = KeyLimiter("q", KeyLimits(quota=1, window="day"))
    midnight = 86400 * (T0 // 86400 + 1)
    assert limiter.admit(midnight - 10).admitted
    assert limiter.admit(midnight - 5).retry_after_s == 5
    assert limiter.admit(midnight).admitted


def test_rate_refusals_do_not_use_the_quota() -> None:
    limiter = KeyLimiter("both", KeyLimits(rate=1.0, burst=1, quota=2, window="hour"))
    assert outcomes(limiter, [T0, T0, T0, T0]) == ["admitted"] + ["rate_limited"] * 3
    assert outcomes(limiter, [T0 + 1, T0 + 2]) == ["admitted", "quota_exceeded"]


def test_limiters_keep_counts_while_limits_stay_and_restart_when_they_change() -> None:
    limiters = KeyLimiters()
    tight = KeyLimits(rate=1.0, burst=1)
    limiters.configure({("svc", "a"): tight})
    assert limiters.admit("svc", "a", T0).admitted
    limiters.configure({("svc", "a"): tight})  # a table push with nothing changed
    assert not limiters.admit("svc", "a", T0).admitted
    limiters.configure({("svc", "a"): KeyLimits(rate=1.0, burst=2)})
    assert limiters.admit("svc", "a", T0).admitted
    assert limiters.admit("svc", "unlimited", T0).admitted


@pytest.mark.parametrize(
    ("limits", "field"),
    [
        ({"rate": 0.0}, "rate"),
        ({"burst": 4}, "burst"),
        ({"rate": 1.0, "burst": 0}, "burst"),
        ({"quota": 5}, "quota"),
        ({"quota": 0, "window": "day"}, "quota"),
        ({"quota": 5, "window": "week"}, "quota"),
    ],
)
def test_invalid_limits_are_refused_naming_the_field(limits: dict[str, object], field: str) -> None:
    with pytest.raises(UserErrorException, match=field):
        KeyLimits(**limits)  # type: ignore[arg-type]


def test_named_key_wire_form_round_trips() -> None:
    key = NamedKey("team-a", key_digest("v"), KeyLimits(rate=20.0, burst=40, quota=10, window="day"))
    assert NamedKey.from_wire(key.to_wire()) == key
    assert "v" not in key.to_wire().values()
    with pytest.raises(UserErrorException, match="sha256 must be 64 lower-case hex digits"):
        NamedKey("team-a", "00")


# -- through a real front end -------------------------------------------------------------------
LIMITED, FREE = "limited-key-value-0123456789", "free-key-value-0123456789"


def keyed_route(replica: ReplicaProcess, *named: NamedKey) -> dict[str, ServiceRoute]:
    policy = AuthPolicy("key", keys=("primary-k", "secondary-k"), named_keys=named)
    return {
        "keyed": ServiceRoute(
            "keyed",
            auth=policy,
            max_concurrent_per_replica=4,
            max_queue_wait_ms=5000,
            replicas=(replica.target,),
        )
    }


def test_rate_limited_key_gets_429_with_retry_after(frontend: BackgroundFrontEnd, pair: Pair) -> None:
    frontend.frontend.clock = lambda: T0  # time stands still: the bucket never refills
    limited = NamedKey("team-a", key_digest(LIMITED), KeyLimits(rate=1.0, burst=2))
    frontend.set_routes(keyed_route(pair[0], limited))
    url = score_url(frontend, "keyed")
    with httpx.Client() as client:
        statuses = [
            client.post(url, json={}, headers={"Authorization": f"Bearer {LIMITED}"}).status_code
            for _ in range(2)
        ]
        refused = client.post(
            url, json={}, headers={"Authorization": f"Bearer {LIMITED}", "x-request-id": "r1"}
        )
        assert statuses == [200, 200]
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "1"
        assert refused.headers["x-request-id"] == "r1"
        assert set(refused.json()) == {"message"} and "team-a" in refused.json()["message"]
        # The service's own keys have no limits.
        assert client.post(url, json={}, headers={"Authorization": "Bearer primary-k"}).status_code == 200
        # Removing the key refuses it at once.
        frontend.set_routes(keyed_route(pair[0]))
        assert client.post(url, json={}, headers={"Authorization": f"Bearer {LIMITED}"}).status_code == 401
        metrics = client.get(frontend.url + "/metrics").text
    assert re.search(r'key_requests_total\{key="team-a",outcome="admitted",service="keyed"\} 2\.0', metrics)
    assert re.search(
        r'key_requests_total\{key="team-a",outcome="rate_limited",service="keyed"\} 1\.0', metrics
    )
    assert LIMITED not in metrics


def test_quota_resets_with_the_window(frontend: BackgroundFrontEnd, pair: Pair) -> None:
    now = [60 * (T0 // 60) + 30]
    frontend.frontend.clock = lambda: now[0]
    quota = NamedKey("team-q", key_digest(LIMITED), KeyLimits(quota=2, window="minute"))
    frontend.set_routes(keyed_route(pair[0], quota))
    url = score_url(frontend, "keyed")
    headers = {"Authorization": f"Bearer {LIMITED}"}
    with httpx.Client() as client:
        assert [client.post(url, json={}, headers=headers).status_code for _ in range(2)] == [200, 200]
        over = client.post(url, json={}, headers=headers)
        assert (over.status_code, over.headers["retry-after"]) == (429, "30")
        assert "Quota exceeded for key team-q" in over.json()["message"]
        now[0] += 30  # the next minute
        assert client.post(url, json={}, headers=headers).status_code == 200


def test_limited_key_at_its_limit_while_an_unlimited_key_keeps_flowing(
    frontend: BackgroundFrontEnd, pair: Pair
) -> None:
    """Bounded load over loopback (400 requests per key, four connections each): the limited key gets
    its burst plus its rate over the run's length and 429 beyond; the unlimited key gets only 200s.
    Counts, not timings, are asserted; the bounds hold on a slow machine since elapsed time is measured."""
    limited = NamedKey("limited", key_digest(LIMITED), KeyLimits(rate=20.0, burst=10))
    free = NamedKey("free", key_digest(FREE), KeyLimits())
    frontend.set_routes(keyed_route(pair[0], limited, free))
    url = score_url(frontend, "keyed")
    per_key, connections = 400, 4

    def send(key: str) -> list[int]:
        with httpx.Client() as client:
            headers = {"Authorization": f"Bearer {key}"}
            return [
                client.post(url, json={}, headers=headers).status_code for _ in range(per_key // connections)
            ]

    started = frontend.frontend.clock()
    with ThreadPoolExecutor(max_workers=2 * connections) as pool:
        jobs = {key: [pool.submit(send, key) for _ in range(connections)] for key in (LIMITED, FREE)}
        results = {
            key: [code for job in futures for code in job.result(120)] for key, futures in jobs.items()
        }
    elapsed = frontend.frontend.clock() - started
    assert results[FREE].count(200) == per_key
    ok, refused = results[LIMITED].count(200), results[LIMITED].count(429)
    assert ok + refused == per_key
    assert 10 <= ok <= 10 + 20 * elapsed + 1, (ok, elapsed)
    assert refused >= per_key - (10 + 20 * elapsed + 1) and refused > 0
