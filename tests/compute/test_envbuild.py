"""Environment materialisation for the local target: real uv builds against the package index.

The builds install small packages (six, packaging) next to modelport's runtime; with uv's wheel
cache warm a build takes a few seconds. Tests that need the index skip, saying so, when it cannot
be reached.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

import modelport
from modelport.compute.envbuild import EnvironmentBuilder, EnvironmentBuildError
from modelport.compute.envplan import conda_to_pip, plan_install, runtime_requirements
from modelport.errors import ModelportError
from modelport.registry.conda import CondaDependencies, package_name
from modelport.registry.environment import Environment
from tests.servers import STARTUP_DEADLINE_S, free_port, wait_for_port


def _environment(
    name: str, pip: list[str], conda: list[str] | None = None, python: str = "3.11"
) -> Environment:
    env = Environment(name)
    env.python.conda_dependencies = CondaDependencies.create(
        pip_packages=pip, conda_packages=conda, python_version=python
    )
    return env


def _run(python: Path, code: str) -> subprocess.CompletedProcess[str]:
    # A clean environment: nothing of this test process's sys.path may leak into the venv's.
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run([str(python), "-c", code], capture_output=True, text=True, env=env, cwd="/")


@pytest.fixture(scope="session")
def package_index() -> None:
    """Skip when uv cannot reach its package index from here (asked through uv itself, so that
    proxies and index settings count as they will in the builds)."""
    import uv

    check = subprocess.run(
        [
            uv.find_uv_bin(),
            "pip",
            "compile",
            "-",
            "--refresh-package",
            "six",
            "--quiet",
            "--python",
            sys.executable,
        ],
        input="six\n",
        capture_output=True,
        text=True,
        env=dict(os.environ, UV_PYTHON_DOWNLOADS="never"),
    )
    if check.returncode != 0:
        pytest.skip(f"uv cannot reach its package index, which real builds need: {check.stderr.strip()}")


class Built:
    """One environment built once for the module: its builder, log and Python."""

    def __init__(self, cache_root: Path, env: Environment) -> None:
        self.cache_root = cache_root
        self.env = env
        self.builder = EnvironmentBuilder(cache_root)
        self.log: list[str] = []
        self.python = self.builder.python_for(env, log=self.log.append)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, package_index: None) -> Built:
    """An Azure-ML-style spec: old pinned Python, azureml-defaults, a conda package, a pip package."""
    env = _environment(
        "aml-style",
        pip=["azureml-defaults~=1.44", "azureml-inference-server-http==0.8.0", "six"],
        conda=["packaging=24"],
        python="3.8.13",
    )
    return Built(tmp_path_factory.mktemp("envs"), env)


# -- a built environment ---------------------------------------------------------------------------


@pytest.mark.slow
def test_built_environment_runs_modelport_with_the_packages(built: Built) -> None:
    assert built.python == built.cache_root / built.env.content_hash / "bin" / "python"
    result = _run(
        built.python,
        "import sys, modelport.runtime, modelport.runtime.server, six, packaging; "
        "print(sys.prefix); print(modelport.__file__); print(packaging.__version__)",
    )
    assert result.returncode == 0, result.stderr
    prefix, modelport_file, packaging_version = result.stdout.split()
    assert Path(prefix) == built.cache_root / built.env.content_hash
    # The running modelport, not a copy: replicas run the code the control plane runs.
    assert Path(modelport_file).resolve() == Path(modelport.__file__).resolve()
    assert packaging_version.startswith("24.")
    serve = subprocess.run([str(built.python), "-m", "modelport", "serve", "--help"], capture_output=True)
    assert serve.returncode == 0, serve.stderr


# Azure ML's serving packages (modelport's runtime replaces them) and the control plane's packages.
_NOT_IN_REPLICAS = (
    *("azureml-defaults", "azureml-inference-server-http", "azureml-core"),
    *("sqlalchemy", "alembic", "psycopg", "s3fs", "typer", "rich", "uv", "starlette", "uvicorn"),
)


@pytest.mark.slow
def test_azureml_serving_packages_and_control_plane_are_not_installed(built: Built) -> None:
    result = _run(
        built.python,
        "import importlib.metadata as m\n"
        f"for name in {_NOT_IN_REPLICAS!r}:\n"
        "    try:\n        m.version(name); print(name)\n    except m.PackageNotFoundError:\n        pass\n",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert any("'azureml-defaults~=1.44'" in line and "runtime provides it" in line for line in built.log)
    assert any("'azureml-inference-server-http==0.8.0'" in line for line in built.log)


@pytest.mark.slow
def test_build_log_shows_mapping_python_choice_and_uv_output(built: Built) -> None:
    log = "\n".join(built.log)
    assert "conda 'packaging=24': installed from PyPI as 'packaging==24.*'" in log
    assert "conda 'python=3.8.13': skipped" in log
    # Python 3.8 is older than modelport's runtime: the fallback names both versions.
    assert (
        f"Python 3.8.13 was requested, but modelport's runtime needs Python >= 3.11; using the running "
        f"interpreter {platform.python_version()}" in log
    )
    assert any(line.startswith("  uv | ") and "six==" in line for line in built.log)
    env_dir = built.cache_root / built.env.content_hash
    assert (env_dir / "build.log").read_text().splitlines() == built.log[1:]
    manifest = json.loads((env_dir / "modelport-env.json").read_text())
    assert manifest["contentHash"] == built.env.content_hash
    assert "six" in manifest["requirements"]


@pytest.mark.slow
def test_second_request_reuses_the_build(built: Built) -> None:
    env_dir = built.cache_root / built.env.content_hash
    before = (env_dir.stat().st_ino, (env_dir / "modelport-env.json").stat().st_mtime_ns)
    for builder in (built.builder, EnvironmentBuilder(built.cache_root)):
        log: list[str] = []
        assert builder.is_built(built.env)
        assert builder.python_for(built.env, log=log.append) == built.python
        assert len(log) == 1 and "is already built" in log[0] and "reusing it" in log[0]
    # Same name or not, the same spec is the same build.
    renamed = built.env.clone("another-name")
    assert built.builder.python_for(renamed, log=lambda line: None) == built.python
    assert (env_dir.stat().st_ino, (env_dir / "modelport-env.json").stat().st_mtime_ns) == before
    assert sorted(p.name for p in built.cache_root.iterdir()) == sorted([".locks", built.env.content_hash])


_SCORE_PY = """
import sys
import six
import packaging


