"""``modelport config validate`` run as the real command: output formats, warnings, errors, exit codes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml

from tests.clirun import modelport

INFERENCE = {
    "entryScript": "score.py",
    "sourceDirectory": "src",
    "environment": {
        "name": "sk-env",
        "docker": {"baseImageRegistry": {"address": "my.io", "username": "u", "password": "hunter2"}},
    },
}
DEPLOYMENT = {"computeType": "AKS", "numReplicas": 2, "keys": {"primaryKey": "secret-key"}, "numReplica": 3}


def cli(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return modelport("config", "validate", *args, cwd=folder, rc=None)


def write(folder: Path, name: str, content: object) -> str:
    (folder / name).write_text(content if isinstance(content, str) else json.dumps(content))
    return name


def test_both_files_as_json(project: Path) -> None:
    ic, dc = write(project, "ic.json", INFERENCE), write(project, "dc.json", DEPLOYMENT)
    result = cli(project, "-ic", ic, "-dc", dc, "-o", "json")
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    inference, deployment = printed["inferenceConfig"], printed["deploymentConfig"]
    assert inference["entryScriptPath"] == str((project / "src" / "score.py").resolve())
    assert inference["environment"]["name"] == "sk-env"
    assert inference["environment"]["docker"]["baseImageRegistry"]["password"] == "***"
    assert (deployment["compute_type"], deployment["num_replicas"], deployment["autoscale_enabled"]) == (
        "kubernetes",
        2,
        False,
    )
    assert deployment["primary_key"] == "***"
    assert "secret-key" not in result.stdout and "hunter2" not in result.stdout
    assert result.stderr.splitlines() == [
        "Warning: dc.json: unknown key 'numReplica' ignored. Did you mean 'numReplicas'?"
    ]


def test_long_option_names_and_one_file_alone_as_yaml(project: Path) -> None:
    dc = write(project, "dc.yml", "computeType: local\nport: 8890\n")
    result = cli(project, "--deploy-config-file", dc, "--output", "yaml")
    assert result.returncode == 0, result.stderr
    deployment = yaml.safe_load(result.stdout)["deploymentConfig"]
    assert (deployment["compute_type"], deployment["port"], deployment["auth_enabled"]) == (
        "local",
        8890,
        False,
    )
    ic = write(project, "ic.json", {"entryScript": "score.py", "sourceDirectory": "src"})
    result = cli(project, "--inference-config-file", ic, "--output", "yaml")
    assert result.returncode == 0, result.stderr
    assert list(yaml.safe_load(result.stdout)) == ["inferenceConfig"]


def test_short_long_forms(project: Path) -> None:
    dc = write(project, "dc.json", {"computeType": "aks"})
    result = cli(project, "--dc", dc, "-o", "json")
    assert json.loads(result.stdout)["deploymentConfig"]["autoscale_max_replicas"] == 10


def test_table_output(project: Path) -> None:
    ic, dc = write(project, "ic.json", INFERENCE), write(project, "dc.json", {"computeType": "aks"})
    result = cli(project, "-ic", ic, "-dc", dc)
    assert result.returncode == 0, result.stderr
    assert "inference configuration (effective)" in result.stdout
    assert "deployment configuration (effective)" in result.stdout
    assert "sk-env (version unregistered)" in result.stdout
    assert "initial_delay_seconds" in result.stdout and "310" in result.stdout


def test_invalid_values_exit_1_with_every_rule_and_the_warnings_first(project: Path) -> None:
    dc = write(
        project,
        "dc.json",
        {
            "computeType": "aks",
            "containerResourceRequirements": {"cpu": 0},
            "scoringTimeoutMs": 600000,
            "x": 1,
        },
    )
    result = cli(project, "-dc", dc)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "Warning: dc.json: unknown key 'x' ignored.",
        "Error: Error parsing --deploy-config-file dc.json:",
        "Invalid configuration, cpu_cores must be greater than zero.",
        "Invalid configuration, scoring_timeout_ms must be less than or equal to 300000.",
    ]


def test_corrupted_file_exit_1(project: Path) -> None:
    dc = write(project, "dc.json", '{"computeType": "aks",\n  "numReplicas": 2')  # truncated
    result = cli(project, "-dc", dc)
    assert result.returncode == 1
    assert result.stderr == (
        "Error: Cannot parse dc.json: line 2, column 19: Expecting ',' delimiter. "
        "The file must be valid YAML or JSON.\n"
    )


def test_missing_file_exit_1(project: Path) -> None:
    result = cli(project, "-ic", "absent.json")
    assert (result.returncode, result.stderr) == (
        1,
        "Error: --inference-config-file absent.json doesn't exist.\n",
    )


def test_environment_reference_exit_1_with_the_fix(project: Path) -> None:
    ic = write(
        project, "ic.json", {"entryScript": "score.py", "environment": {"name": "sk-env", "version": 3}}
    )
    result = cli(project, "-ic", ic)
    assert result.returncode == 1
    assert "-e NAME --ev VERSION" in result.stderr


def test_no_file_is_a_usage_error(project: Path) -> None:
    result = cli(project)
    assert result.returncode == 2
    assert "give --inference-config-file/-ic FILE, --deploy-config-file/-dc FILE, or both" in result.stderr
