"""``modelport environment build-context``: the Docker build context of an environment's image.

No container engine exists here, so the Dockerfile is checked as text: every instruction is one
modelport writes, continuation lines join up, ``ENV``/``LABEL`` values read back (with POSIX shell
quoting, which Docker's double quotes follow) to exactly the environment's values, and the
Python check of its ``RUN`` line runs through ``sh`` as the build would run it.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from modelport import __version__
from modelport.compute.kubernetes.build_context import (
    INSTRUCTIONS,
    RUNTIME_IMAGE_PYTHON,
    RUNTIME_UID,
    WRITTEN,
    render_build_context,
    write_build_context,
)
from modelport.compute.kubernetes.objects import DEFAULT_IMAGE
from modelport.errors import EnvironmentException
from modelport.registry.conda import CondaDependencies
from modelport.registry.environment import ContainerRegistry, Environment
from modelport.workspace import Workspace
from tests.clirun import modelport
from tests.examples import ENVIRONMENT_EXAMPLE

ROOT = Path(__file__).resolve().parents[2]

CONDA = """\
name: project_environment
channels:
  - conda-forge
dependencies:
  - python=3.8
  - numpy=1.26
  - pytorch=2.2
  - cudatoolkit=11.8
  - pip:
    - azureml-defaults
    - joblib==1.3.2
"""


def instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs: continuation lines joined, comments and blank lines skipped."""
    result: list[tuple[str, str]] = []
    pending = ""
    for line in dockerfile.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).strip().partition(" ")
        pending = ""
        result.append((keyword, arguments.strip()))
    assert not pending, "the Dockerfile ends inside a continued line"
    return result


def docker_words(text: str) -> list[str]:
    """Words of ENV/LABEL/ARG arguments as BuildKit's shell lexer reads them, no variables set.

    Single quotes keep everything; inside double quotes a backslash escapes ``"``, ``$`` and itself
    and is literal before anything else; outside quotes it escapes any character. An unescaped
    ``$`` would expand a variable, which modelport never means to write: it fails the check.
    """
    words: list[str] = []
    word: list[str] = []
    quote: str | None = None
    chars = iter(text)
    for char in chars:
        if quote == "'":
            quote, word = (None, word) if char == "'" else (quote, [*word, char])
        elif quote == '"':
            if char == '"':
                quote = None
            elif char == "\\":
                following = next(chars)
                word += [following] if following in '"$\\' else [char, following]
            else:
                assert char != "$", f"unescaped $ in {text!r}"
                word.append(char)
        elif char in "'\"":
            quote = char
        elif char == "\\":
            word.append(next(chars))
        elif char.isspace():
            if word:
                words.append("".join(word))
            word = []
        else:
            assert char != "$", f"unescaped $ in {text!r}"
            word.append(char)
    assert quote is None, f"unterminated quote in {text!r}"
    return [*words, "".join(word)] if word else words


def pairs(arguments: str) -> dict[str, str]:
    """``KEY=value ...`` of ENV, LABEL or ARG, read back as Docker reads them."""
    return dict(item.split("=", 1) for item in docker_words(arguments))


def check_dockerfile(text: str) -> list[tuple[str, str]]:
    """The instructions of a Dockerfile modelport wrote, after the checks every such file passes."""
    found = instructions(text)
    assert [k for k, _ in found if k not in INSTRUCTIONS] == []
    assert [k for k, _ in found].count("FROM") == 1 and found[0][0] == "FROM"
    assert found[-1] == ("USER", str(RUNTIME_UID))
    for keyword, arguments in found:
        if keyword in ("ENV", "LABEL", "ARG"):
            assert pairs(arguments)  # parses: quotes balanced, KEY=value items
    (run,) = [arguments for keyword, arguments in found if keyword == "RUN"]
    check = re.search(r'python -c ("(?:[^"\\]|\\.)*")', run)
    assert check is not None
    # The version check as the build's shell runs it: passes on this Python (>= 3.11).
    subprocess.run(["sh", "-c", f"{shlex.quote(sys.executable)} -c {check.group(1)}"], check=True)
    return found


