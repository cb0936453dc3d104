"""The rules table on its own: what an update will reuse (other fallbacks), and model/table consistency."""

from __future__ import annotations

from modelport.config import DeploymentConfig, EffectiveDeploymentConfig, LocalDeploymentConfig
from modelport.config.deployment import EFFECTIVE_DEFAULTS
from modelport.config.rules import DEPLOYMENT_RULES, failed_rules


def test_limits_are_checked_against_the_fallback_values() -> None:
    # At update time the fallback is the running service: a new request above its current limit fails.
    current = {**EFFECTIVE_DEFAULTS, "cpu_cores": 1.0, "cpu_cores_limit": 2.0}
    assert failed_rules(DEPLOYMENT_RULES, {"cpu_cores": 3.0}, current) == [
        "cpu_cores_limit must be greater than or equal to cpu_cores."
    ]
    assert failed_rules(DEPLOYMENT_RULES, {"cpu_cores_limit": 0.5}, current) == [
        "cpu_cores_limit must be greater than or equal to cpu_cores."
    ]
    assert failed_rules(DEPLOYMENT_RULES, {"cpu_cores": 1.5}, current) == []


def test_autoscale_rules_read_only_the_given_values() -> None:
    # As in Azure ML's update: a knob without autoscale_enabled=True fails even if the service autoscales.
    current = {**EFFECTIVE_DEFAULTS, "autoscale_enabled": True}
    assert failed_rules(DEPLOYMENT_RULES, {"autoscale_max_replicas": 4}, current) == [
        "autoscale_max_replicas provided without enabling autoscaling."
    ]


def test_skipped_fields_silence_their_rules() -> None:
    given = {"cpu_cores": -1, "memory_gb": -1}
    assert failed_rules(
        DEPLOYMENT_RULES, given, EFFECTIVE_DEFAULTS, skip_fields=frozenset({"cpu_cores"})
    ) == ["memory_gb must be greater than zero."]


def test_every_rule_reads_only_known_parameters() -> None:
    known = set(LocalDeploymentConfig.model_fields)
    assert all(set(rule.fields) <= known for rule in DEPLOYMENT_RULES)


def test_effective_model_has_every_parameter() -> None:
    assert set(EffectiveDeploymentConfig.model_fields) == {
        *DeploymentConfig.model_fields,
        "compute_type",
        "port",
    }
