"""The replica runtime: the Azure-ML-compatible scoring server behind ``modelport serve``.

A front process (:mod:`modelport.runtime.server`) owns the listening socket, speaks HTTP and
dispatches each scoring request to one of several worker processes
(:mod:`modelport.runtime.worker`), each of which imported the user's entry script and ran its
``init()``. The wire behaviour is Azure ML's (docs/scoring.md); deliberate differences are listed in
``docs/scoring.md``.
"""