def one(found: list[tuple[str, str]], keyword: str) -> str:
    (arguments,) = [a for k, a in found if k == keyword]
    return arguments


def requirement_lines(text: str) -> list[str]:
    """The lines pip acts on: what follows the comment header."""
    lines = text.splitlines()
    assert lines[0].startswith("# pip requirements of environment ")
    return [line for line in lines if not line.startswith("#")]


def test_pip_environment_on_the_runtime_image(tmp_path: Path) -> None:
    req = tmp_path / "requirements.txt"
    req.write_text(
        "--extra-index-url https://download.pytorch.org/whl/cpu\nazureml-defaults\nscikit-learn==1.4.2\n--pre\n"
    )
    env = Environment.from_pip_requirements("sk-pip", req)
    env.version = "4"
    context = write_build_context(env, tmp_path / "ctx")

    assert context.directory == (tmp_path / "ctx").resolve()
    assert sorted(p.name for p in (tmp_path / "ctx").iterdir()) == sorted(WRITTEN)
    requirements = (tmp_path / "ctx" / "requirements.txt").read_text()
    assert requirement_lines(requirements) == [
        "--extra-index-url https://download.pytorch.org/whl/cpu",
        "--pre",  # kept for pip, which reads it in a requirements file (uv takes it as a flag)
        "scikit-learn==1.4.2",
    ]
    found = check_dockerfile((tmp_path / "ctx" / "Dockerfile").read_text())
    assert one(found, "FROM") == DEFAULT_IMAGE
    assert pairs(one(found, "LABEL")) == {
        "io.modelport.environment.name": "sk-pip",
        "io.modelport.environment.version": "4",
        "io.modelport.environment.content-hash": env.content_hash,
        "io.modelport.version": __version__,
    }
    assert pairs(one(found, "ENV")) == {"EXAMPLE_ENV_VAR": "EXAMPLE_VALUE"}  # Azure ML's default, kept
    arguments = {k: v for keyword, a in found if keyword == "ARG" for k, v in pairs(a).items()}
    # modelport's own requirement, and pip's index variables, empty unless given (build-image gives them).
    assert arguments == {
        "MODELPORT_REQUIREMENT": f"modelport[kubernetes]=={__version__}",
        "PIP_INDEX_URL": "",
        "PIP_EXTRA_INDEX_URL": "",
        "PIP_TRUSTED_HOST": "",
    }
    assert [k for k, _ in found] == [
        "FROM",
        "LABEL",
        "ARG",
        "ARG",
        "ARG",
        "ARG",
        "USER",
        "COPY",
        "RUN",
        "ENV",
        "USER",
    ]
    run = one(found, "RUN")
    assert 'pip install --no-cache-dir "${MODELPORT_REQUIREMENT}" -r requirements.txt' in re.sub(
        r"\s+", " ", run
    )
    assert "&& python -m pip check" in run
    # Same Python as the runtime image: nothing to say about it.
    assert "is pinned" not in "\n".join(context.notes)
    assert context.requirements == ("scikit-learn==1.4.2",)
    readme = (tmp_path / "ctx" / "README.md").read_text()
    assert "docker build -t REGISTRY/sk-pip:4 . && docker push REGISTRY/sk-pip:4" in readme
    assert "--image REGISTRY/sk-pip:4" in readme
    assert "modelport environment register -n sk-pip --base-image REGISTRY/sk-pip:4" in readme
    assert len(readme.splitlines()) <= 12


