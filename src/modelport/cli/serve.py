"""``modelport serve``: run an entry script as an Azure-ML-compatible scoring server (one replica).

The flags are defined once, by the runtime (:mod:`modelport.runtime.serve_cli`), because a
replica's environment runs ``python -m modelport serve`` without the CLI's libraries; this
command hands its arguments over, ``--help`` included (``groups.COMMAND_SETTINGS``).
"""

from __future__ import annotations

import typer


def serve(ctx: typer.Context) -> None:
    """Serve an entry script (init()/run()) over HTTP as Azure ML's inference server does."""
    from modelport.runtime.serve_cli import main

    main(ctx.args)
