"""Every deployment setting takes effect or says that it does not (no knob that pretends).

The list of settings comes from the configuration classes themselves, so a setting added later
without an effect, or without a warning, fails here until it is given one.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

import modelport
from modelport import Model
from modelport.config import InferenceConfig, KubernetesDeploymentConfig, LocalDeploymentConfig
from modelport.config.deployment import REFUSED, WITHOUT_EFFECT, SettingWithoutEffectWarning
from modelport.errors import ComputeTargetException, UserErrorException
from modelport.service.webservice import Webservice
from modelport.workspace import Workspace

SRC = Path(modelport.__file__).parent
# Where settings act: the layers below the configuration that run services. The configuration,
# its serialisation and the Azure ML facade only carry settings, so a read there is no effect.
ACTING = ("service", "compute", "frontend", "runtime", "workspace", "registry", "cli")
CARRIERS = {"service/serialization.py", "service/update.py"}
# Read under another name, or through getattr: where each one acts.
READ_INDIRECTLY = {
    "compute_target_name": "service/deploy.py",  # resolve_target: getattr(config, "compute_target_name")
}


def _settings() -> set[str]:
    return set(KubernetesDeploymentConfig.model_fields) | set(LocalDeploymentConfig.model_fields)


def _readers(setting: str) -> list[str]:
    pattern = re.compile(rf"\.{setting}\b")
    found = []
    for path in SRC.rglob("*.py"):
        relative = path.relative_to(SRC).as_posix()
        if relative.split("/")[0] in ACTING and relative not in CARRIERS and pattern.search(path.read_text()):
            found.append(relative)
    return found


@pytest.mark.parametrize("setting", sorted(_settings()))
def test_each_setting_is_read_where_services_run_or_is_warned_about_or_refused(setting: str) -> None:
    readers = _readers(setting)
    if setting in WITHOUT_EFFECT or setting in REFUSED:
        assert readers == [], f"{setting} is read by {readers}: it has an effect now, take it off the lists"
    elif setting in READ_INDIRECTLY:
        assert setting in (SRC / READ_INDIRECTLY[setting]).read_text()
    else:
        assert readers, (
            f"{setting} is accepted but nothing reads it: give it an effect, a warning or a refusal"
        )


def test_settings_without_effect_are_warned_about_at_deploy_before_anything_is_stored(tmp_path: Path) -> None:
    ws = Workspace.create("ws", path=tmp_path / "ws")
    source = tmp_path / "src"
    source.mkdir()
    (source / "score.py").write_text("def init():\n    pass\n\n\ndef run(raw):\n    return raw\n")
    inference = InferenceConfig(entry_script="score.py", source_directory=str(source))
    config = KubernetesDeploymentConfig(
        compute_target_name="nope", collect_model_data=True, enable_app_insights=True, blobfuse_enabled=False
    )
    with warnings.catch_warnings(record=True) as caught, pytest.raises(ComputeTargetException):
        warnings.simplefilter("always")
        Model.deploy(ws, "knobs", [], inference, config)
    said = [str(w.message) for w in caught if issubclass(w.category, SettingWithoutEffectWarning)]
    assert [m.split(" has no effect")[0] for m in said] == [
        "deploy: collect_model_data=True",
        "deploy: enable_app_insights=True",
    ]
    assert all("Leave it out" in m for m in said)
    quiet = KubernetesDeploymentConfig(
        compute_target_name="nope", collect_model_data=False, blobfuse_enabled=False
    )
    with warnings.catch_warnings(record=True) as caught, pytest.raises(ComputeTargetException):
        warnings.simplefilter("always")
        Model.deploy(ws, "knobs", [], inference, quiet)
    assert not [w for w in caught if issubclass(w.category, SettingWithoutEffectWarning)]


def test_blobfuse_is_refused_with_the_reason_and_nothing_is_stored(tmp_path: Path) -> None:
    ws = Workspace.create("ws", path=tmp_path / "ws")
    source = tmp_path / "src"
    source.mkdir()
    (source / "score.py").write_text("def init():\n    pass\n\n\ndef run(raw):\n    return raw\n")
    inference = InferenceConfig(entry_script="score.py", source_directory=str(source))
    with pytest.raises(UserErrorException, match=r"blobfuse_enabled=True cannot take effect: .*Fix: leave"):
        Model.deploy(ws, "lazy", [], inference, LocalDeploymentConfig(blobfuse_enabled=True))
    assert Webservice.list(ws) == []