def init():
    pass


def run(raw_data):
    return {"prefix": sys.prefix, "six": six.__version__, "packaging": packaging.__version__}
"""


def _wait_ready(client: httpx.Client, process: subprocess.Popen[bytes]) -> None:
    """Poll the replica's readiness route until init() has finished; fail if the replica exits."""
    deadline = time.monotonic() + STARTUP_DEADLINE_S
    while process.poll() is None and time.monotonic() < deadline:
        if client.get("/health/ready").status_code == 200:
            return
        time.sleep(0.05)  # poll interval of the readiness check, not a readiness stand-in
    pytest.fail(f"the replica did not become ready (exit code {process.poll()})")


@pytest.mark.slow
def test_replica_serves_an_entry_script_from_the_built_environment(built: Built, tmp_path: Path) -> None:
    """The contract with the local agent: `<python> -m modelport serve` scores with the env's packages."""
    (tmp_path / "score.py").write_text(_SCORE_PY)
    port = free_port()
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    with (tmp_path / "replica.log").open("wb") as replica_log:
        process = subprocess.Popen(
            [str(built.python), "-m", "modelport", "serve", "--entry_script", "score.py", f"--port={port}"],
            cwd=tmp_path,
            env={**env, "AML_APP_ROOT": str(tmp_path)},
            stdout=replica_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for_port(port, process, "the replica")
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            _wait_ready(client, process)
            reply = client.post("/score", json={"data": [1]})
        assert reply.status_code == 200, (tmp_path / "replica.log").read_text()
        assert reply.json() == {
            "prefix": str(built.cache_root / built.env.content_hash),
            "six": _run(built.python, "import six; print(six.__version__)").stdout.strip(),
            "packaging": _run(built.python, "import packaging; print(packaging.__version__)").stdout.strip(),
        }
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


# -- building once under concurrency ---------------------------------------------------------------

_BUILD_IN_A_PROCESS = """
import json, sys
from pathlib import Path
from modelport.compute.envbuild import EnvironmentBuilder
from modelport.registry.environment import Environment
env = Environment.from_dict(json.loads(sys.argv[2]))
lines = []
python = EnvironmentBuilder(Path(sys.argv[1])).python_for(env, log=lines.append)
print(json.dumps({"python": str(python), "log": lines}))
"""


@pytest.mark.slow
def test_two_processes_build_one_hash_once(tmp_path: Path, package_index: None) -> None:
    env = _environment("concurrent", pip=["six"], conda=["packaging"])
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _BUILD_IN_A_PROCESS, str(tmp_path), json.dumps(env.to_dict())],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = []
    for process in processes:
        out, err = process.communicate()
        assert process.returncode == 0, err
        results.append(json.loads(out))
    assert {r["python"] for r in results} == {str(tmp_path / env.content_hash / "bin" / "python")}
    builds = [r for r in results if any(line.startswith("Building environment") for line in r["log"])]
    assert len(builds) == 1
    (reuser,) = [r for r in results if r is not builds[0]]
    assert any("reusing it" in line for line in reuser["log"])
    assert _run(Path(results[0]["python"]), "import six, packaging, modelport.runtime").returncode == 0


