"""``python -m modelport`` runs the CLI; ``python -m modelport serve`` runs one replica.

A replica's environment holds the runtime's dependencies only (no typer), so ``serve`` goes
straight to the runtime's own command line.
"""

import sys

if sys.argv[1:2] == ["serve"]:
    from modelport.runtime.serve_cli import main as serve

    serve(sys.argv[2:])
else:
    from modelport.cli.main import main

    main()
