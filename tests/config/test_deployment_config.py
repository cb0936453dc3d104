"""Deployment configurations built from Python: AML's signature, effective defaults, rules and types."""

from __future__ import annotations

import inspect

import pydantic
import pytest

from modelport.config import (
    AksServiceDeploymentConfiguration,
    DeploymentConfig,
    EffectiveDeploymentConfig,
    KubernetesDeploymentConfig,
    LocalDeploymentConfig,
    deployment_config_from_dict,
    kubernetes_deploy_configuration,
    local_deploy_configuration,
)
from modelport.errors import ConfigValidationError, WebserviceException

AML_SIGNATURE = [
    "autoscale_enabled",
    "autoscale_min_replicas",
    "autoscale_max_replicas",
    "autoscale_refresh_seconds",
    "autoscale_target_utilization",
    "collect_model_data",
    "auth_enabled",
    "cpu_cores",
    "memory_gb",
    "enable_app_insights",
    "scoring_timeout_ms",
    "replica_max_concurrent_requests",
    "max_request_wait_time",
    "num_replicas",
    "primary_key",
    "secondary_key",
    "tags",
    "properties",
    "description",
    "gpu_cores",
    "period_seconds",
    "initial_delay_seconds",
    "timeout_seconds",
    "success_threshold",
    "failure_threshold",
    "namespace",
    "token_auth_enabled",
    "compute_target_name",
    "cpu_cores_limit",
    "memory_gb_limit",
    "blobfuse_enabled",
]


def errors_of(**params: object) -> list[str]:
    with pytest.raises(ConfigValidationError) as caught:
        kubernetes_deploy_configuration(**params)  # type: ignore[arg-type]
    return caught.value.errors


def test_signature_is_aml_s_31_parameters_in_order_all_defaulting_to_none() -> None:
    parameters = inspect.signature(kubernetes_deploy_configuration).parameters
    assert list(parameters) == AML_SIGNATURE
    assert all(p.default is None for p in parameters.values())
    assert list(DeploymentConfig.model_fields) == AML_SIGNATURE
    assert AksServiceDeploymentConfiguration is KubernetesDeploymentConfig


def test_kubernetes_effective_defaults_are_aml_s() -> None:
    effective = kubernetes_deploy_configuration().effective()
    assert effective.model_dump() == {
        "compute_type": "kubernetes",
        "autoscale_enabled": True,
        "autoscale_min_replicas": 1,
        "autoscale_max_replicas": 10,
        "autoscale_refresh_seconds": 1,
        "autoscale_target_utilization": 70,
        "collect_model_data": False,
        "auth_enabled": True,
        "cpu_cores": 0.1,
        "memory_gb": 0.5,
        "enable_app_insights": False,
        "scoring_timeout_ms": 60000,
        "replica_max_concurrent_requests": 1,
        "max_request_wait_time": 500,
        "num_replicas": None,
        "primary_key": None,
        "secondary_key": None,
        "tags": {},
        "properties": {},
        "description": None,
        "gpu_cores": 0,
        "period_seconds": 10,
        "initial_delay_seconds": 310,
        "timeout_seconds": 2,
        "success_threshold": 1,
        "failure_threshold": 3,
        "namespace": None,
        "token_auth_enabled": False,
        "compute_target_name": None,
        "cpu_cores_limit": None,
        "memory_gb_limit": None,
        "blobfuse_enabled": False,
        "port": None,
    }


def test_num_replicas_turns_autoscaling_off() -> None:
    effective = kubernetes_deploy_configuration(num_replicas=3).effective()
    assert (effective.autoscale_enabled, effective.num_replicas) == (False, 3)


def test_local_defaults_differ_only_in_auth_and_replicas() -> None:
    local = local_deploy_configuration().effective().model_dump()
    kubernetes = kubernetes_deploy_configuration().effective().model_dump()
    differing = {key: (local[key], kubernetes[key]) for key in local if local[key] != kubernetes[key]}
    assert differing == {
        "compute_type": ("local", "kubernetes"),
        "autoscale_enabled": (False, True),
        "auth_enabled": (False, True),
        "num_replicas": (1, None),
    }


