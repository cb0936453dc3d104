"""The ``modelport`` command-line interface (typer + rich)."""