def test_conda_environment_translated_as_the_local_target_does(tmp_path: Path) -> None:
    (tmp_path / "conda.yml").write_text(CONDA)
    env = Environment.from_conda_specification("sk-conda", tmp_path / "conda.yml")
    context = write_build_context(env, tmp_path / "ctx")

    assert requirement_lines((tmp_path / "ctx" / "requirements.txt").read_text()) == [
        "numpy==1.26.*",
        "torch==2.2.*",  # conda's pytorch is PyPI's torch
        "joblib==1.3.2",
    ]
    written = (tmp_path / "ctx" / "conda.yml").read_text()
    assert CondaDependencies.from_dict(yaml.safe_load(written)) == env.python.conda_dependencies
    dockerfile = (tmp_path / "ctx" / "Dockerfile").read_text()
    check_dockerfile(dockerfile)
    notes = "\n".join(context.notes)
    assert "conda 'cudatoolkit=11.8': skipped (a conda-only native package" in notes
    assert "conda channels conda-forge: not used" in notes
    assert "pip 'azureml-defaults': not installed" in notes
    assert f"Python 3.8 is pinned, but {DEFAULT_IMAGE} has Python {RUNTIME_IMAGE_PYTHON}" in notes
    # The notes are in the Dockerfile too, in the image's terms (no uv in an image build).
    comments = " ".join(line.lstrip("# ") for line in dockerfile.splitlines() if line.startswith("#"))
    assert "Python 3.8 is pinned" in comments and "cudatoolkit" in comments
    assert "uv " not in dockerfile
    assert "conda 'python=3.8': skipped (the image provides Python and pip)" in notes


def test_own_base_image_private_registry_and_variables(tmp_path: Path) -> None:
    (tmp_path / "req.txt").write_text("pandas==2.2.2\n")
    env = Environment.from_docker_image(
        "team env",
        "registry.example/team/py:3.12",
        container_registry=ContainerRegistry("registry.example", "bot", "s3cret"),
        pip_requirements=tmp_path / "req.txt",
    )
    env.environment_variables = {
        "GREETING": 'say "hi" to $USER',  # single-quoted: literal in every Dockerfile parser
        "WINDOWS_PATH": "C:\\models\\v1\\",
        "QUOTES": 'it\'s $5 \\ "ok"',  # holds ': double quotes, escaped
        "EMPTY": "",
        "dotted.name-1": "x y",
    }
    context = write_build_context(env, tmp_path / "ctx")
    files = {name: (tmp_path / "ctx" / name).read_text() for name in context.files}

    found = check_dockerfile(files["Dockerfile"])
    assert one(found, "FROM") == "registry.example/team/py:3.12"
    assert pairs(one(found, "ENV")) == env.environment_variables  # read back to the letter
    assert "s3cret" not in "".join(files.values())
    assert "`docker login registry.example` first" in files["README.md"]
    assert (
        "modelport environment register -n 'team env' --base-image REGISTRY/team-env:latest"
        in files["README.md"]
    )
    assert "the base image's own python is used (the build checks that it is >= 3.11" in "\n".join(
        context.notes
    )
    assert requirement_lines(files["requirements.txt"]) == ["pandas==2.2.2"]

    # Without a pip or conda file: the image's Python as it is, modelport added, no conda.yml.
    user_managed = Environment.from_docker_image("as-is", "registry.example/team/py:3.12")
    bare = render_build_context(user_managed)
    assert "conda.yml" not in bare.files
    assert requirement_lines(bare.files["requirements.txt"]) == []
    check_dockerfile(bare.files["Dockerfile"])


