"""Services in built environments: a uv virtualenv per environment, and a build that fails."""

from __future__ import annotations

import textwrap

import pytest

from modelport import Model
from modelport.config import InferenceConfig, local_deploy_configuration
from modelport.errors import WebserviceException
from modelport.registry.conda import CondaDependencies
from modelport.registry.environment import Environment
from tests.compute.test_envbuild import package_index  # noqa: F401 - the shared skip fixture

SIX_SCORE = textwrap.dedent(
    """
    import six

    def init():
        pass

    def run(raw_data):
        return {"six": six.__version__}
    """
)


def _env(name: str, pip: list[str]) -> Environment:
    env = Environment(name)
    env.python.conda_dependencies = CondaDependencies.create(pip_packages=["azureml-defaults", *pip])
    return env


@pytest.mark.slow
def test_service_runs_in_its_built_environment(local_ws, write_source, package_index) -> None:  # noqa: F811
    config = InferenceConfig(
        entry_script="score.py",
        source_directory=str(write_source(SIX_SCORE)),
        environment=_env("six-env", ["six"]),
    )
    service = Model.deploy(local_ws, "with-env", [], config, local_deploy_configuration(auth_enabled=False))
    service.wait_for_deployment(timeout_sec=300)
    assert "six" in service.run("{}")
    build_log = service.get_logs(init=True)
    assert "six-env" in build_log and "azureml-defaults" in build_log  # filtered, and said so
    assert service.environment.name == "six-env"
    service.delete()


@pytest.mark.slow
def test_environment_that_cannot_build_fails_the_service_with_the_installer_error(
    local_ws,
    write_source,
    package_index,  # noqa: F811
) -> None:
    missing = "modelport-test-no-such-package-7f3a"
    config = InferenceConfig(
        entry_script="score.py",
        source_directory=str(write_source(SIX_SCORE)),
        environment=_env("broken-env", [missing]),
    )
    service = Model.deploy(local_ws, "bad-env", [], config, local_deploy_configuration(auth_enabled=False))
    with pytest.raises(WebserviceException, match="EnvironmentBuildFailed") as caught:
        service.wait_for_deployment(timeout_sec=300)
    assert "get_logs(init=True)" in str(caught.value)
    assert service.state == "Failed" and service.error["code"] == "EnvironmentBuildFailed"
    assert missing in service.error["message"] or missing in str(service.error["details"])
    assert missing in service.get_logs(init=True)
    service.delete()
