"""The rules of named keys and token revocation on a spec (service/keys.py): parsing limits, what
``update_key`` keeps and removes, what is refused and with which fix. No target runs here."""

from __future__ import annotations

import pytest

from modelport.errors import UserErrorException, WebserviceException
from modelport.frontend.routes import KeyLimits, key_digest
from modelport.service import keys
from tests.compute.kubernetes.specs import make_spec


@pytest.mark.parametrize(
    ("text", "per_second"),
    [("20/s", 20.0), ("600/min", 10.0), ("7200 / hours", 2.0), ("86400/day", 1.0), ("0.5/sec", 0.5)],
)
def test_rates_in_any_unit_become_per_second(text: str, per_second: float) -> None:
    assert keys.parse_rate(text) == pytest.approx(per_second)


@pytest.mark.parametrize("text", ["20", "20/week", "fast", "-1/s", "0/s"])
def test_bad_rates_name_the_field_and_the_form(text: str) -> None:
    with pytest.raises(UserErrorException, match=r"Invalid rate"):
        keys.parse_rate(text)


def test_quotas_are_whole_counts_per_window() -> None:
    assert keys.parse_quota("100000/day") == (100000, "day")
    assert keys.parse_quota("5/m") == (5, "minute")
    with pytest.raises(UserErrorException, match="whole number"):
        keys.parse_quota("2.5/h")


def test_add_stores_only_the_hash_and_update_keeps_or_removes_limits() -> None:
    spec, value = keys.with_named_key(make_spec(), "team-a", keys.key_limits("20/s", 40, "1000/day"))
    (stored,) = spec.named_keys
    assert stored.sha256 == key_digest(value) and value not in spec.model_dump_json()
    assert keys.describe(stored) == {"name": "team-a", "rate": "20/s", "burst": 40, "quota": "1000/day"}

    kept = keys.with_key_limits(spec, "team-a", None, None, "none").named_keys[0].limits
    assert kept == KeyLimits(rate=20.0, burst=40)
    no_rate = keys.with_key_limits(spec, "team-a", "none", None, None).named_keys[0].limits
    assert no_rate == KeyLimits(quota=1000, window="day")  # the burst went with the rate
    with pytest.raises(UserErrorException, match="burst"):
        keys.with_key_limits(spec, "team-a", "none", 5, None)
    with pytest.raises(WebserviceException, match="no named key 'team-b'.*its named keys: team-a"):
        keys.with_key_limits(spec, "team-b", "1/s", None, None)


def test_named_keys_and_revocation_need_their_auth_mode() -> None:
    token_spec = make_spec(auth_enabled=False, token_auth_enabled=True)
    with pytest.raises(WebserviceException, match="uses token auth; named keys are checked only with key"):
        keys.with_named_key(token_spec, "team-a", KeyLimits())
    rotated = keys.with_new_token_secret(token_spec)
    assert rotated.token_secret != token_spec.token_secret and rotated.auth_digest != token_spec.auth_digest
    with pytest.raises(WebserviceException, match="no tokens to revoke"):
        keys.with_new_token_secret(make_spec())
