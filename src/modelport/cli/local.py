"""``modelport local status|start|stop|logs``: the workspace's local agent."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from modelport.cli.context import PATH_OPTION, WORKSPACE_OPTION, open_workspace
from modelport.cli.groups import new_group
from modelport.cli.render import OUTPUT_OPTION, OutputFormat, emit
from modelport.errors import UserErrorException

if TYPE_CHECKING:
    from modelport.compute.local.driver import LocalDriver

app = new_group("local")


def _driver() -> LocalDriver:
    from modelport.compute.local.driver import LocalDriver

    return LocalDriver()


@app.command("status")
def status(
    workspace: str | None = WORKSPACE_OPTION,
    path: Path | None = PATH_OPTION,
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """Whether the agent runs, its pid, front end URL and folders."""
    emit(_driver().status(open_workspace(workspace, path)), output)


@app.command("start")
def start(
    workspace: str | None = WORKSPACE_OPTION,
    path: Path | None = PATH_OPTION,
    ssl_cert_pem_file: Path | None = typer.Option(
        None, "--ssl-cert-pem-file", help="Serve HTTPS with this PEM certificate (chain); remembered."
    ),
    ssl_key_pem_file: Path | None = typer.Option(
        None, "--ssl-key-pem-file", help="The certificate's unencrypted PEM private key."
    ),
    ssl_cname: str | None = typer.Option(
        None, "--ssl-cname", help="The name clients use; must be one the certificate names."
    ),
    ssl_dev_self_signed: bool = typer.Option(
        False, "--ssl-dev-self-signed", help="Development only: make a self-signed certificate (openssl)."
    ),
    ssl_disable: bool = typer.Option(
        False, "--ssl-disable", help="Forget the certificate: plain HTTP again."
    ),
) -> None:
    """Start the agent (deploying does this on its own); the --ssl-* options set up HTTPS.

    On a running agent a new certificate is taken without dropping connections.
    """
    _check_ssl_flags(ssl_cert_pem_file, ssl_key_pem_file, ssl_cname, ssl_dev_self_signed, ssl_disable)
    driver = _driver()
    ws = open_workspace(workspace, path)
    if ssl_disable:
        typer.echo("HTTPS off" if driver.disable_tls(ws) else "HTTPS was not on")
    if ssl_cert_pem_file is not None and ssl_key_pem_file is not None:
        info = driver.configure_tls(ws, ssl_cert_pem_file, ssl_key_pem_file, ssl_cname)
        typer.echo(f"HTTPS certificate SHA-256 fingerprint: {info.sha256}")
    if ssl_dev_self_signed:
        from modelport.frontend.tls import DEV_VALID_DAYS, make_self_signed

        cname = ssl_cname or "localhost"
        # Installed by copy into the agent's folder; the key leaves no other trace.
        with tempfile.TemporaryDirectory(prefix="modelport-dev-tls-") as folder:
            info = driver.configure_tls(ws, *make_self_signed(Path(folder), cname), cname)
        typer.echo(
            f"Self-signed development certificate for {', '.join(info.names)}, valid {DEV_VALID_DAYS} days."
        )
        typer.echo(f"HTTPS certificate SHA-256 fingerprint: {info.sha256}")
    pid = driver.ensure_agent(ws)
    typer.echo(f"Local agent running (pid {pid}), front end {driver.endpoint(ws)}")


def _check_ssl_flags(
    cert: Path | None, key: Path | None, cname: str | None, dev: bool, disable: bool
) -> None:
    """Refuse combinations of the --ssl-* flags that say two things at once, or half of one."""
    given = cert is not None or key is not None
    if sum((given, dev, disable)) > 1:
        raise UserErrorException(
            "--ssl-cert-pem-file/--ssl-key-pem-file, --ssl-dev-self-signed and --ssl-disable exclude "
            "each other. Fix: pass one of them."
        )
    if cname is not None and not (given or dev):
        raise UserErrorException(
            "--ssl-cname needs a certificate. Fix: add --ssl-cert-pem-file and --ssl-key-pem-file."
        )
    if given and (cert is None or key is None):
        missing = "--ssl-key-pem-file" if key is None else "--ssl-cert-pem-file"
        raise UserErrorException(f"HTTPS needs both the certificate and its key. Fix: add {missing}.")


@app.command("stop")
def stop(workspace: str | None = WORKSPACE_OPTION, path: Path | None = PATH_OPTION) -> None:
    """Stop the agent and its replicas; services stay deployed and come back on the next start."""
    stopped = _driver().stop_agent(open_workspace(workspace, path))
    typer.echo("Local agent stopped" if stopped else "No local agent was running")


@app.command("logs")
def logs(
    num_lines: int = typer.Option(200, "--num-lines", "-l"),
    workspace: str | None = WORKSPACE_OPTION,
    path: Path | None = PATH_OPTION,
) -> None:
    """Print the agent's own log."""
    from modelport.compute.local.driver import paths_for
    from modelport.compute.local.replica import log_tail

    sys.stdout.write(log_tail(paths_for(open_workspace(workspace, path)).agent_log, num_lines))
