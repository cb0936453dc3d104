"""The local target's platform choices (modelport.host): what each platform gets, decided in one place.

No macOS or Windows machine exists here: a :class:`Host` for another platform is built directly,
and native Windows is simulated in a subprocess (modelport told it runs on ``win32``, ``fcntl``
made unimportable, as it is there).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from modelport.compute.local.cgroups import find_cpu_limiter
from modelport.compute.local.limits import unenforced_limits
from modelport.compute.local.paths import replica_socket
from modelport.config import local_deploy_configuration
from modelport.config.deployment import EffectiveDeploymentConfig
from modelport.host import PORTABLE_ENV, Host, current

pytestmark = pytest.mark.local_target

LINUX = Host("linux")
MACOS = Host("darwin")
FORCED = Host("linux", forced_portable=True)


def _effective(**knobs: object) -> EffectiveDeploymentConfig:
    return local_deploy_configuration(**knobs).effective()


def test_the_switch_gives_linux_the_paths_of_other_platforms(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PORTABLE_ENV, "1")
    forced = current()
    assert not forced.linux_features
    assert forced.unix_path_max == 104
    monkeypatch.delenv(PORTABLE_ENV)
    assert current().linux_features is (sys.platform == "linux")
    assert LINUX.linux_features and not MACOS.linux_features and not FORCED.linux_features
    assert (MACOS.name, FORCED.name) == ("macOS", f"Linux with {PORTABLE_ENV}=1")


def test_linux_replicas_get_an_abstract_socket_and_others_a_private_socket_file(tmp_path: Path) -> None:
    assert replica_socket(LINUX, "svc-g1-r1", tmp_path).startswith("@modelport-svc-g1-r1-")
    folder = tmp_path / "sockets"
    for host in (MACOS, FORCED):
        path = Path(replica_socket(host, "svc-g1-r1", folder) or "")
        assert path.parent == folder and path.suffix == ".sock"
    assert folder.stat().st_mode & 0o777 == 0o700  # nobody else may connect to the replicas


def test_a_socket_folder_past_sun_path_falls_back_to_the_temporary_folder_then_to_tcp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deep = tmp_path / ("x" * 100)  # past macOS's 104 bytes, as its long $TMPDIR-based homes can be
    chosen = replica_socket(MACOS, "svc-g1-r1", deep)
    assert (
        chosen is not None and Path(chosen).parent == Path(tempfile.gettempdir()) / f"modelport-{os.getuid()}"
    )
    assert len(chosen.encode()) < 104
    monkeypatch.setattr(tempfile, "gettempdir", lambda: str(deep))
    assert replica_socket(MACOS, "svc-g1-r1", deep) is None  # TCP, the last resort


def test_a_socket_folder_someone_else_can_write_to_is_not_used(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    chosen = replica_socket(MACOS, "svc-g1-r1", shared)
    assert chosen is not None and Path(chosen).parent != shared


def test_a_cpu_limit_is_reported_unenforced_with_the_setting_the_platform_and_the_reason() -> None:
    config = _effective(cpu_cores=0.25, cpu_cores_limit=0.5)
    (on_mac,) = unenforced_limits(config, MACOS, None)
    assert on_mac.startswith(
        "cpu_cores_limit=0.5 is not enforced on macOS: CPU quotas need Linux control groups"
    )
    (no_cgroup,) = unenforced_limits(config, LINUX, None)
    assert "no writable cgroup cpu controller" in no_cgroup
    assert unenforced_limits(_effective(cpu_cores=0.25), MACOS, None) == ()
    assert find_cpu_limiter(MACOS) is None and find_cpu_limiter(FORCED) is None


def test_native_windows_is_refused_at_local_start_naming_wsl() -> None:
    # Simulated: modelport is told it runs on win32 (sys.platform itself stays, since the
    # standard library and the CLI's libraries would take Windows paths that cannot work here),
    # and fcntl, which Windows lacks, cannot be imported.
    simulated = (
        "import sys\n"
        "import modelport.host as host\n"
        "host.current = lambda: host.Host('win32')\n"
        "sys.modules['fcntl'] = None\n"
        "from modelport.cli.main import main\n"
        "main(['local', 'start'])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", simulated], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert result.stderr.startswith("Error: The local target does not run on native Windows")
    assert "WSL" in result.stderr and "Traceback" not in result.stderr