def test_local_autoscaling_when_asked_for() -> None:
    effective = local_deploy_configuration(
        port=8080, autoscale_enabled=True, autoscale_max_replicas=4
    ).effective()
    assert (effective.autoscale_enabled, effective.autoscale_max_replicas, effective.num_replicas) == (
        True,
        4,
        None,
    )
    assert effective.port == 8080


def test_token_auth_alone_turns_key_auth_off() -> None:
    effective = kubernetes_deploy_configuration(token_auth_enabled=True).effective()
    assert (effective.auth_enabled, effective.token_auth_enabled) == (False, True)


@pytest.mark.parametrize(
    "field",
    [
        "cpu_cores",
        "memory_gb",
        "period_seconds",
        "initial_delay_seconds",
        "timeout_seconds",
        "success_threshold",
        "failure_threshold",
        "scoring_timeout_ms",
        "replica_max_concurrent_requests",
        "max_request_wait_time",
        "num_replicas",
    ],
)
def test_zero_is_refused_with_aml_s_message(field: str) -> None:
    assert errors_of(**{field: 0}) == [f"Invalid configuration, {field} must be greater than zero."]


def test_negative_gpu_cores_refused_but_zero_accepted() -> None:
    assert errors_of(gpu_cores=-1) == [
        "Invalid configuration, gpu_cores must be greater than or equal to zero."
    ]
    assert kubernetes_deploy_configuration(gpu_cores=0).effective().gpu_cores == 0


def test_every_failed_rule_reported_at_once_in_aml_order() -> None:
    errors = errors_of(
        cpu_cores=-1,
        memory_gb=2,
        memory_gb_limit=1,
        gpu_cores=-2,
        period_seconds=0,
        namespace="Not_Valid",
        scoring_timeout_ms=300_001,
        num_replicas=2,
        autoscale_min_replicas=5,
        autoscale_target_utilization=80,
        auth_enabled=True,
        token_auth_enabled=True,
    )
    assert errors == [
        "Invalid configuration, cpu_cores must be greater than zero.",
        "Invalid configuration, memory_gb_limit must be greater than or equal to memory_gb.",
        "Invalid configuration, gpu_cores must be greater than or equal to zero.",
        "Invalid configuration, period_seconds must be greater than zero.",
        "Invalid configuration, namespace must be a valid Kubernetes namespace. "
        "Regex for validation is ^[a-z0-9]([a-z0-9-]{,61}[a-z0-9])?$",
        "Invalid configuration, scoring_timeout_ms must be less than or equal to 300000.",
        "Invalid configuration, autoscale_min_replicas provided without enabling autoscaling.",
        "Invalid configuration, autoscale_target_utilization provided without enabling autoscaling.",
        "Invalid configuration, auth_enabled and token_auth_enabled cannot both be true.",
    ]


def test_the_exception_is_a_webservice_exception_whose_message_joins_the_lines() -> None:
    with pytest.raises(WebserviceException) as caught:
        kubernetes_deploy_configuration(cpu_cores=0, memory_gb=0)
    assert str(caught.value) == (
        "Invalid configuration, cpu_cores must be greater than zero.\n"
        "Invalid configuration, memory_gb must be greater than zero."
    )


def test_scoring_timeout_cap_is_inclusive() -> None:
    assert (
        kubernetes_deploy_configuration(scoring_timeout_ms=300_000).effective().scoring_timeout_ms == 300_000
    )


@pytest.mark.parametrize("namespace", ["default", "a", "team-1", "a" * 63])
def test_valid_namespaces(namespace: str) -> None:
    assert kubernetes_deploy_configuration(namespace=namespace).effective().namespace == namespace


@pytest.mark.parametrize("namespace", ["a" * 64, "-a", "a-", "UPPER", "under_score"])
def test_invalid_namespaces(namespace: str) -> None:
    assert errors_of(namespace=namespace)[0].startswith("Invalid configuration, namespace must be a valid")


