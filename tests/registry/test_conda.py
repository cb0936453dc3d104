"""CondaDependencies: Azure ML's defaults and editing rules, YAML files in and out."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from modelport.errors import EnvironmentException
from modelport.registry.conda import CondaDependencies, package_name

RUNNING_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


def test_default_spec_is_azure_mls_with_the_running_python() -> None:
    deps = CondaDependencies()
    assert deps.get_python_version() == RUNNING_PYTHON
    assert deps.pip_packages == ["azureml-defaults"]
    assert deps.conda_channels == ["anaconda", "conda-forge"]
    assert deps.conda_packages == [f"python={RUNNING_PYTHON}"]


def test_create_replaces_default_pip_packages_and_pins_python() -> None:
    deps = CondaDependencies.create(
        pip_packages=["scikit-learn==1.4.2", "inference-schema[numpy-support]"],
        conda_packages=["numpy=1.26"],
        python_version="3.10",
        pip_indexurl="https://pypi.example/simple",
    )
    assert deps.pip_packages == ["scikit-learn==1.4.2", "inference-schema[numpy-support]"]
    assert deps.conda_packages == ["python=3.10", "numpy=1.26"]
    assert deps.pip_options == ["--index-url https://pypi.example/simple"]
    assert CondaDependencies.create().pip_packages == ["azureml-defaults"]


def test_add_pip_package_replaces_the_same_distribution_under_any_spelling() -> None:
    deps = CondaDependencies()
    deps.add_pip_package("scikit-learn==1.3")
    deps.add_pip_package("Scikit_Learn>=1.4")
    assert deps.pip_packages == ["azureml-defaults", "Scikit_Learn>=1.4"]
    deps.remove_pip_package("scikit-learn")
    assert deps.pip_packages == ["azureml-defaults"]
    with pytest.raises(EnvironmentException, match="Invalid package name --index-url"):
        deps.add_pip_package("--index-url x")


def test_pip_options_are_kept_apart_and_replaced_per_flag() -> None:
    deps = CondaDependencies()
    deps.set_pip_option("--extra-index-url https://a")
    deps.set_pip_option("--extra-index-url https://b")
    deps.set_pip_option("--pre")
    assert deps.pip_options == ["--extra-index-url https://b", "--pre"]
    assert deps.pip_packages == ["azureml-defaults"]
    deps.remove_pip_option("--pre")
    assert deps.pip_options == ["--extra-index-url https://b"]
    with pytest.raises(EnvironmentException, match="Invalid pip option numpy"):
        deps.set_pip_option("numpy")


def test_python_is_one_entry_and_cannot_be_removed() -> None:
    deps = CondaDependencies()
    deps.add_conda_package("python=3.12.1")
    deps.add_conda_package("python-dateutil")
    assert deps.get_python_version() == "3.12.1"
    assert deps.conda_packages == ["python=3.12.1", "python-dateutil"]
    with pytest.raises(EnvironmentException, match="python must not be removed"):
        deps.remove_conda_package("python=3.12.1")
    deps.remove_conda_package("python-dateutil")
    assert deps.conda_packages == ["python=3.12.1"]


def test_channels_are_kept_once_in_order() -> None:
    deps = CondaDependencies()
    deps.add_channel("pytorch")
    deps.add_channel("anaconda")
    deps.remove_channel("conda-forge")
    assert deps.conda_channels == ["anaconda", "pytorch"]


def test_conda_packages_go_before_the_pip_entry() -> None:
    deps = CondaDependencies()
    deps.add_conda_package("numpy")
    structure = deps.as_dict()["dependencies"]
    assert structure[-1] == {"pip": ["azureml-defaults"]}
    assert "numpy" in structure[:-1]


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    deps = CondaDependencies.create(pip_packages=["azureml-defaults", "joblib"], python_version="3.11")
    deps.add_channel("pytorch")
    path = Path(deps.save(tmp_path / "env.yml"))
    loaded = CondaDependencies(path)
    assert loaded == deps
    assert "- python=3.11" in path.read_text()


def test_save_refuses_a_folder_or_a_missing_parent(tmp_path: Path) -> None:
    deps = CondaDependencies()
    with pytest.raises(EnvironmentException, match="to a directory"):
        deps.save(tmp_path)
    with pytest.raises(EnvironmentException, match="does not exist"):
        deps.save(tmp_path / "missing" / "env.yml")


def test_user_conda_file_is_read_with_its_pip_section(tmp_path: Path) -> None:
    path = tmp_path / "conda.yml"
    path.write_text(
        "name: my-env\nchannels:\n  - conda-forge\ndependencies:\n  - python=3.9\n  - numpy\n"
        "  - pip:\n    - azureml-defaults\n    - --extra-index-url https://x\n    - torch==2.1\n"
    )
    deps = CondaDependencies(path)
    assert deps.get_python_version() == "3.9"
    assert deps.conda_packages == ["python=3.9", "numpy"]
    assert deps.pip_packages == ["azureml-defaults", "torch==2.1"]
    assert deps.pip_options == ["--extra-index-url https://x"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: x\npackages: [numpy]\n", "unknown packages key"),
        ("- numpy\n", "not a valid conda specification"),
        ("dependencies:\n  - 3.9\n", "neither a package string"),
        ("dependencies:\n  - pip: [1]\n", "neither a package string"),
        ("channels: conda-forge\n", "'channels' .* must be a list of strings"),
        ("dependencies: [\n", "not valid YAML"),
    ],
)
def test_bad_conda_files_are_refused_with_the_reason(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "conda.yml"
    path.write_text(text)
    with pytest.raises(EnvironmentException, match=message):
        CondaDependencies(path)


def test_missing_conda_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(EnvironmentException, match=r"Cannot read conda specification file .*nope\.yml"):
        CondaDependencies(tmp_path / "nope.yml")


@pytest.mark.parametrize(
    ("requirement", "name"),
    [
        ("scikit-learn==1.4", "scikit-learn"),
        ("Scikit_Learn", "scikit-learn"),
        ("inference-schema[numpy-support]>=1.8", "inference-schema"),
        ("numpy ; python_version < '3.12'", "numpy"),
        ("https://host/pkgs/my_pkg-1.0-py3-none-any.whl", "my-pkg"),
        ("torch @ https://host/torch.tar.gz", "torch"),
    ],
)
def test_package_name_normalises(requirement: str, name: str) -> None:
    assert package_name(requirement) == name
