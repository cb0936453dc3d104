"""Named keys with limits and revocable tokens on the local target: the SDK, the real agent and its front
end, over loopback sockets (docs/frontend.md, "Named keys, rate limits and quotas", "Revoking tokens")."""

from __future__ import annotations

import json
import re

import httpx
import pytest

from modelport import Model
from modelport.config import InferenceConfig, local_deploy_configuration
from modelport.errors import UserErrorException, WebserviceException
from tests.servers import wait_until
from tests.service.conftest import IRIS_SCORE

pytestmark = pytest.mark.local_target
SAMPLE = json.dumps({"data": [[5.1, 3.5, 1.4, 0.2]]})


def _deploy(ws, name, write_source, models, **knobs):
    config = InferenceConfig(entry_script="score.py", source_directory=str(write_source(IRIS_SCORE)))
    service = Model.deploy(ws, name, list(models), config, local_deploy_configuration(**knobs))
    service.wait_for_deployment(timeout_sec=120)
    return service


def _post(uri: str, credential: str) -> httpx.Response:
    return httpx.post(uri, content=SAMPLE, headers={"Authorization": f"Bearer {credential}"})


def test_named_keys_limits_and_removal(local_ws, iris_model, write_source) -> None:
    service = _deploy(local_ws, "named-keys", write_source, [iris_model], auth_enabled=True)
    uri = service.scoring_uri
    limited = service.add_key("team-a", rate="1/min", burst=2)
    quota = service.add_key("team-q", quota="2/s")
    assert service.list_keys() == [
        {"name": "team-a", "rate": f"{1 / 60:g}/s", "burst": 2, "quota": None},
        {"name": "team-q", "rate": None, "burst": None, "quota": "2/second"},
    ]
    # Stored hashed: the value is nowhere in the spec.
    assert limited not in service._spec.model_dump_json()

    assert [_post(uri, limited).status_code for _ in range(2)] == [200, 200]
    over = _post(uri, limited)
    assert over.status_code == 429
    assert 1 <= int(over.headers["retry-after"]) <= 60
    assert "Rate limit exceeded for key team-a" in over.json()["message"]
    primary = service.get_keys()[0]
    assert _post(uri, primary).status_code == 200  # Azure ML's keys stay unlimited

    # A one-second quota window: at most 2 admitted per second, so a burst of 12 meets a refusal,
    # and the next window admits again.
    answers = [_post(uri, quota) for _ in range(12)]
    refused = [a for a in answers if a.status_code == 429]
    assert refused and refused[0].headers["retry-after"] == "1"
    assert "Quota exceeded for key team-q" in refused[0].json()["message"]
    wait_until(lambda: _post(uri, quota).status_code == 200, "the quota window to reset", 10)

    # Lifting the rate limit takes effect without a redeploy.
    generation = service.generation
    service.update_key("team-a", rate="none")
    assert [_post(uri, limited).status_code for _ in range(5)] == [200] * 5
    metrics = httpx.get(uri.split("/api/")[0] + "/metrics").text
    assert re.search(
        r'key_requests_total\{key="team-a",outcome="rate_limited",service="named-keys"\} 1\.0', metrics
    )
    assert limited not in metrics

    service.remove_key("team-a")
    assert _post(uri, limited).status_code == 401  # refused from the moment remove_key returned
    assert _post(uri, quota).status_code in (200, 429)
    assert service.generation == generation  # no new generation, no replica restarted
    with pytest.raises(WebserviceException, match="no named key 'team-a'"):
        service.remove_key("team-a")
    with pytest.raises(WebserviceException, match="already has a named key 'team-q'"):
        service.add_key("team-q")
    with pytest.raises(UserErrorException, match="Invalid rate '20 per second'"):
        service.add_key("team-b", rate="20 per second")
    with pytest.raises(WebserviceException, match="Invalid key name"):
        service.add_key("team a")
    with pytest.warns(UserWarning, match=r"keeps its named keys \(team-q\) but they are not accepted"):
        service.update(auth_enabled=False)
    service.delete()


def test_revoked_tokens_are_refused_at_once(local_ws, iris_model, write_source) -> None:
    service = _deploy(local_ws, "revoked", write_source, [iris_model], token_auth_enabled=True)
    uri = service.scoring_uri
    old = service.get_access_token().access_token
    assert _post(uri, old).status_code == 200
    service.revoke_tokens()
    refused = _post(uri, old)
    assert refused.status_code == 401, refused.text
    assert _post(uri, service.get_access_token().access_token).status_code == 200
    with pytest.raises(WebserviceException, match="uses token auth; named keys"):
        service.add_key("team-a")
    service.delete()