class TestAutoscaleLogic:
    def test_enabled_with_num_replicas(self) -> None:
        assert errors_of(autoscale_enabled=True, num_replicas=2) == [
            "Invalid configuration, autoscale enabled and num_replicas provided."
        ]

    def test_disabled_without_num_replicas(self) -> None:
        assert errors_of(autoscale_enabled=False) == [
            "Invalid configuration, autoscale disabled but num_replicas not provided."
        ]

    def test_knobs_need_explicit_enabling(self) -> None:
        knobs = ["autoscale_min_replicas", "autoscale_max_replicas", "autoscale_refresh_seconds"]
        knobs.append("autoscale_target_utilization")
        assert errors_of(**dict.fromkeys(knobs, 5)) == [
            f"Invalid configuration, {knob} provided without enabling autoscaling." for knob in knobs
        ]

    def test_knob_checks_when_enabled(self) -> None:
        assert errors_of(
            autoscale_enabled=True,
            autoscale_min_replicas=5,
            autoscale_max_replicas=2,
            autoscale_refresh_seconds=0,
            autoscale_target_utilization=-1,
        ) == [
            "Invalid configuration, autoscale_min_replicas cannot be greater than autoscale_max_replicas.",
            "Invalid configuration, autoscale_refresh_seconds must be greater than zero.",
            "Invalid configuration, autoscale_target_utilization must be greater than zero.",
        ]

    def test_enabled_knobs_resolve(self) -> None:
        effective = kubernetes_deploy_configuration(
            autoscale_enabled=True, autoscale_min_replicas=2
        ).effective()
        assert (effective.autoscale_min_replicas, effective.autoscale_max_replicas) == (2, 10)


class TestLimits:
    def test_limit_below_request(self) -> None:
        assert errors_of(cpu_cores=1, cpu_cores_limit=0.5) == [
            "Invalid configuration, cpu_cores_limit must be greater than or equal to cpu_cores."
        ]

    def test_lone_limit_is_compared_with_the_default_request(self) -> None:
        assert errors_of(memory_gb_limit=0.25) == [
            "Invalid configuration, memory_gb_limit must be greater than or equal to memory_gb."
        ]
        assert kubernetes_deploy_configuration(memory_gb_limit=0.5).effective().memory_gb_limit == 0.5

    def test_equal_limit_accepted(self) -> None:
        effective = kubernetes_deploy_configuration(cpu_cores=2, cpu_cores_limit=2).effective()
        assert (effective.cpu_cores, effective.cpu_cores_limit) == (2.0, 2.0)


class TestTypes:
    def test_integral_floats_are_integers(self) -> None:
        config = kubernetes_deploy_configuration(num_replicas=2.0, gpu_cores=1.0)  # type: ignore[arg-type]
        assert (config.num_replicas, config.gpu_cores) == (2, 1)
        assert isinstance(config.effective().num_replicas, int)

    def test_wrong_types_name_field_value_and_expected_type(self) -> None:
        assert errors_of(cpu_cores="two", num_replicas=2.5, auth_enabled="yes", gpu_cores=True) == [
            "Invalid configuration, auth_enabled must be true or false, got 'yes' (str).",
            "Invalid configuration, cpu_cores must be a number, got 'two' (str).",
            "Invalid configuration, num_replicas must be an integer, got 2.5 (float).",
            "Invalid configuration, gpu_cores must be an integer, got True (bool).",
        ]

    def test_non_finite_numbers_refused(self) -> None:
        assert errors_of(memory_gb=float("nan")) == [
            "Invalid configuration, memory_gb must be a finite number, got nan (float)."
        ]

    def test_tags_must_map_strings_to_strings(self) -> None:
        assert errors_of(tags={"team": 7}) == [
            "Invalid configuration, tags['team'] must be a string, got 7 (int)."
        ]

    def test_type_errors_and_rule_failures_come_together(self) -> None:
        # num_replicas is unusable, so the autoscale rules that read it are skipped; the rest run.
        assert errors_of(num_replicas="3", autoscale_enabled=False, memory_gb=0) == [
            "Invalid configuration, num_replicas must be an integer, got '3' (str).",
            "Invalid configuration, memory_gb must be greater than zero.",
        ]

    def test_unknown_parameters_refused(self) -> None:
        with pytest.raises(ConfigValidationError, match="cpu is not a deployment configuration parameter"):
            KubernetesDeploymentConfig(cpu=1)  # type: ignore[call-arg]
        with pytest.raises(TypeError, match="unexpected keyword argument 'cpu'"):
            local_deploy_configuration(cpu=1)