def test_azureml_images_and_given_bases(tmp_path: Path) -> None:
    # Azure ML's own images hold Azure ML's conda build, not modelport: the runtime image instead.
    example = Environment.from_dict(ENVIRONMENT_EXAMPLE)
    context = render_build_context(example)
    assert one(instructions(context.files["Dockerfile"]), "FROM") == DEFAULT_IMAGE
    assert "is one of Azure ML's images" in context.notes[0]
    assert pairs(one(instructions(context.files["Dockerfile"]), "ENV")) == {"MY_VAR": "1"}

    given = render_build_context(example, "registry.example/runtime:0.1.0-gpu")
    assert (given.base, given.notes[0][:10]) == ("registry.example/runtime:0.1.0-gpu", "conda 'pyt")
    own = Environment.from_docker_image("own", "registry.example/py:3.11")
    assert render_build_context(own, "other:1").notes[0] == (
        "base image other:1 given instead of the environment's registry.example/py:3.11"
    )

    # A base Dockerfile is inlined, its parser directives first, modelport's layers after it.
    dockerfile = Environment.from_dockerfile(
        "df", "# syntax=docker/dockerfile:1\nFROM python:3.11-slim\nRUN apt-get update\n"
    )
    text = render_build_context(dockerfile).files["Dockerfile"]
    assert text.startswith("# syntax=docker/dockerfile:1\n# The image of environment 'df'")
    found = instructions(text)
    assert found[:2] == [("FROM", "python:3.11-slim"), ("RUN", "apt-get update")]
    assert found[-1] == ("USER", str(RUNTIME_UID))


def _own_build_context(env: Environment) -> None:
    env.docker.build_context = {"location": "https://example.org/ctx.tgz"}


def _file_url(env: Environment) -> None:
    env.python.conda_dependencies.add_pip_package("mypkg @ file:///src/mypkg")  # type: ignore[union-attr]


def _editable_folder(env: Environment) -> None:
    env.python.conda_dependencies.set_pip_option("-e ./mypkg")  # type: ignore[union-attr]


def _wheel_file(env: Environment) -> None:
    env.python.conda_dependencies.add_pip_package("/wheels/x-1.0-py3-none-any.whl")  # type: ignore[union-attr]


def _variable_name(env: Environment) -> None:
    env.environment_variables["BAD NAME"] = "1"


def _variable_line_break(env: Environment) -> None:
    env.environment_variables["MULTI"] = "a\nRUN rm -rf /"


def _image_line_break(env: Environment) -> None:
    env.docker.base_image = "python:3.11\nRUN evil"


def _interpreter(env: Environment) -> None:
    env.python.user_managed_dependencies = True
    env.python.interpreter_path = "/opt/py/bin/python3"


def _escape_directive(env: Environment) -> None:
    env.docker.base_dockerfile = "# escape=`\nFROM x\n"


@pytest.mark.parametrize(
    ("change", "field", "fix"),
    [
        (_own_build_context, "docker.build_context", "build that context's image"),
        (_file_url, "pip requirement", "publish the package"),
        (_editable_folder, "pip requirement", "publish the package"),
        (_wheel_file, "pip requirement", "publish the package"),
        (_variable_name, "environment_variables name", "rename the variable"),
        (_variable_line_break, "environment_variables['MULTI']", "set it without line breaks"),
        (_image_line_break, "base image", "give a reference such as"),
        (_interpreter, "python.interpreter_path", "set interpreter_path to 'python'"),
        (_escape_directive, "docker.base_dockerfile directive", "remove the escape directive"),
    ],
)
def test_what_an_image_build_cannot_express_is_refused_and_nothing_written(
    tmp_path: Path, change: Callable[[Environment], None], field: str, fix: str
) -> None:
    env = Environment("refused")
    env.docker.base_image = None
    change(env)
    with pytest.raises(EnvironmentException) as caught:
        write_build_context(env, tmp_path / "ctx")
    message = str(caught.value)
    assert message.startswith(f"Environment 'refused': {field} ")
    assert "cannot be expressed in a build context" in message and f"Fix: {fix}" in message
    assert not (tmp_path / "ctx").exists()


