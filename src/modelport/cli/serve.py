"""``modelport serve``: run an entry script as an Azure-ML-compatible scoring server (one replica).

Flags keep the names of Azure ML's ``azmlinfsrv`` so that existing images and scripts work.
"""

from __future__ import annotations

import typer


def serve(
    entry_script: str = typer.Option(
        None, "--entry_script", "--entry-script", help="Path of score.py (AZUREML_ENTRY_SCRIPT)."
    ),
    model_dir: str = typer.Option(
        None, "--model_dir", "--model-dir", help="Model folder (AZUREML_MODEL_DIR)."
    ),
    port: int = typer.Option(None, "--port", help="Serving port (SERVER_PORT; default 5001)."),
    host: str = typer.Option(None, "--host", help="Address to bind (MODELPORT_HOST; default 127.0.0.1)."),
    health_port: int = typer.Option(
        None,
        "--health_port",
        "--health-port",
        help="Second port, used when SEPERATE_HEALTH_ENDPOINT=true (HEALTH_PORT; default 5000).",
    ),
    worker_count: int = typer.Option(
        None,
        "--worker_count",
        "--worker-count",
        help="Worker processes, each running init() (WORKER_COUNT; default 1).",
    ),
    access_control_allow_origins: str = typer.Option(
        None,
        "--access_control_allow_origins",
        "--access-control-allow-origins",
        help="Comma-separated CORS origins, * for any (AML_CORS_ORIGINS).",
    ),
    config_file: str = typer.Option(
        None, "--config_file", "--config-file", help="JSON file of settings (AZUREML_CONFIG_FILE)."
    ),
    appinsights_instrumentation_key: str = typer.Option(
        None,
        "--appinsights_instrumentation_key",
        "--appinsights-instrumentation-key",
        help="Accepted for compatibility; Application Insights export is not supported (use /metrics).",
    ),
    max_request_bytes: int = typer.Option(
        None,
        "--max_request_bytes",
        "--max-request-bytes",
        help="Largest request body; larger ones get 413 (MODELPORT_MAX_REQUEST_BYTES; default 100 MiB).",
    ),
    scoring_timeout_ms: int = typer.Option(
        None,
        "--scoring_timeout_ms",
        "--scoring-timeout-ms",
        help="Time limit of one run() call (SCORING_TIMEOUT_MS; default 3600000).",
    ),
    unix_socket: str = typer.Option(
        None,
        "--unix_socket",
        "--unix-socket",
        help="Also listen on this Unix socket (a path, or @name for Linux's abstract namespace); "
        "MODELPORT_UNIX_SOCKET. The local front end reaches its replicas this way.",
    ),
    graceful_timeout: int = typer.Option(
        None,
        "--graceful_timeout",
        "--graceful-timeout",
        help="Seconds that requests in flight get to finish after SIGTERM/SIGINT before they are answered "
        "503 (MODELPORT_GRACEFUL_TIMEOUT; default 30; 0 stops at once).",
    ),
    json_encoding: str = typer.Option(
        None,
        "--json_encoding",
        "--json-encoding",
        help="'standard' (json.dumps, as Azure ML) or 'numpy' (numpy/pandas-aware); MODELPORT_JSON_ENCODING.",
    ),
) -> None:
    """Serve an entry script (init()/run()) over HTTP as Azure ML's inference server does."""
    from modelport.runtime.config import ServeFlags, load_config
    from modelport.runtime.server import exec_server

    flags = ServeFlags(
        entry_script=entry_script,
        model_dir=model_dir,
        port=port,
        health_port=health_port,
        worker_count=worker_count,
        host=host,
        access_control_allow_origins=access_control_allow_origins,
        config_file=config_file,
        appinsights_instrumentation_key=appinsights_instrumentation_key,
        max_request_bytes=max_request_bytes,
        scoring_timeout_ms=scoring_timeout_ms,
        json_encoding=json_encoding,
        unix_socket=unix_socket,
        graceful_timeout=graceful_timeout,
    )
    # Validate here, so that bad settings are one-line CLI errors, then hand over to the server.
    load_config(flags)
    exec_server(flags)