class TestLocalPort:
    @pytest.mark.parametrize("port", [0, 65536, -1, "8080", 80.5])
    def test_bad_ports(self, port: object) -> None:
        with pytest.raises(ConfigValidationError) as caught:
            local_deploy_configuration(port=port)  # type: ignore[arg-type]
        assert caught.value.errors == ["Invalid configuration, port must be an integer in range [1, 65535]"]

    @pytest.mark.parametrize("port", [1, 65535, 8080.0])
    def test_good_ports(self, port: float) -> None:
        assert local_deploy_configuration(port=port).effective().port == int(port)  # type: ignore[arg-type]

    def test_local_applies_the_same_rules(self) -> None:
        with pytest.raises(ConfigValidationError) as caught:
            local_deploy_configuration(port=0, cpu_cores=0)
        assert caught.value.errors == [
            "Invalid configuration, port must be an integer in range [1, 65535]",
            "Invalid configuration, cpu_cores must be greater than zero.",
        ]


def test_validate_configuration_checks_reassigned_attributes() -> None:
    config = kubernetes_deploy_configuration(cpu_cores=1)
    config.cpu_cores = 0
    with pytest.raises(ConfigValidationError, match="cpu_cores must be greater than zero"):
        config.validate_configuration()
    with pytest.raises(ConfigValidationError):
        config.effective()


def test_effective_configuration_is_immutable() -> None:
    effective = kubernetes_deploy_configuration().effective()
    with pytest.raises(pydantic.ValidationError):
        effective.cpu_cores = 4  # type: ignore[misc]
    assert isinstance(effective, EffectiveDeploymentConfig)


def test_to_file_dict_is_the_camel_case_form_and_round_trips() -> None:
    config = kubernetes_deploy_configuration(
        autoscale_enabled=True,
        autoscale_max_replicas=4,
        cpu_cores=1.5,
        gpu_cores=1,
        primary_key="p",
        secondary_key="s",
        period_seconds=20,
        token_auth_enabled=False,
        tags={"not": "written"},
    )
    document = config.to_file_dict()
    assert document == {
        "computeType": "aks",
        "autoScaler": {"autoscaleEnabled": True, "maxReplicas": 4},
        "containerResourceRequirements": {"cpu": 1.5},
        "gpuCores": 1,
        "keys": {"primaryKey": "p", "secondaryKey": "s"},
        "livenessProbeRequirements": {"periodSeconds": 20},
        "tokenAuthEnabled": False,
    }
    reread = deployment_config_from_dict(document)
    assert reread.given() == {**config.given(), "tags": None}


def test_local_to_file_dict_round_trips() -> None:
    config = local_deploy_configuration(port=5001, num_replicas=2)
    assert config.to_file_dict() == {"computeType": "local", "port": 5001, "numReplicas": 2}
    reread = deployment_config_from_dict(config.to_file_dict())
    assert isinstance(reread, LocalDeploymentConfig)
    assert reread.given() == config.given()


def test_print_deploy_configuration(capsys: pytest.CaptureFixture[str]) -> None:
    kubernetes_deploy_configuration(cpu_cores=2, memory_gb=4).print_deploy_configuration()
    local_deploy_configuration(num_replicas=2).print_deploy_configuration()
    assert capsys.readouterr().out.splitlines() == [
        "CPU requirement: 2.0, GPU requirement: 0, Memory requirement: 4.0GB, "
        "Number of replica: autoscale 1-10",
        "CPU requirement: 0.1, GPU requirement: 0, Memory requirement: 0.5GB, Number of replica: 2",
    ]
