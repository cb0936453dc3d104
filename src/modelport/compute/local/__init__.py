"""The ``local`` compute target: a per-workspace agent running replica processes on this machine.

Environments are materialised as virtualenvs by :mod:`modelport.compute.envbuild`. On
native Windows every way into the target (``modelport local``, a local deploy) stops here with
the one message that names WSL, before a POSIX-only module (``fcntl``) is imported.
"""

from modelport.host import require_local_target

require_local_target()