def _built_by_an_older_modelport(env_dir: Path) -> None:
    manifest_path = env_dir / "modelport-env.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["runtimeFingerprint"] = "built-by-an-older-modelport"
    manifest_path.write_text(json.dumps(manifest))


def _modelport_moved_away(env_dir: Path) -> None:
    (link,) = env_dir.glob("lib/python*/site-packages/modelport")
    link.unlink()
    link.symlink_to(env_dir / "no-longer-here")


@pytest.mark.slow
@pytest.mark.parametrize("make_stale", [_built_by_an_older_modelport, _modelport_moved_away])
def test_stale_environment_is_rebuilt_in_place(
    tmp_path: Path, package_index: None, make_stale: Callable[[Path], None]
) -> None:
    env = _environment("upgraded", pip=["six"])
    builder = EnvironmentBuilder(tmp_path)
    python = builder.python_for(env, log=lambda line: None)
    make_stale(tmp_path / env.content_hash)
    assert not builder.is_built(env)
    log: list[str] = []
    assert builder.python_for(env, log=log.append) == python
    assert any(line.startswith("Building environment") for line in log)
    assert builder.is_built(env)
    assert _run(python, "import six, modelport.runtime.server").returncode == 0
    # The old folder was replaced, not left beside the new one.
    assert sorted(p.name for p in tmp_path.iterdir()) == [".locks", env.content_hash]


# -- failures --------------------------------------------------------------------------------------


def _failed_build(tmp_path: Path, env: Environment) -> tuple[EnvironmentBuildError, list[str]]:
    log: list[str] = []
    with pytest.raises(EnvironmentBuildError) as caught:
        EnvironmentBuilder(tmp_path).python_for(env, log=log.append)
    # Nothing half-built stays in the cache: only the (empty) lock file.
    assert [p.name for p in tmp_path.iterdir()] == [".locks"]
    assert caught.value.code == "EnvironmentBuildFailed"
    assert isinstance(caught.value, ModelportError)
    return caught.value, log


def test_unknown_pip_package_fails_with_uv_error_and_leaves_nothing(
    tmp_path: Path, package_index: None
) -> None:
    error, log = _failed_build(tmp_path, _environment("broken", pip=["six", "modelport-no-such-package-x1"]))
    assert "was not found in the package registry" in error.log_tail
    assert "modelport-no-such-package-x1" in error.log_tail
    assert "(modelport-no-such-package-x1)" in error.message
    assert "Fix: check the name and version of modelport-no-such-package-x1 on https://pypi.org" in (
        error.message
    )
    # The same error reached the progress log as it happened.
    assert any("was not found in the package registry" in line for line in log)


def test_unknown_conda_package_points_at_the_conda_entry(tmp_path: Path, package_index: None) -> None:
    error, _ = _failed_build(
        tmp_path, _environment("broken-conda", pip=["six"], conda=["modelport-no-such-conda-pkg=1.2"])
    )
    assert "conda package 'modelport-no-such-conda-pkg=1.2' was looked up on PyPI" in error.message
    assert "list it under pip:" in error.message


