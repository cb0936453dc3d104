"""Reading deploymentconfig files: computeType dispatch, key mapping, warnings, errors."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

from modelport.config import (
    ConfigFileError,
    ConfigWarning,
    KubernetesDeploymentConfig,
    LocalDeploymentConfig,
    load_deployment_config,
)
from modelport.errors import ConfigValidationError, WebserviceException

WriteFile = Callable[..., Path]

# Azure ML's documented example: every key, with the effective defaults.
FULL_AKS_EXAMPLE = {
    "computeType": "aks",
    "computeTargetName": "myaks",
    "autoScaler": {
        "autoscaleEnabled": True,
        "minReplicas": 1,
        "maxReplicas": 10,
        "refreshPeriodInSeconds": 1,
        "targetUtilization": 70,
    },
    "containerResourceRequirements": {
        "cpu": 0.1,
        "memoryInGB": 0.5,
        "cpuLimit": None,
        "memoryInGBLimit": None,
    },
    "gpuCores": 0,
    "authEnabled": True,
    "tokenAuthEnabled": False,
    "keys": {"primaryKey": None, "secondaryKey": None},
    "appInsightsEnabled": False,
    "dataCollection": {"storageEnabled": False},
    "scoringTimeoutMs": 60000,
    "maxConcurrentRequestsPerContainer": 1,
    "maxQueueWaitMs": 500,
    "livenessProbeRequirements": {
        "periodSeconds": 10,
        "initialDelaySeconds": 310,
        "timeoutSeconds": 2,
        "successThreshold": 1,
        "failureThreshold": 3,
    },
    "namespace": None,
}


def load_quietly(path: object) -> KubernetesDeploymentConfig | LocalDeploymentConfig:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning fails the test
        return load_deployment_config(path)  # type: ignore[arg-type]


def test_full_aks_example_reads_every_key_without_warnings(write_file: WriteFile) -> None:
    config = load_quietly(write_file("deploymentconfig.json", FULL_AKS_EXAMPLE))
    assert isinstance(config, KubernetesDeploymentConfig)
    given = {name: value for name, value in config.given().items() if value is not None}
    assert given == {
        "compute_target_name": "myaks",
        "autoscale_enabled": True,
        "autoscale_min_replicas": 1,
        "autoscale_max_replicas": 10,
        "autoscale_refresh_seconds": 1,
        "autoscale_target_utilization": 70,
        "cpu_cores": 0.1,
        "memory_gb": 0.5,
        "gpu_cores": 0,
        "auth_enabled": True,
        "token_auth_enabled": False,
        "enable_app_insights": False,
        "collect_model_data": False,
        "scoring_timeout_ms": 60000,
        "replica_max_concurrent_requests": 1,
        "max_request_wait_time": 500,
        "period_seconds": 10,
        "initial_delay_seconds": 310,
        "timeout_seconds": 2,
        "success_threshold": 1,
        "failure_threshold": 3,
    }
    defaults = KubernetesDeploymentConfig().effective().model_dump()
    assert config.effective().model_dump() == {**defaults, "compute_target_name": "myaks"}


def test_yaml_and_json_give_the_same_configuration(write_file: WriteFile) -> None:
    yaml_file = write_file(
        "dc.yml",
        "computeType: aks\nnumReplicas: 3\ncontainerResourceRequirements:\n  cpu: 2\n  memoryInGB: 4\n"
        "keys:\n  primaryKey: abc\n  secondaryKey: def\n",
    )
    json_file = write_file(
        "dc.json",
        {
            "computeType": "aks",
            "numReplicas": 3,
            "containerResourceRequirements": {"cpu": 2, "memoryInGB": 4},
            "keys": {"primaryKey": "abc", "secondaryKey": "def"},
        },
    )
    assert load_quietly(yaml_file).effective() == load_quietly(json_file).effective()
    effective = load_quietly(yaml_file).effective()
    assert (effective.num_replicas, effective.autoscale_enabled, effective.primary_key) == (3, False, "abc")


def test_json_that_is_not_yaml_still_loads(write_file: WriteFile) -> None:
    # Tabs are not allowed as YAML indentation, so this only parses through the JSON fallback.
    path = write_file("dc.json", '{\n\t"computeType": "aks",\n\t"numReplicas": 2\n}')
    assert load_quietly(path).effective().num_replicas == 2


@pytest.mark.parametrize(
    ("compute_type", "expected"),
    [
        ("aks", KubernetesDeploymentConfig),
        ("AKS", KubernetesDeploymentConfig),
        ("Kubernetes", KubernetesDeploymentConfig),
        ("LOCAL", LocalDeploymentConfig),
    ],
)
def test_compute_type_is_case_insensitive(write_file: WriteFile, compute_type: str, expected: type) -> None:
    assert type(load_quietly(write_file("dc.json", {"computeType": compute_type}))) is expected


def test_missing_compute_type(write_file: WriteFile) -> None:
    with pytest.raises(WebserviceException) as caught:
        load_deployment_config(write_file("dc.json", {"numReplicas": 1}))
    assert caught.value.message == "Need to specify computeType in --deploy-config-file"


def test_unknown_compute_type(write_file: WriteFile) -> None:
    with pytest.raises(WebserviceException) as caught:
        load_deployment_config(write_file("dc.json", {"computeType": "batch"}))
    assert caught.value.message == "unknown deployment type: batch"


def test_unknown_keys_are_warned_about_by_name(write_file: WriteFile) -> None:
    path = write_file(
        "dc.json",
        {"computeType": "aks", "numReplica": 2, "sslEnabled": True, "autoScaler": {"maxReplica": 3}},
    )
    with pytest.warns(ConfigWarning) as record:
        config = load_deployment_config(path)
    assert [str(w.message) for w in record] == [
        f"{path}: unknown key 'numReplica' ignored. Did you mean 'numReplicas'?",
        f"{path}: unknown key 'sslEnabled' ignored.",
        f"{path}: unknown key 'autoScaler.maxReplica' ignored. Did you mean 'autoScaler.maxReplicas'?",
    ]
    assert config.effective().autoscale_enabled is True


def test_gpu_inside_resource_requirements_is_ignored_in_favour_of_gpu_cores(write_file: WriteFile) -> None:
    path = write_file(
        "dc.json", {"computeType": "aks", "gpuCores": 2, "containerResourceRequirements": {"gpu": 5}}
    )
    with pytest.warns(
        ConfigWarning, match=r"containerResourceRequirements.gpu is ignored .*top-level gpuCores"
    ):
        config = load_deployment_config(path)
    assert config.effective().gpu_cores == 2


def test_keys_not_read_from_files_are_named(write_file: WriteFile) -> None:
    path = write_file("dc.json", {"computeType": "aks", "tags": {"a": "b"}, "description": "x"})
    with pytest.warns(ConfigWarning) as record:
        config = load_deployment_config(path)
    assert [str(w.message).split(": ", 1)[1].split(" ")[0] for w in record] == ["tags", "description"]
    assert config.tags is None


def test_all_errors_at_once_naming_the_file_and_the_keys(write_file: WriteFile) -> None:
    path = write_file(
        "dc.json",
        {
            "computeType": "aks",
            "containerResourceRequirements": {"cpu": "2", "memoryInGB": 0},
            "livenessProbeRequirements": 5,
            "autoScaler": {"minReplicas": 2},
            "numReplicas": 2.5,
        },
    )
    with pytest.raises(ConfigValidationError) as caught:
        load_deployment_config(path)
    assert str(caught.value).splitlines() == [
        f"Error parsing --deploy-config-file {path}:",
        "Invalid configuration, livenessProbeRequirements must be an object, got 5 (int).",
        "Invalid configuration, containerResourceRequirements.cpu must be a number, got '2' (str).",
        "Invalid configuration, numReplicas must be an integer, got 2.5 (float).",
        "Invalid configuration, memory_gb must be greater than zero.",
        "Invalid configuration, autoscale_min_replicas provided without enabling autoscaling.",
    ]


def test_null_and_empty_sections_mean_not_given(write_file: WriteFile) -> None:
    path = write_file("dc.yml", "computeType: aks\nautoScaler:\nnumReplicas: 2\nnamespace:\n")
    effective = load_quietly(path).effective()
    assert (effective.num_replicas, effective.namespace) == (2, None)


def test_local_file_with_port_and_knobs(write_file: WriteFile) -> None:
    path = write_file(
        "dc.json", {"computeType": "local", "port": 32267, "authEnabled": True, "numReplicas": 2}
    )
    effective = load_quietly(path).effective()
    assert (effective.compute_type, effective.port, effective.auth_enabled, effective.num_replicas) == (
        "local",
        32267,
        True,
        2,
    )


def test_local_port_error_is_aml_s(write_file: WriteFile) -> None:
    with pytest.raises(ConfigValidationError) as caught:
        load_deployment_config(write_file("dc.json", {"computeType": "local", "port": "http"}))
    assert caught.value.errors == ["Invalid configuration, port must be an integer in range [1, 65535]"]


def test_port_is_unknown_for_kubernetes(write_file: WriteFile) -> None:
    with pytest.warns(ConfigWarning, match="unknown key 'port'"):
        load_deployment_config(write_file("dc.json", {"computeType": "aks", "port": 80}))


class TestAci:
    def test_mapped_to_a_single_replica_service_with_a_warning(self, write_file: WriteFile) -> None:
        path = write_file(
            "aci.json",
            {
                "computeType": "ACI",
                "containerResourceRequirements": {"cpu": 1, "memoryInGB": 2},
                "location": "eastus",
                "sslEnabled": False,
                "dnsNameLabel": "svc",
            },
        )
        with pytest.warns(ConfigWarning) as record:
            config = load_deployment_config(path)
        assert [str(w.message) for w in record] == [
            f"{path}: computeType 'aci' read as a single-replica Kubernetes deployment: num_replicas=1, "
            "autoscale_enabled=False, cpu_cores=1, memory_gb=2, auth_enabled=False (ACI's default), "
            "keys generated. Ignored ACI keys: location, sslEnabled, dnsNameLabel."
        ]
        effective = config.effective()
        assert (effective.compute_type, effective.num_replicas, effective.autoscale_enabled) == (
            "kubernetes",
            1,
            False,
        )
        assert (effective.cpu_cores, effective.memory_gb, effective.auth_enabled) == (1.0, 2.0, False)

    def test_auth_and_keys_from_the_file(self, write_file: WriteFile) -> None:
        path = write_file(
            "aci.yml", "computeType: aci\nauthEnabled: true\nkeys:\n  primaryKey: k1\n  secondaryKey: k2\n"
        )
        with pytest.warns(
            ConfigWarning, match=r"memory_gb=0.5 \(default\), auth_enabled=True \(from authEnabled\), "
        ):
            effective = load_deployment_config(path).effective()
        assert (effective.auth_enabled, effective.primary_key, effective.secondary_key) == (True, "k1", "k2")


def test_aksendpoint_read_as_aks_with_a_warning(write_file: WriteFile) -> None:
    path = write_file(
        "ep.json",
        {"computeType": "aksendpoint", "versionName": "v1", "trafficPercentile": 20, "numReplicas": 2},
    )
    with pytest.warns(ConfigWarning) as record:
        config = load_deployment_config(path)
    assert [str(w.message) for w in record] == [
        f"{path}: computeType 'aksendpoint' read as a single Kubernetes ('aks') deployment; "
        "endpoint versions and traffic split (versionName, trafficPercentile) are not supported yet."
    ]
    assert config.effective().num_replicas == 2


class TestBrokenFiles:
    def test_corrupted_json_names_file_and_position(self, write_file: WriteFile) -> None:
        path = write_file("dc.json", '{\n  "computeType": "aks",\n  "numReplicas": 2\n  "cpu": 1\n}')
        with pytest.raises(ConfigFileError) as caught:
            load_deployment_config(path)
        assert caught.value.message == (
            f"Cannot parse {path}: line 4, column 3: Expecting ',' delimiter. "
            "The file must be valid YAML or JSON."
        )

    def test_corrupted_yaml_names_file_and_position(self, write_file: WriteFile) -> None:
        path = write_file("dc.yml", "computeType: aks\nautoScaler:\n  minReplicas: [1\n")
        with pytest.raises(ConfigFileError, match=rf"Cannot parse {path}: line 4, column 1: "):
            load_deployment_config(path)

    def test_missing_file(self, write_file: WriteFile) -> None:
        path = write_file("x", "").parent / "absent.json"
        with pytest.raises(ConfigFileError) as caught:
            load_deployment_config(path)
        assert caught.value.message == f"--deploy-config-file {path} doesn't exist."

    def test_empty_file(self, write_file: WriteFile) -> None:
        with pytest.raises(ConfigFileError, match="is empty"):
            load_deployment_config(write_file("dc.json", ""))

    def test_not_a_mapping(self, write_file: WriteFile) -> None:
        with pytest.raises(
            ConfigFileError, match="must hold a YAML or JSON object at the top level, got list"
        ):
            load_deployment_config(write_file("dc.json", json.dumps([{"computeType": "aks"}])))

    def test_not_utf8(self, write_file: WriteFile) -> None:
        path = write_file("dc.json", "")
        path.write_bytes(b'{"computeType": "\xff"}')
        with pytest.raises(ConfigFileError, match="byte 17 is not UTF-8 text"):
            load_deployment_config(path)