def test_a_folder_that_is_not_empty_needs_force_which_keeps_other_files(tmp_path: Path) -> None:
    (tmp_path / "conda.yml").write_text(CONDA)
    conda_env = Environment.from_conda_specification("c", tmp_path / "conda.yml")
    folder = tmp_path / "ctx"
    write_build_context(conda_env, folder)
    (folder / "modelport-0.1.0-py3-none-any.whl").write_bytes(b"wheel")
    with pytest.raises(
        EnvironmentException, match=r"is not empty \(5 entries, such as 'Dockerfile'\)\. Fix: "
    ):
        write_build_context(conda_env, folder)

    user_managed = Environment.from_docker_image("u", "registry.example/py:3.11")
    write_build_context(user_managed, folder, force=True)
    assert sorted(p.name for p in folder.iterdir()) == [
        "Dockerfile",
        "README.md",
        "modelport-0.1.0-py3-none-any.whl",  # not ours: kept
        "requirements.txt",  # the earlier environment's conda.yml is gone
    ]
    assert "'u'" in (folder / "Dockerfile").read_text()
    (tmp_path / "file").write_text("x")
    with pytest.raises(EnvironmentException, match="is a file"):
        write_build_context(user_managed, tmp_path / "file", force=True)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert write_build_context(user_managed, empty).directory == empty.resolve()


def test_runtime_python_matches_the_runtime_dockerfile() -> None:
    base = re.search(
        r"^ARG BASE_IMAGE=python:(\d+\.\d+)-", (ROOT / "k8s" / "Dockerfile").read_text(), re.MULTILINE
    )
    assert base is not None and base.group(1) == RUNTIME_IMAGE_PYTHON
    assert f"USER {RUNTIME_UID}" in (ROOT / "k8s" / "Dockerfile").read_text()


def test_the_command(tmp_path: Path) -> None:
    Workspace.create("ws", path=tmp_path)
    (tmp_path / "conda.yml").write_text(CONDA)
    (tmp_path / "req.txt").write_text("joblib==1.4.0\n")

    def cli(*args: str, rc: int | None = 0) -> subprocess.CompletedProcess[str]:
        return modelport("environment", *args, "--path", str(tmp_path), rc=rc)

    cli("register", "-n", "sk", "--conda-file", str(tmp_path / "conda.yml"))
    cli("register", "-n", "sk", "--pip-requirements", str(tmp_path / "req.txt"))  # version 2

    latest = cli("build-context", "sk", "-t", str(tmp_path / "v2"), "-o", "json")
    summary = json.loads(latest.stdout)
    assert (summary["name"], summary["version"], summary["base"]) == ("sk", "2", DEFAULT_IMAGE)
    assert summary["requirements"] == ["joblib==1.4.0"]
    assert summary["directory"] == str((tmp_path / "v2").resolve())
    assert f"Build it: docker build -t REGISTRY/sk:2 {tmp_path / 'v2'}" in latest.stderr.replace("\n", "")

    first = cli("build-context", "-n", "sk", "--version", "1", "-t", str(tmp_path / "v1"))
    assert "conda 'cudatoolkit=11.8': skipped" in first.stderr
    assert "io.modelport.environment.version='1'" in (tmp_path / "v1" / "Dockerfile").read_text()

    refused = cli("build-context", "sk", "-t", str(tmp_path / "v1"), rc=1)
    assert refused.stderr.count("\n") == 1 and refused.stderr.startswith("Error: Build context folder ")
    cli("build-context", "sk", "-t", str(tmp_path / "v1"), "--force")
    assert "io.modelport.environment.version='2'" in (tmp_path / "v1" / "Dockerfile").read_text()

    missing = cli("build-context", "nope", "-t", str(tmp_path / "x"), rc=1)
    assert missing.stderr.startswith("Error: Environment 'nope' (any version) is not registered")
    assert "the environment needs a name" in cli("build-context", "-t", str(tmp_path / "x"), rc=2).stderr
    assert "two names given" in cli("build-context", "a", "-n", "b", "-t", str(tmp_path / "x"), rc=2).stderr
    assert "Missing option '--target-dir'" in cli("build-context", "sk", rc=2).stderr
    assert not (tmp_path / "x").exists()