def test_pin_that_conflicts_with_the_runtime_says_so(tmp_path: Path, package_index: None) -> None:
    error, _ = _failed_build(tmp_path, _environment("old-metrics", pip=["prometheus-client<0.20"]))
    assert "prometheus-client" in error.log_tail
    assert "prometheus-client is also required by modelport's runtime as 'prometheus-client>=0.20'" in (
        error.message
    )


def test_missing_python_version_falls_back_to_the_running_interpreter(
    tmp_path: Path, package_index: None
) -> None:
    # Fails fast at resolution; what matters here is the interpreter choice logged before it.
    _, log = _failed_build(
        tmp_path, _environment("future", pip=["modelport-no-such-package-x2"], python="3.99")
    )
    (line,) = [line for line in log if line.startswith("Python 3.99 was requested")]
    assert "is not installed on this machine" in line
    assert f"using the running interpreter {platform.python_version()} ({sys.executable})" in line


# -- user-managed environments ---------------------------------------------------------------------


def test_user_managed_default_interpreter_is_the_running_python(tmp_path: Path) -> None:
    env = _environment("mine", pip=["modelport-no-such-package-x3"])
    env.python.user_managed_dependencies = True
    builder = EnvironmentBuilder(tmp_path / "envs")
    log: list[str] = []
    assert builder.is_built(env)
    assert builder.python_for(env, log=log.append) == Path(sys.executable)
    assert "nothing is built" in log[0]
    assert not (tmp_path / "envs").exists()


def test_user_managed_interpreter_name_is_found_on_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # This test's own virtualenv stands for "the image's Python": it has modelport installed.
    bin_dir = Path(sys.executable).parent
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    env = Environment("mine")
    env.python.user_managed_dependencies = True
    env.python.interpreter_path = "python3"
    log: list[str] = []
    assert EnvironmentBuilder(tmp_path / "envs").python_for(env, log=log.append) == bin_dir / "python3"
    assert log == [
        f"Environment 'mine' is user-managed: using {bin_dir / 'python3'} as it is, nothing is built."
    ]
    assert not (tmp_path / "envs").exists()


@pytest.fixture
def bare_venv(tmp_path: Path) -> Iterator[Path]:
    """A virtualenv without modelport, made by uv (no network needed)."""
    import uv

    venv = tmp_path / "bare"
    subprocess.run([uv.find_uv_bin(), "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    yield venv / "bin" / "python"


def _refused_interpreter(tmp_path: Path, interpreter: Path) -> EnvironmentBuildError:
    """The error of a user-managed environment whose interpreter is ``interpreter``."""
    env = Environment("mine")
    env.python.user_managed_dependencies = True
    env.python.interpreter_path = str(interpreter)
    with pytest.raises(EnvironmentBuildError) as caught:
        EnvironmentBuilder(tmp_path / "envs").python_for(env, log=lambda line: None)
    return caught.value


def test_user_managed_interpreter_without_modelport_is_refused(tmp_path: Path, bare_venv: Path) -> None:
    error = _refused_interpreter(tmp_path, bare_venv)
    assert "ModuleNotFoundError: No module named 'modelport'" in error.log_tail
    assert "cannot run modelport's runtime" in error.message
    assert f"`{bare_venv} -m pip install modelport=={modelport.__version__}`" in error.message


def test_user_managed_interpreter_with_an_older_modelport_is_refused(tmp_path: Path, bare_venv: Path) -> None:
    # An older modelport: its serve has neither its own flag parser (replicas hold no typer) nor
    # --unix_socket, which the agent passes to every replica.
    (site,) = (bare_venv.parent.parent / "lib").glob("python*/site-packages")
    runtime = site / "modelport" / "runtime"
    runtime.mkdir(parents=True)
    (site / "modelport" / "__init__.py").write_text("")
    for name in ("__init__", "server", "worker"):
        (runtime / f"{name}.py").write_text("")
    (runtime / "config.py").write_text(
        "import dataclasses\n\n@dataclasses.dataclass\nclass ServeFlags:\n    port: int | None = None\n"
    )
    error = _refused_interpreter(tmp_path, bare_venv)
    assert "No module named 'modelport.runtime.serve_cli'" in error.message
    assert f"pip install modelport=={modelport.__version__}` (the agent's version)" in error.message


def test_user_managed_interpreter_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    env = Environment("mine")
    env.python.user_managed_dependencies = True
    env.python.interpreter_path = str(tmp_path / "nowhere" / "python")
    with pytest.raises(EnvironmentBuildError, match="does not exist or is not executable"):
        EnvironmentBuilder(tmp_path / "envs").python_for(env, log=lambda line: None)


# -- translating the spec --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("conda", "pip"),
    [
        ("numpy", "numpy"),
        ("numpy=1.26", "numpy==1.26.*"),
        ("numpy=1.26.4=py311h64a7726_0", "numpy==1.26.4.*"),
        ("numpy==1.26.4", "numpy==1.26.4"),
        ("numpy>=1.2,<2", "numpy>=1.2,<2"),
        ("numpy=1.26.*", "numpy==1.26.*"),
        ("numpy 1.26", "numpy==1.26.*"),
        ("numpy >=1.2", "numpy>=1.2"),
        ("conda-forge::scikit-learn=1.4", "scikit-learn==1.4.*"),
        ("pytorch=2.2", "torch==2.2.*"),
        ("py-xgboost", "xgboost"),
    ],
)
def test_conda_spec_to_pip_requirement(conda: str, pip: str) -> None:
    assert conda_to_pip(conda) == pip


def test_plan_skips_python_pip_and_conda_only_packages_and_keeps_pip_options() -> None:
    env = _environment("plan", pip=["six", "AzureML_Defaults"], conda=["pip=23", "cudatoolkit=11.8", "numpy"])
    env.python.conda_dependencies.set_pip_option("--extra-index-url https://example.org/simple")
    env.python.conda_dependencies.set_pip_option("--pre")
    plan = plan_install(env)
    assert plan.python_request == "3.11"
    assert plan.requirements == ("numpy", "six")
    assert plan.options == ("--extra-index-url https://example.org/simple",)
    assert plan.prerelease
    assert plan.requirements_text() == "--extra-index-url https://example.org/simple\nnumpy\nsix\n"
    notes = "\n".join(plan.notes)
    assert "conda 'pip=23': skipped" in notes
    assert "conda 'cudatoolkit=11.8': skipped (a conda-only native package" in notes
    assert "pip 'AzureML_Defaults': not installed, modelport's runtime provides it" in notes


def test_plan_without_conda_spec_is_the_runtime_only() -> None:
    env = Environment.from_dict({"name": "bare", "python": {"userManagedDependencies": False}, "docker": {}})
    plan = plan_install(env)
    assert plan.requirements == () and plan.python_request is None


def test_replica_runtime_is_a_subset_of_the_full_install_without_the_control_plane() -> None:
    declared = importlib.metadata.requires("modelport") or []
    core = {package_name(r) for r in declared if "extra ==" not in r}
    runtime = {package_name(r) for r in runtime_requirements()}
    # A subset: `pip install modelport` already holds everything a replica runs.
    assert runtime and runtime <= core
    assert not runtime & {package_name(name) for name in _NOT_IN_REPLICAS}
    # The markers other than the extra's own stay (uvloop has no Windows wheels).
    assert any(r.startswith("uvloop") and "sys_platform" in r for r in runtime_requirements())


def test_serve_runs_without_the_cli_libraries(tmp_path: Path) -> None:
    """``python -m modelport serve`` parses its flags without typer or rich (absent from replicas)."""
    blocker = tmp_path / "sitecustomize.py"
    blocker.write_text(
        "import sys\n"
        "for name in ('typer', 'rich', 'click', 'sqlalchemy', 'pydantic'):\n"
        "    sys.modules[name] = None  # importing it raises ImportError, as in a replica's venv\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    blocked = subprocess.run([sys.executable, "-c", "import typer"], capture_output=True, env=env)
    assert blocked.returncode != 0  # the blocker works
    shown = subprocess.run(
        [sys.executable, "-m", "modelport", "serve", "--help"], capture_output=True, text=True, env=env
    )
    assert shown.returncode == 0, shown.stderr
    assert "--unix_socket" in shown.stdout and "--scoring-timeout-ms" in shown.stdout
    serve = [sys.executable, "-m", "modelport", "serve"]
    refused = subprocess.run([*serve, "--port", "70000"], capture_output=True, text=True, env=env)
    assert refused.returncode == 1 and refused.stderr.startswith("Error: ") and "70000" in refused.stderr
